"""robodetect scan: agreement with score, resume (also after SIGKILL), error rows, channels, devices."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from robodetect import vad
from robodetect.batch import content_hash, iter_inputs, scan
from robodetect.cli import main
from robodetect.detector import analyze, analyze_speech
from robodetect.parquetstore import index as parquet_index
from robodetect.store import ResultStore
from robodetect.vad import VadConfig

SR = 8000


def _call(speech: np.ndarray, seconds: float, seed: int) -> np.ndarray:
    """A call-like signal: speech bursts at varying gain separated by pauses, light noise."""
    rng = np.random.default_rng(seed)
    out = []
    total = 0
    while total < seconds * SR:
        start = int(rng.integers(0, len(speech) - 3 * SR))
        burst = speech[start : start + int(rng.uniform(1.5, 3.0) * SR)] * rng.uniform(0.5, 1.5)
        pause = np.zeros(int(rng.uniform(0.3, 1.2) * SR), np.float32)
        out += [burst, pause]
        total += len(burst) + len(pause)
    x = np.concatenate(out)[: int(seconds * SR)]
    return (x + rng.normal(0, 1e-3, len(x))).astype(np.float32)


def make_archive(root: Path, speech: np.ndarray, n: int = 3, seconds: float = 12.0) -> list[Path]:
    """n calls in root/ (mono FLAC at 8 kHz, then WAV at 16 kHz), one per sub-folder level."""
    paths = []
    for i in range(n):
        sub = root / ("a" if i % 2 else "b") / f"{i:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        x = _call(speech, seconds, seed=i)
        if i % 2:
            path = sub / f"call{i:03d}.wav"
            import soxr

            sf.write(path, soxr.resample(x, SR, 16000), 16000, subtype="PCM_16")
        else:
            path = sub / f"call{i:03d}.flac"
            sf.write(path, x, SR, subtype="PCM_16")
        paths.append(path)
    (root / "notes.txt").write_text("not audio: ignored in a folder scan\n")
    return paths


def make_mixed_archive(root: Path, speech: np.ndarray, n: int, seconds: float, ulaw: bool = True) -> Path:
    """``make_archive``'s calls plus a stereo two-party call, a mu-law WAV (``ulaw``), a corrupt
    file and a FLAC whose name is not UTF-8."""
    make_archive(root, speech, n=n, seconds=seconds)
    x = _call(speech, 12.0, seed=9)
    sf.write(root / "stereo.wav", np.stack([x, np.roll(x, 8000) * 0.3], 1), 8000, subtype="PCM_16")
    if ulaw:
        sf.write(root / "ulaw.wav", _call(speech, 8.0, seed=11), 8000, subtype="ULAW")
    (root / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + os.urandom(3000))
    sf.write(root / "tmp.flac", _call(speech, 6.0, seed=5), 8000)
    os.rename(os.fsencode(root / "tmp.flac"), os.fsencode(root) + b"/caf\xe9.flac")
    return root


def rows(db: Path) -> list[dict]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    out = [dict(r) for r in conn.execute("SELECT * FROM calls ORDER BY path, channel")]
    conn.close()
    return out


COMPARED = (
    "path", "channel_mode", "channel", "role", "party", "model_version", "size", "content_hash", "sample_rate",
    "duration_seconds", "speech_seconds", "label", "threshold", "reason", "timing", "cues", "error",
)  # fmt: skip


def store_rows(db: Path) -> list[dict]:
    """Every calls row of a SQLite store or a Parquet result folder (its index), with its window
    probabilities and fingerprint count."""
    if db.is_dir():
        db = Path(parquet_index(db))
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    out = [dict(r) for r in conn.execute("SELECT * FROM calls ORDER BY path, channel, role, party")]
    for r in out:
        r["windows"] = [
            w[0]
            for w in conn.execute("SELECT robot_probability FROM windows WHERE call_id = ? ORDER BY idx", (r["id"],))
        ]
        r["fingerprints"] = conn.execute("SELECT count(*) FROM fingerprints WHERE call_id = ?", (r["id"],)).fetchone()[
            0
        ]
    conn.close()
    return out


def assert_same_rows(a: Path, b: Path) -> None:
    ra, rb = store_rows(a), store_rows(b)
    assert [r["path"] for r in ra] == [r["path"] for r in rb]
    for x, y in zip(ra, rb):
        for col in COMPARED:
            assert x[col] == y[col], (x["path"], col, x[col], y[col])
        if x["robot_probability"] is None:
            assert y["robot_probability"] is None
        else:
            assert abs(x["robot_probability"] - y["robot_probability"]) <= 1e-5
        assert len(x["windows"]) == len(y["windows"])
        assert np.allclose(x["windows"], y["windows"], atol=1e-5, rtol=0)
        assert x["fingerprints"] == y["fingerprints"]


def run_scan(paths, db: Path, detector, **kw):
    with ResultStore(db) as store:
        return scan([str(p) for p in paths], store, detector, workers=kw.pop("workers", 1), **kw)


def test_analyze_speech_matches_analyze(speech_8k, monkeypatch):
    x = _call(speech_8k, 25.0, seed=7)
    ref = analyze(x, "mix", VadConfig())
    monkeypatch.setattr(vad, "BLOCK_FRAMES", 37)  # many VAD block boundaries change nothing
    got, speech, spans = analyze_speech(x, "mix", VadConfig())
    assert got.window_times == ref.window_times
    assert got.timing == ref.timing
    assert got.speech_seconds == ref.speech_seconds and got.duration_seconds == ref.duration_seconds
    cut = np.stack([speech[a:b] for a, b in spans])
    np.testing.assert_array_equal(cut, ref.windows)


def test_scan_matches_score_and_resumes(tmp_path, speech_8k, detector):
    files = make_archive(tmp_path / "arch", speech_8k, n=3)
    sf.write(tmp_path / "arch" / "silence.wav", np.zeros(4 * SR, np.float32), SR)
    db = tmp_path / "r.db"
    stats = run_scan([tmp_path / "arch"], db, detector)
    assert (stats.files, stats.errors, stats.skipped) == (4, 0, 0)
    got = {r["path"]: r for r in rows(db)}
    assert set(got) == {os.path.abspath(p) for p in files} | {str(tmp_path / "arch" / "silence.wav")}
    for path in files:
        ref = detector.score_file(path)
        row = got[str(path)]
        assert row["label"] == ref.label and row["model_version"] == detector.model_key
        assert abs(row["robot_probability"] - ref.robot_probability) < 1e-4
        assert row["content_hash"] == content_hash(str(path), path.stat().st_size)
        conn = sqlite3.connect(db)
        win = conn.execute(
            "SELECT w.robot_probability FROM windows w JOIN calls c ON c.id = w.call_id WHERE c.path = ? ORDER BY idx",
            (str(path),),
        ).fetchall()
        conn.close()
        np.testing.assert_allclose([w[0] for w in win], [w.robot_probability for w in ref.windows], atol=1e-4)
    assert got[str(tmp_path / "arch" / "silence.wav")]["label"] == "no_speech"

    # resume: nothing to do; a changed file is scored again; --rescore forces everything
    again = run_scan([tmp_path / "arch"], db, detector)
    assert (again.files, again.skipped) == (0, 4)
    x, _ = sf.read(files[0], dtype="float32")
    sf.write(files[0], x[: len(x) // 2], SR, subtype="PCM_16")
    changed = run_scan([tmp_path / "arch"], db, detector)
    assert (changed.files, changed.skipped) == (1, 3)
    assert run_scan([tmp_path / "arch"], db, detector, rescore=True).files == 4
    assert len(rows(db)) == 4


def test_error_rows_and_exit_code(tmp_path, speech_8k, model_stem, capsys):
    arch = tmp_path / "arch"
    good = make_archive(arch, speech_8k, n=1)[0]
    (arch / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 50)
    (arch / "empty.flac").write_bytes(b"")
    x, _ = sf.read(good, dtype="float32")
    sf.write(arch / "truncated.wav", x, SR)
    data = (arch / "truncated.wav").read_bytes()
    (arch / "truncated.wav").write_bytes(data[:44])  # header only: no samples
    (arch / "dir.wav").mkdir()  # a folder that looks like audio: walked into, not scored
    os.mkfifo(arch / "fifo.wav")  # not a regular file: an error row, and no hang on open()
    listing = tmp_path / "list.txt"
    listing.write_text(f"# a list\n{arch}\n{tmp_path / 'missing.wav'}\n")
    db = tmp_path / "r.db"
    rc = main(["scan", f"@{listing}", "--out", str(db), "--model", str(model_stem), "--workers", "2", "--quiet"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "5 errors" in err
    by_name = {Path(r["path"]).name: r for r in rows(db)}
    assert set(by_name) == {good.name, "corrupt.wav", "empty.flac", "truncated.wav", "missing.wav", "fifo.wav"}
    assert by_name[good.name]["error"] is None and by_name[good.name]["label"] in ("robot", "human", "uncertain")
    for name, reason in [
        ("corrupt.wav", "cannot decode"),
        ("empty.flac", "cannot decode"),
        ("truncated.wav", "no audio samples"),
        ("missing.wav", "file not found"),
        ("fifo.wav", "not a regular file"),
    ]:
        row = by_name[name]
        assert row["label"] == "error" and row["robot_probability"] is None
        assert row["error"].startswith(row["path"] + ": ") and reason in row["error"], row["error"]
    # errors are retried on a rerun (the file may have been fixed); scored files are not
    sf.write(arch / "corrupt.wav", x, SR)
    rc = main(["scan", f"@{listing}", "--out", str(db), "--model", str(model_stem), "--workers", "1", "--quiet"])
    assert rc == 1
    fixed = {Path(r["path"]).name: r for r in rows(db)}["corrupt.wav"]
    assert fixed["error"] is None and fixed["robot_probability"] is not None
    assert len(rows(db)) == 6


def test_channel_each_rows(tmp_path, speech_8k, detector):
    left = _call(speech_8k, 8.0, seed=1)
    right = _call(speech_8k, 8.0, seed=2) * 0.5
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], 1), SR, subtype="PCM_16")
    db = tmp_path / "r.db"
    stats = run_scan([path], db, detector, channel="each")
    assert stats.rows == 2
    got = rows(db)
    assert [r["channel"] for r in got] == ["left", "right"] and {r["channel_mode"] for r in got} == {"each"}
    for row, ref in zip(got, detector.score_file(path, channel="each"), strict=True):
        assert abs(row["robot_probability"] - ref.robot_probability) < 1e-4
    # the mix is a different resume key: both live in the store
    run_scan([path], db, detector, channel="mix")
    assert sorted(r["channel"] for r in rows(db)) == ["left", "mix", "right"]


def test_device_cuda_absent_falls_back(tmp_path, speech_8k, model_stem, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    files = make_archive(tmp_path / "arch", speech_8k, n=1, seconds=6.0)
    db = tmp_path / "r.db"
    rc = main(
        ["scan", str(files[0]), "--out", str(db), "--model", str(model_stem), "--device", "cuda", "--workers", "1"]
    )
    captured = capsys.readouterr()
    assert rc == 0
    assert "CUDA requested but not available; falling back to CPU" in captured.err
    assert "on cpu" in captured.err and "scanned 1 files" in captured.out
    assert len(rows(db)) == 1


def test_iter_inputs(tmp_path, speech_8k):
    files = make_archive(tmp_path / "arch", speech_8k, n=3, seconds=3.0)
    listing = tmp_path / "l.txt"
    listing.write_text(f"{files[0]}\n\n{tmp_path / 'arch'}\n")
    got = list(iter_inputs([f"@{listing}", str(files[1])]))
    assert got[0] == str(files[0]) and sorted(got) == sorted(map(str, files))  # each once, txt ignored


def test_resume_after_sigkill(tmp_path, speech_8k, model_stem):
    """Kill the scan (SIGKILL) once rows are committed; the rerun scores the rest, each file once."""
    n = 20
    files = make_archive(tmp_path / "arch", speech_8k, n=n, seconds=30.0)
    db = tmp_path / "r.db"
    cmd = [sys.executable, "-m", "robodetect", "scan", str(tmp_path / "arch"), "--out", str(db)]
    # commit after every file, so the kill lands between commits however fast the machine is
    cmd += ["--model", str(model_stem), "--workers", "1", "--device", "cpu", "--quiet", "--commit-seconds", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    committed = 0
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1)
                committed = conn.execute("SELECT count(*) FROM calls").fetchone()[0]
                conn.close()
            except sqlite3.Error:
                committed = 0
            if committed:
                break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < committed < n, f"kill came too late or never: {committed} rows committed"
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    first = dict(conn.execute("SELECT path, scored_at FROM calls").fetchall())
    conn.close()
    assert 0 < len(first) < n

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    final = rows(db)
    assert sorted(r["path"] for r in final) == sorted(map(str, files))  # every file exactly once
    assert all(r["error"] is None for r in final)
    for r in final:  # rows committed before the kill were kept, not scored again
        if r["path"] in first:
            assert r["scored_at"] == first[r["path"]]


@pytest.mark.parametrize("in_workers", [True, False])
def test_model_in_workers_or_main_process_scores_alike(tmp_path, speech_8k, detector, in_workers):
    """Workers that score their own windows (the CPU default) and the main-process model stage
    give Detector.score's numbers (the same fast model, the same windows)."""
    files = make_archive(tmp_path / "arch", speech_8k, n=3, seconds=20.0)
    db = tmp_path / "r.db"
    stats = run_scan([tmp_path / "arch"], db, detector, workers=2, model_in_workers=in_workers)
    assert stats.files == 3 and stats.windows > 3 * 10
    assert ("worker_model" in stats.stage_seconds) == in_workers
    got = {r["path"]: r for r in rows(db)}
    for path in files:
        assert got[str(path)]["robot_probability"] == pytest.approx(
            detector.score_file(path).robot_probability, abs=2e-6
        )


def test_available_cpus_respects_affinity(monkeypatch):
    from robodetect import batch

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3}, raising=False)
    assert batch.available_cpus() == 1


def test_a_list_file_may_name_non_utf8_files(tmp_path, speech_8k, model_stem, capsys):
    """@list.txt holding a non-UTF-8 file name: that file is scanned (the name's raw bytes), no traceback."""
    [src] = make_archive(tmp_path / "arch", speech_8k, n=1, seconds=3.0)
    raw = os.path.join(os.fsencode(tmp_path / "arch"), b"caller-\xff.flac")
    os.rename(src, raw)
    listing = tmp_path / "l.txt"
    listing.write_bytes(raw + b"\n" + os.fsencode(tmp_path / "gone-\xfe.wav") + b"\n")
    assert [os.fsencode(p) for p in iter_inputs([f"@{listing}"])][0] == raw
    db = tmp_path / "r.db"
    rc = main(["scan", f"@{listing}", "--out", str(db), "--model", str(model_stem), "--quiet"])
    assert rc == 1  # the missing file is an error row; the other is scored
    labels = sorted(r["label"] for r in rows(db))
    assert len(labels) == 2 and labels.count("error") == 1
    assert "Traceback" not in capsys.readouterr().err
