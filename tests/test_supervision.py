"""Scan supervision: a dead worker is an error row, signals stop a scan cleanly, per-file guards."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_scan import make_archive, rows

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from bench_signals import committed  # noqa: E402  (the benchmark and this test poll the store alike)

from robodetect import batch
from robodetect.batch import scan
from robodetect.store import ResultStore
from robodetect.workers import WorkerDied, WorkerPool, death_reason

REPO = Path(__file__).resolve().parent.parent


def _kill_self_on(marker: str):
    real = batch._work

    def work(task):
        if marker in os.path.basename(task.path):
            os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would
        return real(task)

    return work


def test_killed_worker_becomes_an_error_row_and_the_scan_completes(tmp_path, speech_8k, detector, monkeypatch):
    files = make_archive(tmp_path / "arch", speech_8k, n=5, seconds=4.0)
    victim = files[2].with_name("kill-me" + files[2].suffix)
    files[2].rename(victim)
    monkeypatch.setattr(batch, "_work", _kill_self_on("kill-me"))  # workers are forked: they see it
    db = tmp_path / "r.db"
    outcome: dict = {}

    def run() -> None:
        with ResultStore(db) as store:
            outcome["stats"] = scan([str(tmp_path / "arch")], store, detector, workers=2, handle_signals=False)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(120)  # the old Pool never reported the dead worker: scan() ran forever
    assert not t.is_alive(), "scan hung after a worker was killed"
    stats = outcome["stats"]
    assert stats.files == 5 and stats.errors == 1
    got = rows(db)
    assert len(got) == len({r["path"] for r in got}) == 5  # one row per file, no duplicates
    (dead,) = [r for r in got if r["error"]]
    assert dead["path"] == str(victim)
    assert dead["error"] == f"{victim}: worker died: signal 9 (SIGKILL) — out of memory?"


def test_worker_pool_requeues_tasks_behind_a_dead_worker():
    pool = WorkerPool(_die_or_double, 1, depth=3)
    try:
        for key, value in (("a", 1), ("b", -1), ("c", 3)):
            pool.submit(key, value)
        results: dict = {}
        deadline = time.time() + 30
        while pool.in_flight and time.time() < deadline:
            results.update(pool.poll(1.0))
    finally:
        pool.close()
    assert results["a"] == 2 and results["c"] == 6
    assert isinstance(results["b"], WorkerDied) and "signal 9" in results["b"].reason
    assert pool.respawns == 1


def _die_or_double(x: int) -> int:
    if x < 0:
        os.kill(os.getpid(), signal.SIGKILL)
    return 2 * x


def test_death_reasons():
    assert death_reason(-signal.SIGSEGV) == "worker died: signal 11 (SIGSEGV) — decoder crash?"
    assert death_reason(3) == "worker exited unexpectedly with status 3"


def test_max_seconds_refuses_long_recordings(tmp_path, speech_8k, detector):
    files = make_archive(tmp_path / "arch", speech_8k, n=2, seconds=6.0)
    with ResultStore(tmp_path / "r.db") as store:
        stats = scan([str(p) for p in files], store, detector, workers=1, max_seconds=5.0)
    assert stats.errors == 2
    assert all("over the 5 s limit" in r["error"] for r in rows(tmp_path / "r.db"))


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_the_scan_cleanly_and_resume_is_exact(tmp_path, speech_8k, model_stem, signum, code):
    n = 12
    files = make_archive(tmp_path / "arch", speech_8k, n=n, seconds=30.0)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp)}
    db = tmp_path / "r.db"
    cmd = [sys.executable, "-m", "robodetect", "scan", str(tmp_path / "arch"), "--out", str(db), "--quiet"]
    cmd += ["--model", str(model_stem), "--workers", "2", "--device", "cpu", "--commit-seconds", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 90
    while time.time() < deadline and proc.poll() is None and not committed(db):
        time.sleep(0.02)
    assert proc.poll() is None, "the scan finished before the signal: make the archive longer"
    proc.send_signal(signum)
    t0 = time.time()
    _, err = proc.communicate(timeout=30)
    elapsed = time.time() - t0
    assert proc.returncode == code and elapsed <= 5.0, (proc.returncode, elapsed, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "rerun the same command" in err
    assert list(tmp.iterdir()) == []  # the temp folder is gone
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    kept = {r[0]: r[1] for r in conn.execute("SELECT path, robot_probability FROM calls")}
    conn.close()
    assert 0 < len(kept) < n

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    final = rows(db)
    assert sorted(r["path"] for r in final) == sorted(map(str, files))  # every file exactly once
    fresh = tmp_path / "fresh.db"
    subprocess.run([*cmd[:6], str(fresh), *cmd[7:]], check=True, capture_output=True, timeout=300, env=env)
    expected = {r["path"]: r["robot_probability"] for r in rows(fresh)}
    assert {r["path"]: r["robot_probability"] for r in final} == expected  # resume is exact
