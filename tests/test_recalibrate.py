"""scripts/recalibrate.py: a model's calibration refitted on other calibration calls, weights untouched."""

import json
import os
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import recalibrate  # noqa: E402

from robodetect.model import load_model  # noqa: E402


def _cal_calls(path: Path, split: str = "cal", n_calls: int = 60, vad: dict | None = None) -> Path:
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 8000
    calls, windows, owner = [], [], []
    for cid in range(n_calls):
        robot = cid % 2 == 1
        call = {"call_id": cid, "label": "robot" if robot else "human", "split": split, "group": "g"}
        if cid % 4 < 2:  # the simulator records the suppressor only where it ran
            call["ns"] = [-40.0, 2.0]
        calls.append(call)
        for _ in range(2):
            f0 = 120 + 40 * robot + rng.uniform(-30, 30)
            x = 0.3 * np.sin(2 * np.pi * f0 * t) + rng.normal(0, 0.02 + 0.03 * rng.random(), 16000)
            windows.append(x * 32767 * 0.5)
            owner.append(cid)
    extra = {"vad": json.dumps(vad)} if vad is not None else {}
    np.savez(
        path,
        windows=np.array(windows).astype(np.int16),
        call_of_window=np.array(owner, np.int32),
        calls=json.dumps(calls),
        **extra,
    )
    return path


def test_refits_calibration_keeps_weights_and_records_the_calls(model_stem, tmp_path, capsys):
    cal = _cal_calls(tmp_path / "cal-test.npz")
    out = tmp_path / "recal" / "m"
    assert recalibrate.main(["--model", str(model_stem), "--cal-calls", str(cal), "--out", str(out)]) == 0
    before, after = load_model(model_stem), load_model(out)
    assert (before.config.calib_scale, before.config.calib_bias) != (after.config.calib_scale, after.config.calib_bias)
    w0, w1 = load_file(str(model_stem.with_suffix(".safetensors"))), load_file(str(out.with_suffix(".safetensors")))
    assert w0.keys() == w1.keys() and all(np.array_equal(w0[k], w1[k]) for k in w0)
    rec = after.config.metrics["recalibrated"]
    assert rec["calls"] == "cal-test.npz" and rec["suppressed_calls"] == 30 and rec["cal_calls"] == 60
    assert rec["before"]["calib_scale"] == before.config.calib_scale
    assert after.config.version == before.config.version + "-recal"
    assert after.config.uncertain_low <= after.config.threshold <= after.config.uncertain_high
    # the threshold holds the calibration humans to <= 1 %, as calibrate() promises
    from robodetect.train import CallData, call_scores, score_table

    s, y, _ = score_table(call_scores(after, CallData.load(cal))[0], CallData.load(cal))
    assert np.mean(after.config.probability(s)[y == 0] >= after.config.threshold) <= 0.01
    assert "calib_scale" in capsys.readouterr().out


def test_refuses_dev_calls_another_vad_and_a_missing_file(model_stem, tmp_path, capsys):
    dev = _cal_calls(tmp_path / "dev-x.npz", split="dev", n_calls=8)
    argv = ["--model", str(model_stem), "--out", str(tmp_path / "o")]
    assert recalibrate.main([*argv, "--cal-calls", str(dev)]) == 1
    assert "not a calibration split" in capsys.readouterr().err
    other = _cal_calls(tmp_path / "cal-vad.npz", n_calls=8, vad={"aggressiveness": 9})
    assert recalibrate.main([*argv, "--cal-calls", str(other)]) == 1
    assert "another VAD" in capsys.readouterr().err
    assert recalibrate.main([*argv, "--cal-calls", str(tmp_path / "none.npz")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("recalibrate: cannot read") and len(err.splitlines()) == 1
    assert not (tmp_path / "o.json").exists()


def test_a_broken_calls_file_or_an_unwritable_out_is_one_line(model_stem, tmp_path, capsys):
    good = _cal_calls(tmp_path / "cal-good.npz", n_calls=8)
    (tmp_path / "text.npz").write_text("not an npz\n")
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "cut.npz").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    np.save(tmp_path / "arr.npy", np.zeros(3))
    argv = ["--model", str(model_stem), "--out", str(tmp_path / "o")]
    for name in ("text.npz", "empty.npz", "cut.npz", "arr.npy"):
        assert recalibrate.main([*argv, "--cal-calls", str(tmp_path / name)]) == 1, name
        err = capsys.readouterr().err
        assert err.startswith(f"recalibrate: cannot read {tmp_path / name}") and len(err.splitlines()) == 1
    robots = _cal_calls(tmp_path / "cal-robots.npz", n_calls=8)
    with np.load(robots) as z:
        calls = [c for c in json.loads(str(z["calls"])) if c["label"] == "robot"]
        keep = np.isin(z["call_of_window"], [c["call_id"] for c in calls])
        np.savez(robots, windows=z["windows"][keep], call_of_window=z["call_of_window"][keep], calls=json.dumps(calls))
    assert recalibrate.main([*argv, "--cal-calls", str(robots)]) == 1
    err = capsys.readouterr().err
    assert "both labels" in err and len(err.splitlines()) == 1
    (tmp_path / "taken.safetensors").mkdir()  # the weights file cannot be written
    taken = ["--model", str(model_stem), "--out", str(tmp_path / "taken"), "--cal-calls", str(good)]
    assert recalibrate.main(taken) == 2
    err = capsys.readouterr().err
    assert err.startswith("recalibrate: cannot write") and len(err.splitlines()) == 1


def test_out_must_be_a_new_stem_without_a_dot(model_stem, tmp_path, capsys):
    cal = _cal_calls(tmp_path / "cal-test.npz", n_calls=8)
    argv = ["--model", str(model_stem), "--cal-calls", str(cal)]
    assert recalibrate.main([*argv, "--out", str(tmp_path / "m.ns")]) == 1  # would write m.json
    assert "without a dot" in capsys.readouterr().err and not (tmp_path / "m.json").exists()
    before = model_stem.with_suffix(".json").read_bytes()
    assert recalibrate.main([*argv, "--out", str(model_stem.with_suffix(".json"))]) == 1
    assert "the model itself" in capsys.readouterr().err
    assert model_stem.with_suffix(".json").read_bytes() == before


def test_a_fifo_is_refused_in_one_line_not_waited_on(model_stem, tmp_path, capsys):
    fifo = tmp_path / "cal.npz"
    os.mkfifo(fifo)
    argv = ["--model", str(model_stem), "--cal-calls", str(fifo), "--out", str(tmp_path / "o")]
    assert recalibrate.main(argv) == 1  # without the check np.load blocks here for ever
    err = capsys.readouterr().err
    assert err.startswith("recalibrate: ") and "not a regular file (a FIFO)" in err and len(err.splitlines()) == 1
