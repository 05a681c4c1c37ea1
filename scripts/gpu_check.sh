#!/usr/bin/env bash
# GPU check for `robodetect scan`: one command, a few minutes. Builds a synthetic archive from the
# repo's samples/ (no corpus needed), scans it on CPU and on CUDA into fresh result stores, prints
# the speeds side by side and checks that the scores agree:
#   CUDA float32 (--no-autocast) vs CPU: every call probability within 1e-4;
#   CUDA bf16/fp16 autocast (the default) vs CPU: within 0.02 (label changes are counted).
#
#   scripts/gpu_check.sh                 # needs a CUDA device; exit 1 when a check fails
#   scripts/gpu_check.sh --cpu           # no GPU: the same run with "cpu" in place of "cuda"
#                                        # (exercises the main-process model stage against the
#                                        # workers' one; for trying the script out)
#   CALLS=100 SECONDS_PER_CALL=60 scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=cuda
if [[ "${1:-}" == "--cpu" ]]; then DEVICE=cpu; fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export DEVICE CALLS="${CALLS:-200}" SECONDS_PER_CALL="${SECONDS_PER_CALL:-60}"

exec python - <<'EOF'
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

import robodetect
from robodetect.batch import available_cpus, scan
from robodetect.store import ResultStore

device, calls, call_seconds = os.environ["DEVICE"], int(os.environ["CALLS"]), float(os.environ["SECONDS_PER_CALL"])
if device == "cuda" and not torch.cuda.is_available():
    sys.exit("gpu_check: no CUDA device visible (torch.cuda.is_available() is False); use --cpu to try the script")
name = torch.cuda.get_device_name(0) if device == "cuda" else "none (--cpu)"
print(f"gpu_check: torch {torch.__version__}, GPU {name}, {available_cpus()} usable CPUs")

# synthetic archive: speech bursts cut from samples/ (robot and human), random gains, pauses, noise
root = Path(tempfile.mkdtemp(prefix="gpu-check-"))
rng = np.random.default_rng(0)
pool = [sf.read(p, dtype="float32")[0] for p in sorted(Path("samples").glob("*.wav"))]
t = time.perf_counter()
for i in range(calls):
    parts, n = [], 0
    while n < call_seconds * 8000:
        src = pool[int(rng.integers(len(pool)))]
        a = int(rng.integers(0, len(src) - 8000))
        burst = src[a : a + int(rng.uniform(1.0, 4.0) * 8000)] * rng.uniform(0.3, 1.5)
        parts += [burst, np.zeros(int(rng.uniform(0.2, 1.5) * 8000), np.float32)]
        n += len(parts[-1]) + len(burst)
    x = np.concatenate(parts)[: int(call_seconds * 8000)]
    x = np.clip(x + rng.normal(0, 1e-3, len(x)), -1, 1).astype(np.float32)
    sf.write(root / f"call{i:04d}.flac", x, 8000, subtype="PCM_16")
print(f"archive: {calls} calls x {call_seconds:.0f} s = {calls * call_seconds / 3600:.2f} h in {root} "
      f"(built in {time.perf_counter() - t:.0f} s)")

detector_cpu = robodetect.load(device="cpu")


def run(label: str, detector, **kw) -> dict[str, tuple[float | None, str]]:
    db = root / f"{label.replace(' ', '_').replace(',', '')}.db"
    with ResultStore(db) as store:
        stats = scan([str(root)], store, detector, channel="mix", **kw)
    stages = ", ".join(f"{k} {v:.1f}" for k, v in sorted(stats.stage_seconds.items(), key=lambda kv: -kv[1]))
    print(f"{label:<34} {stats.realtime_factor:8.0f}x real time  {stats.wall_seconds:6.1f} s  "
          f"{stats.windows} windows  errors {stats.errors}\n{'':<34} stage seconds: {stages}", flush=True)
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT path, robot_probability, label FROM calls").fetchall()
    conn.close()
    return {p: (prob, lab) for p, prob, lab in rows}


ref = run("cpu, model in workers", detector_cpu)
if device == "cuda":
    detector = robodetect.load(device="cuda")
    run("cuda warm-up (not timed)", detector, autocast=False)
    fp32 = run("cuda float32", detector, autocast=False)
    amp = run("cuda autocast (default)", detector, autocast=True)
else:
    fp32 = run("cpu, model in main process", detector_cpu, model_in_workers=False)
    amp = fp32

failed = False
for label, got, tol in (("float32", fp32, 1e-4), ("autocast", amp, 0.02)):
    diff = max(abs(got[p][0] - ref[p][0]) for p in ref if ref[p][0] is not None)
    flips = [p for p in ref if got[p][1] != ref[p][1]]
    ok = diff <= tol and set(got) == set(ref)
    print(f"check {label}: max |p - p_cpu| = {diff:.2e} (limit {tol:g}), {len(flips)} label changes: "
          f"{'OK' if ok else 'FAILED'}")
    failed |= not ok
shutil.rmtree(root, ignore_errors=True)
sys.exit(1 if failed else 0)
EOF
