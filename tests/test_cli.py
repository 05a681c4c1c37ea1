import json
import subprocess
import sys

import numpy as np
import pytest

from robodetect.cli import main


@pytest.fixture
def files(write_wav, speech_8k, tmp_path):
    good = write_wav("speech.wav", speech_8k, 8000)
    silent = write_wav("silent.wav", np.zeros(8000 * 3, np.float32), 8000)
    stereo = write_wav("stereo.wav", np.stack([speech_8k, speech_8k * 0.5], 1), 8000)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF1234WAVEfmt garbage")
    return {"good": good, "silent": silent, "stereo": stereo, "corrupt": corrupt}


def test_json_lines_have_every_field(files, model_stem, capsys):
    code = main(["score", "--json", "--model", str(model_stem), str(files["good"]), str(files["silent"])])
    assert code == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["path"] for r in rows] == [str(files["good"]), str(files["silent"])]
    for key in ("label", "robot_probability", "speech_seconds", "windows", "timing", "model_version", "threshold"):
        assert key in rows[0]
    assert rows[1]["label"] == "no_speech" and rows[1]["robot_probability"] is None and rows[1]["reason"]


def test_corrupt_file_exit_1_others_still_scored(files, model_stem, capsys):
    code = main(["score", "--model", str(model_stem), str(files["corrupt"]), str(files["good"])])
    out, err = capsys.readouterr()
    assert code == 1
    assert str(files["good"]) in out and any(v in out for v in ("ROBOT", "HUMAN", "UNCERTAIN"))
    error_lines = [line for line in err.splitlines() if "corrupt.wav" in line]
    assert len(error_lines) == 1 and "cannot decode" in error_lines[0]


def test_channel_each_and_threshold(files, model_stem, capsys):
    assert (
        main(
            [
                "score",
                "--json",
                "--channel",
                "each",
                "--threshold",
                "0",
                "--model",
                str(model_stem),
                str(files["stereo"]),
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["channel"] for r in rows] == ["left", "right"] and all(r["label"] == "robot" for r in rows)


def test_readable_output_explains(files, model_stem, capsys):
    assert main(["score", "--model", str(model_stem), str(files["good"])]) == 0
    out = capsys.readouterr().out
    assert "robot probability" in out and "speech" in out and "sounds" in out and "timing:" in out


def test_usage_errors_exit_2(files):
    for argv in (["score"], ["score", "--threshold", "2", str(files["good"])], ["nonsense"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2


def test_console_entry_point_runs(files, model_stem):
    proc = subprocess.run(
        [sys.executable, "-m", "robodetect", "score", "--json", "--model", str(model_stem), str(files["good"])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and json.loads(proc.stdout)["path"] == str(files["good"])


def test_scan_commit_seconds_default_is_the_scans():
    from robodetect.batch import COMMIT_SECONDS
    from robodetect.cli import build_parser

    args = build_parser().parse_args(["scan", "x.wav", "--out", "r.db"])
    assert args.commit_seconds == COMMIT_SECONDS
