"""Interrupt `robodetect scan` N times (SIGINT and SIGTERM alternately) and check each stop.

    python scripts/bench_signals.py [--trials 20] [--files 10] [--dir /tmp/robodetect-signals]

Each trial starts a scan of a synthetic archive (samples/ calls with pauses, 8 kHz FLAC) into a
fresh store, sends the signal a random 0.5-4 s after the first committed row (or at start), and
records: exit code (130 / 143 expected), seconds from signal to exit (target <= 5), leftover
temp folders, store integrity, and whether the resumed run gives every file exactly once with the
same probabilities as an uninterrupted reference scan. Prints one line per trial and a total.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent


def make_archive(root: Path, n: int, seconds: float = 20.0) -> None:
    rng = np.random.default_rng(0)
    calls = [sf.read(p, dtype="float32")[0] for p in sorted((REPO / "samples").glob("*.wav"))]
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        parts, total = [], 0
        while total < seconds * 8000:
            x = calls[int(rng.integers(len(calls)))]
            parts += [x, np.zeros(int(rng.uniform(0.3, 2.0) * 8000), np.float32)]
            total += len(parts[-2]) + len(parts[-1])
        sf.write(root / f"call{i:03d}.flac", np.concatenate(parts)[: int(seconds * 8000)], 8000)


def probabilities(db: Path) -> dict[str, float]:
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT path, robot_probability FROM calls"))
    finally:
        conn.close()


def committed(db: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1)
        n = conn.execute("SELECT count(*) FROM calls").fetchone()[0]
        conn.close()
        return n
    except sqlite3.Error:
        return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--files", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/robodetect-signals"))
    ap.add_argument("--model", default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    arch, tmp = args.dir / "arch", args.dir / "tmp"
    if not arch.exists():
        make_archive(arch, args.files)
    tmp.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp)}
    model = ["--model", args.model] if args.model else []

    def cmd(db: Path) -> list[str]:
        return [sys.executable, "-m", "robodetect", "scan", str(arch), "--out", str(db), "--quiet", *model] + [
            "--workers", str(args.workers), "--device", "cpu", "--commit-seconds", "0",
        ]  # fmt: skip

    ref_db = args.dir / "reference.db"
    if not ref_db.exists():
        subprocess.run(cmd(ref_db), check=True, env=env, capture_output=True)
    reference = probabilities(ref_db)
    ok = counted = 0
    worst = 0.0
    for trial in range(args.trials):
        sig = (signal.SIGINT, signal.SIGTERM)[trial % 2]
        db = args.dir / f"trial{trial:02d}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        proc = subprocess.Popen(cmd(db), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None and not committed(db):
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 1.5))
        if proc.poll() is not None or committed(db) == len(reference):
            proc.wait()
            print(f"trial {trial}: finished before the signal; not counted", flush=True)
            continue
        proc.send_signal(sig)
        t0 = time.time()
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        seconds = time.time() - t0
        worst = max(worst, seconds)
        leaks = [p.name for p in tmp.iterdir()]
        conn = sqlite3.connect(db)
        intact = conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        kept = conn.execute("SELECT count(*) FROM calls").fetchone()[0]
        conn.close()
        resumed = subprocess.run(cmd(db), env=env, capture_output=True, text=True)
        exact = resumed.returncode == 0 and probabilities(db) == reference
        good = proc.returncode == 128 + sig and seconds <= 5.0 and not leaks and intact and exact
        good = good and len(err.strip().splitlines()) == 1 and "Traceback" not in err
        ok += good
        counted += 1
        print(
            f"trial {trial}: {signal.Signals(sig).name} exit {proc.returncode} in {seconds:.2f} s, "
            f"{kept} files kept, temp leftovers {len(leaks)}, integrity {'ok' if intact else 'BAD'}, "
            f"resume {'exact' if exact else 'DIFFERENT'}{'' if good else '  <-- FAIL: ' + err.strip()[-200:]}",
            flush=True,
        )
    print(f"bench_signals: {ok}/{counted} clean stops (exit 130/143 <= 5 s, no temp leftovers, "
          f"store intact, resume exact); slowest stop {worst:.2f} s")  # fmt: skip
    return 0 if ok == counted else 1


if __name__ == "__main__":
    sys.exit(main())
