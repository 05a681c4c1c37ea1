"""Peak memory of `robodetect score` and `robodetect scan` on one long synthetic recording.

    python scripts/bench_memory.py [--hours 10] [--dir /tmp/robodetect-bench] [--workers 1]

Builds (once, cached in --dir) a mono 8 kHz 16-bit WAV of --hours hours: the samples/ calls
concatenated with 0.5-3 s pauses, seeded. Then runs ``robodetect score --json`` and
``robodetect scan`` on it as child processes and prints the peak resident set size (VmHWM, polled
from /proc) of every process each command started: the main process and each scan worker.
A benchmark, not a test: the target is < 600 MB per command.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from bench_scan import process_tree  # scripts/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parent.parent
SR = 8000


def make_long_wav(path: Path, hours: float, seed: int = 0) -> Path:
    """Write the recording block by block (memory stays small whatever its length)."""
    if path.exists() and sf.info(path).duration >= hours * 3600 - 1:
        return path
    rng = np.random.default_rng(seed)
    calls = [sf.read(p, dtype="float32")[0] for p in sorted((REPO / "samples").glob("*.wav"))]
    total = int(hours * 3600 * SR)
    written = 0
    with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16") as out:
        while written < total:
            x = calls[int(rng.integers(len(calls)))]
            pause = np.zeros(int(rng.uniform(0.5, 3.0) * SR), np.float32)
            block = np.concatenate([x, pause])[: total - written]
            out.write(block)
            written += len(block)
    return path


def _hwm_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss(cmd: list[str]) -> tuple[dict[int, int], float, int]:
    """Run cmd; returns ({pid: peak RSS in KiB}, wall seconds, exit code)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    peaks: dict[int, int] = {}
    while proc.poll() is None:
        for pid in process_tree(proc.pid):
            hwm = _hwm_kib(pid)
            if hwm:
                peaks[pid] = max(peaks.get(pid, 0), hwm)
        time.sleep(0.1)
    err = proc.stderr.read().decode(errors="replace")
    if proc.returncode:
        print(err, file=sys.stderr)
    return peaks, time.perf_counter() - t0, proc.returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", type=float, default=10.0)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/robodetect-bench"))
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--model", default=None, help="model name or stem (default: shipped)")
    args = ap.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    wav = make_long_wav(args.dir / f"long-{args.hours:g}h.wav", args.hours)
    print(f"{wav}: {sf.info(wav).duration / 3600:.2f} h, {wav.stat().st_size / 2**20:.0f} MiB")
    model = ["--model", args.model] if args.model else []
    db = args.dir / "bench-memory.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    base = [sys.executable, "-m", "robodetect"]
    runs = {
        "score": base + ["score", "--json", "--channel", "mix", str(wav), *model, "--device", "cpu"],
        "scan": base
        + ["scan", str(wav), "--out", str(db), "--workers", str(args.workers), "--device", "cpu"]
        + ["--quiet", *model],
    }
    worst = 0
    for name, cmd in runs.items():
        peaks, wall, code = peak_rss(cmd)
        if not peaks:
            print(f"{name}: no process seen (exit {code})")
            continue
        main_pid = min(peaks)
        parts = [f"main {peaks[main_pid] / 1024:.0f} MB"]
        parts += [f"worker {v / 1024:.0f} MB" for p, v in sorted(peaks.items()) if p != main_pid]
        worst = max(worst, max(peaks.values()))
        print(f"{name}: peak RSS {', '.join(parts)}; {wall:.0f} s; exit {code}")
    print(f"largest single-process peak: {worst / 1024:.0f} MB (target < 600 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
