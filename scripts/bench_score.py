"""Benchmark ``robodetect score``: the cost per window (eager training module vs the fast path that
score, stream and scan run) and the cold start of one ~10 s file from the shell.

    python scripts/bench_score.py                 # shipped model, samples/human_en_speechocean.wav
    python scripts/bench_score.py --repeat 5 --file call.wav

Per window: thread CPU time (robust on a busy shared machine) and wall time of
``Detector.window_logits`` in score-sized batches, with 1 torch thread and with the default count.
The ONNX engine's per-window cost (onnxruntime, its default threads). Cold start: ``python -m
robodetect score --engine onnx|torch FILE`` in a fresh process, wall time and the child's CPU time
(user + sys), best of ``--repeat``; plus ``import torch`` alone and whether librosa / torch were
imported.
Targets (printed, not asserted): <= 2.5 ms per window on CPU; <= 1.2 s cold start on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
TARGET_WINDOW_MS, TARGET_COLD_S = 2.5, 1.2


def per_window(score, windows: np.ndarray, repeat: int) -> tuple[float, float]:
    """(thread CPU ms, wall ms) per window, best pass of ``repeat`` (after one warm-up pass)."""
    score(windows[:4])
    cpu, wall = [], []
    for _ in range(repeat):
        c, t = time.thread_time(), time.perf_counter()
        score(windows)
        cpu.append(time.thread_time() - c)
        wall.append(time.perf_counter() - t)
    return 1e3 * min(cpu) / len(windows), 1e3 * min(wall) / len(windows)


def child_run(cmd: list[str], env: dict) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd="/")
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if out.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed: {out.stderr[-500:]}")
    return wall, cpu, out.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", default=str(REPO / "samples" / "human_en_speechocean.wav"))
    ap.add_argument("--model", default=None, help="model name or stem (default: the shipped model)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import robodetect
    from robodetect.audio import load_audio
    from robodetect.detector import analyze

    detector = robodetect.load(args.model)
    windows = np.concatenate(
        [analyze(load_audio(p, "mix").samples[0]).windows for p in sorted(REPO.glob("samples/*.wav"))]
    )
    windows = np.concatenate([windows] * max(1, 128 // len(windows)))

    def eager(w: np.ndarray) -> np.ndarray:  # the training module at the old batch size (256)
        with torch.inference_mode():
            return np.concatenate(
                [detector.model(torch.from_numpy(w[i : i + 256])).numpy() for i in range(0, len(w), 256)]
            )

    def fast(w: np.ndarray) -> np.ndarray:
        return detector.window_logits(w)[0]

    print(f"model {detector.model_version}; {len(windows)} windows from samples/; torch {torch.__version__}; "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    default_threads = torch.get_num_threads()
    for threads in sorted({1, default_threads}):
        torch.set_num_threads(threads)
        for name, fn in (("eager module, batch 256", eager), ("fast path (score/stream/scan)", fast)):
            cpu, wall = per_window(fn, windows, args.repeat)
            print(f"per window, {threads} thread(s), {name:<30} CPU {cpu:6.2f} ms   wall {wall:6.2f} ms")
    torch.set_num_threads(default_threads)

    try:
        onnx = robodetect.load(args.model, engine="onnx")
    except Exception as exc:  # no onnxruntime, or no graph for a custom model
        print(f"ONNX engine: not available ({exc})")
    else:
        onnx.session.run(None, {"wav": windows[:32]})  # warm-up
        cpu, wall = per_window(onnx.window_logits, windows, args.repeat)
        print(
            f"per window, ORT default threads, {'ONNX engine (score default)':<30} CPU {cpu:6.2f} ms   wall {wall:6.2f} ms"
        )

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    model = ["--model", args.model] if args.model else []
    torch_wall = min(child_run([sys.executable, "-c", "import torch"], env)[0] for _ in range(args.repeat))
    for engine in ("onnx", "torch"):
        cmd = [sys.executable, "-m", "robodetect", "score", "--engine", engine, "--channel", "mix", *model, args.file]
        try:
            runs = [child_run(cmd, env) for _ in range(args.repeat)]
        except SystemExit as exc:
            print(f"cold start, {engine} engine: failed ({exc})")
            continue
        wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
        probe = (
            "import sys, robodetect.cli as c; c.main(sys.argv[1:]); "
            "print('librosa' in sys.modules, 'torch' in sys.modules)"
        )
        imported = child_run([sys.executable, "-c", probe, *cmd[3:]], env)[2].split()[-2:]
        print(f"cold start `robodetect score --engine {engine}` on {Path(args.file).name}: wall {wall:.2f} s, "
              f"CPU {cpu:.2f} s (best of {args.repeat}); librosa imported: {imported[0]}, torch imported: "
              f"{imported[1]}")  # fmt: skip
    print(f"`import torch` alone {torch_wall:.2f} s")
    print(
        f"targets: <= {TARGET_WINDOW_MS} ms per window (fast path), <= {TARGET_COLD_S} s cold start on a quiet machine"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
