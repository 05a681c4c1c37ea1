"""Hostile inputs through load_audio, score and scan: each case once broke the tool (issue 11)."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import SAMPLES

from robodetect.audio import AUDIO_EXTENSIONS, AudioError, _quiet_stderr, display_path, load_audio
from robodetect.batch import iter_inputs, scan
from robodetect.cli import main
from robodetect.jsonio import dumps
from robodetect.store import ResultStore, export_results

PIPER = SAMPLES / "robot_en_piper.wav"
HUMAN = SAMPLES / "human_en_speechocean.wav"


def _cli(*args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    return subprocess.run(
        [sys.executable, "-m", "robodetect", *args], capture_output=True, timeout=timeout, env=env, **kw
    )


@pytest.fixture
def huge(tmp_path) -> Path:
    """A float WAV whose samples are finite but absurd (1e30)."""
    x, sr = sf.read(PIPER)
    path = tmp_path / "huge.wav"
    sf.write(path, x * 1e30, sr, subtype="FLOAT")
    return path


def test_absurd_samples_are_an_error_not_nan(huge, model_stem, capsys):
    with pytest.raises(AudioError, match="far outside"):
        load_audio(huge)
    code = main(["score", "--json", "--model", str(model_stem), str(huge), str(HUMAN)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "NaN" not in out and [json.loads(line)["path"] for line in out.splitlines()] == [str(HUMAN)]
    assert len(err.splitlines()) == 1 and "huge.wav" in err and "far outside" in err


def test_absurd_samples_in_a_scan_are_an_error_row_and_rerun_works(huge, model_stem, detector, tmp_path):
    db = tmp_path / "r.db"
    for _ in range(2):  # the old code died with IntegrityError on every run
        with ResultStore(db) as store:
            stats = scan([str(huge), str(HUMAN)], store, detector, workers=1)
        assert stats.errors == 1
    conn = sqlite3.connect(db)
    got = dict(conn.execute("SELECT path, label FROM calls"))
    assert got == {str(huge): "error", str(HUMAN): got[str(HUMAN)]} and got[str(HUMAN)] != "error"


def test_json_is_strict():
    assert dumps({"a": float("nan"), "b": [np.float32("inf"), 1.5, np.int64(3)]}) == '{"a": null, "b": [null, 1.5, 3]}'


@pytest.mark.parametrize("command", ["score", "scan"])
def test_fifo_is_rejected_without_blocking(tmp_path, model_stem, command):
    fifo = tmp_path / "p.wav"
    os.mkfifo(fifo)
    args = [command, str(PIPER), str(fifo), str(HUMAN), "--model", str(model_stem)]
    if command == "scan":
        args += ["--out", str(tmp_path / "r.db"), "--workers", "1", "--quiet"]
    done = _cli(*args, text=True, timeout=90)  # the old `score` blocked in open() forever
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "p.wav" in line]
    assert len(errors) == 1 and "not a regular file (a FIFO)" in errors[0]
    if command == "score":
        assert str(PIPER) in done.stdout and str(HUMAN) in done.stdout


def test_non_utf8_name_is_scanned_stored_and_exported_losslessly(tmp_path, detector):
    arch = tmp_path / "u8"
    arch.mkdir()
    raw = os.fsencode(arch) + b"/caf\xe9.wav"
    name = os.fsdecode(raw)
    sf.write(raw, sf.read(PIPER)[0], 8000)
    sf.write(arch / "ok.wav", sf.read(HUMAN)[0], 8000)
    db = tmp_path / "r.db"
    with ResultStore(db) as store:
        stats = scan([str(arch)], store, detector, workers=1)
    assert stats.files == 2 and stats.errors == 0
    with ResultStore(db) as store:  # resume finds it again: nothing rescored
        assert scan([str(arch)], store, detector, workers=1).skipped == 2
    export_results(db, "csv", tmp_path / "r.csv")
    assert raw in (tmp_path / "r.csv").read_bytes()  # the exact bytes of the name
    export_results(db, "jsonl", tmp_path / "r.jsonl")
    paths = {json.loads(line)["path"] for line in (tmp_path / "r.jsonl").read_text().splitlines()}
    assert os.fsencode(name) in {os.fsencode(p) for p in paths}
    pq = pytest.importorskip("pyarrow.parquet")
    export_results(db, "parquet", tmp_path / "r.parquet")
    assert raw in pq.read_table(tmp_path / "r.parquet").column("path_bytes").to_pylist()


def test_newline_in_a_name_gives_a_one_line_error(tmp_path, model_stem, capsys):
    bad = tmp_path / "two\nlines.wav"
    bad.write_bytes(b"RIFF1234WAVEfmt garbage")
    assert main(["score", "--model", str(model_stem), str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "two\\nlines.wav" in err


def test_symlink_loop_and_missing_file_messages(tmp_path):
    loop = tmp_path / "loop.wav"
    loop.symlink_to(loop)
    with pytest.raises(AudioError, match="symbolic link loop"):
        load_audio(loop)
    with pytest.raises(AudioError, match="file not found"):
        load_audio(tmp_path / "missing.wav")


def test_display_path_escapes_control_and_undecodable_bytes():
    assert display_path(os.fsdecode(b"/a/caf\xe9\n.wav")) == "/a/caf\\xe9\\n.wav"
    assert display_path("/a/café.wav") == "/a/café.wav"


def test_every_libsndfile_format_is_scanned(tmp_path):
    for ext in (".caf", ".w64", ".rf64", ".au", ".aiff"):
        assert ext in AUDIO_EXTENSIONS
    x = sf.read(PIPER)[0][:8000]
    for ext, fmt in ((".caf", "CAF"), (".w64", "W64")):
        sf.write(tmp_path / f"a{ext}", x, 8000, format=fmt)
        assert load_audio(tmp_path / f"a{ext}").samples.shape[1] == 8000
    assert sorted(Path(p).name for p in iter_inputs([str(tmp_path)])) == ["a.caf", "a.w64"]


def test_over_long_path_becomes_an_error_row(tmp_path, detector, monkeypatch):
    """A folder deeper than PATH_MAX: the old scan skipped it silently with exit 0."""
    monkeypatch.chdir(tmp_path)
    os.mkdir("deep")
    os.chdir("deep")
    for _ in range(25):  # 25 * 201 bytes > 4096
        os.mkdir("d" * 200)
        os.chdir("d" * 200)
    sf.write("call.wav", np.zeros(800, np.float32), 8000)
    os.chdir(tmp_path)
    db = tmp_path / "r.db"
    with ResultStore(db) as store:
        stats = scan([str(tmp_path / "deep")], store, detector, workers=1)
    assert stats.errors >= 1
    errors = [e for (e,) in sqlite3.connect(db).execute("SELECT error FROM calls WHERE error IS NOT NULL")]
    assert errors and all("too long" in e for e in errors), errors


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder")
def test_unreadable_folder_becomes_an_error_row(tmp_path, detector):
    locked = tmp_path / "arch" / "locked"
    locked.mkdir(parents=True)
    sf.write(tmp_path / "arch" / "ok.wav", sf.read(HUMAN)[0], 8000)
    locked.chmod(0)
    try:
        with ResultStore(tmp_path / "r.db") as store:
            stats = scan([str(tmp_path / "arch")], store, detector, workers=1)
    finally:
        locked.chmod(0o755)
    assert stats.errors == 1 and stats.files == 2


def test_broken_pipe_is_quiet(model_stem):
    cmd = f"{sys.executable} -m robodetect score --model {model_stem} {SAMPLES}/*.wav | head -1"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=120, env=env)
    assert done.stdout.count("\n") == 1
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device", "foo"], "unknown device 'foo'"),
        (["--threshold", "abc"], "must be a number within 0..1, got 'abc'"),
        (["--threshold", "nan"], "must be a number within 0..1"),
    ],
)
def test_bad_options_get_clean_messages(args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["score", str(PIPER), *args])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_export_into_a_missing_folder_fails(tmp_path, model_stem, capsys):
    out = tmp_path / "no" / "such" / "dir" / "m.onnx"
    assert main(["export", "--format", "onnx", str(out), "--model", str(model_stem)]) == 1
    assert "does not exist" in capsys.readouterr().err and not out.exists()


def test_quiet_stderr_is_thread_safe():
    """Eight threads silencing fd 2 at once: afterwards fd 2 is what it was (the old code left it
    pointing at /dev/null)."""
    before = os.fstat(2)

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(50):
            with _quiet_stderr():
                time.sleep(rng.random() / 1000)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)


def test_mp3_decoder_noise_is_silenced(tmp_path, model_stem):
    """libmpg123 notes (``part2_3_length``, ``Illegal Audio-MPEG-Header``) never reach stderr."""
    x = sf.read(PIPER)[0]
    mp3 = tmp_path / "a.mp3"
    sf.write(mp3, x, 8000, format="MP3")
    data = bytearray(mp3.read_bytes())
    rng = np.random.default_rng(0)
    for i in rng.integers(len(data) // 4, len(data), 200):  # damaged frames: the decoder complains
        data[i] ^= 0xFF
    (tmp_path / "b.mp3").write_bytes(bytes(data))
    done = _cli("score", "--model", str(model_stem), str(mp3), str(tmp_path / "b.mp3"), text=True)
    assert all(line.startswith("robodetect:") for line in done.stderr.splitlines()), done.stderr


def test_scan_of_a_generator_with_progress(tmp_path, detector, capsys):
    with ResultStore(tmp_path / "r.db") as store:
        stats = scan((str(p) for p in (PIPER, HUMAN)), store, detector, workers=1, progress=True)
    assert stats.files == 2 and "2/2 files" in capsys.readouterr().err
