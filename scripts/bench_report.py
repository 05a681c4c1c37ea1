"""Benchmark ``robodetect report`` on a big synthetic result store.

    python scripts/bench_report.py                                  # 100k calls, 10 windows each
    python scripts/bench_report.py --calls 1000000 --windows 2      # a million-row store
    python scripts/bench_report.py --fingerprints-from /tmp/bc/scaled-100000.db   # with campaigns

The store is written with plain SQL (no audio): labels ~5 % robot, 3 % uncertain, 80 % human,
10 % no speech, 2 % errors (5 reasons), paths in 300 folders, file times over 60 days, per-window
scores. ``--fingerprints-from`` copies the fingerprint rows of calls 1..N from another store (e.g.
the scaled store ``bench_campaigns.py --scale-calls`` writes) so the campaign section has work to
do. Prints the build time, the report's wall time and its size.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def build(db: Path, calls: int, windows: int, seed: int = 0) -> None:
    from robodetect.store import ResultStore

    with ResultStore(db):
        pass  # schema, application id
    rng = np.random.default_rng(seed)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA synchronous=OFF")
    labels = np.array(["robot", "uncertain", "human", "no_speech", "error"])
    t0 = time.time() - 60 * 86400
    cols = (
        "(id, path, channel_mode, channel, role, model_version, size, mtime, duration_seconds, speech_seconds, "
        "robot_probability, label, threshold, cues, error, scored_at)"
    )
    for start in range(1, calls + 1, 20000):
        ids = np.arange(start, min(start + 20000, calls + 1))
        lab = labels[rng.choice(5, size=len(ids), p=[0.05, 0.03, 0.80, 0.10, 0.02])]
        prob = np.where(
            lab == "robot",
            rng.uniform(0.87, 1.0, len(ids)),
            np.where(lab == "uncertain", rng.uniform(0.75, 0.87, len(ids)), rng.beta(1, 8, len(ids))),
        )
        dur = rng.uniform(10, 120, len(ids))
        rows = []
        for i, label, p, d in zip(ids.tolist(), lab.tolist(), prob.tolist(), dur.tolist(), strict=True):
            folder = f"/archive/site{i % 300:03d}"
            err = f"{folder}/call{i}.wav: cannot decode audio (reason {i % 5})" if label == "error" else None
            scored = label not in ("error", "no_speech")
            rows.append(
                (
                    i, f"{folder}/call{i}.wav", "auto", "mix", "call", "bench-v1", 10**6,
                    t0 + (i * 7919 % 60) * 86400, None if label == "error" else d, d * 0.6,
                    p if scored else None, label, 0.871, '["a cue", "another cue"]' if scored else None, err, 0.0,
                )
            )  # fmt: skip
        conn.executemany(f"INSERT INTO calls {cols} VALUES ({', '.join('?' * 16)})", rows)
        if windows:
            conn.executemany(
                "INSERT INTO windows VALUES (?, ?, ?, ?, ?)",
                (
                    (i, k, 2.0 * k, 2.0 * k + 2.0, float(p))
                    for i, p in zip(ids.tolist(), rng.uniform(0, 1, len(ids)).tolist(), strict=True)
                    for k in range(windows)
                ),
            )
    conn.commit()
    conn.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--windows", type=int, default=10, help="per-window scores per call")
    ap.add_argument("--fingerprints-from", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None, help="folder for the store and report (default: temp)")
    args = ap.parse_args()
    from robodetect.report import write_report

    root = args.out or Path(tempfile.mkdtemp(prefix="bench-report-"))
    root.mkdir(parents=True, exist_ok=True)
    db = root / "big.db"
    for old in root.glob("big.db*"):
        old.unlink()
    t = time.perf_counter()
    build(db, args.calls, args.windows)
    if args.fingerprints_from:
        conn = sqlite3.connect(db)
        conn.execute(f"ATTACH DATABASE '{args.fingerprints_from}' AS fp")
        conn.execute("INSERT INTO fingerprints SELECT * FROM fp.fingerprints WHERE call_id <= ?", (args.calls,))
        conn.execute("INSERT OR IGNORE INTO shared_hashes SELECT * FROM fp.shared_hashes")
        conn.commit()
        conn.close()
    print(f"store: {args.calls} calls, {args.windows} windows each, {db.stat().st_size / 2**20:.0f} MiB, "
          f"built in {time.perf_counter() - t:.0f} s")  # fmt: skip
    out = root / "report.html"
    t = time.perf_counter()
    data = write_report(db, out)
    print(
        f"report: {out} written in {time.perf_counter() - t:.1f} s, {out.stat().st_size / 1024:.0f} KiB "
        f"({data['files']} files, {len(data['campaigns'])} campaigns shown)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
