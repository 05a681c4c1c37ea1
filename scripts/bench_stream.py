"""Streaming compute per 1 s chunk on one CPU thread: eager torch vs TorchScript vs onnxruntime,
and the ONNX engine a ``StreamingDetector()`` gets by default when onnxruntime is installed.

Feeds a call (speech with its pauses) to :class:`robodetect.stream.StreamingDetector` in 1 s chunks
and times each ``push`` (VAD + resampling + the windows scored in that second), then reports the
median and p99 per runtime, the time of one window forward alone, and the exported model sizes.
Targets (printed, not asserted): p99 <= 2 ms per 1 s chunk with the fastest runtime; export <= 2 MB.

    python scripts/bench_stream.py                       # shipped model, a shared-corpora call
    python scripts/bench_stream.py --model STEM --audio call.wav --repeat 5
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import robodetect  # noqa: E402
from robodetect.audio import SAMPLE_RATE, load_audio  # noqa: E402
from robodetect.export import export_model, load_exported  # noqa: E402
from robodetect.features import WINDOW_SAMPLES  # noqa: E402
from robodetect.stream import StreamingDetector, default_stream_detector  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TARGET_P99_MS, TARGET_SIZE_MB = 2.0, 2.0  # issue 12: p99 <= 2 ms per 1 s chunk (torch, 1 thread)


def default_audio() -> Path:
    """A long robot call from the shared corpora (~35 s of nearly continuous speech)."""
    folder = REPO.parent / "shared" / "corpora" / "audio" / "coqui-vits-vctk"
    files = sorted(folder.glob("*.flac")) if folder.exists() else []
    if not files:
        raise SystemExit("no default audio found: pass --audio FILE")
    return files[0]


def load_detector(stem: str | None, random_ok: bool):
    try:
        return robodetect.load(stem)
    except FileNotFoundError:
        if not random_ok:
            raise
        from robodetect.model import ModelConfig, RobotNet

        print("note: shipped model not found; timing a seeded random-weight model of the same shape\n")
        torch.manual_seed(0)
        return robodetect.Detector(RobotNet(ModelConfig(version="random-bench")))


def time_stream(detector, scorer, x: np.ndarray, repeat: int) -> tuple[np.ndarray, np.ndarray]:
    """(wall, thread CPU) seconds per 1 s push, shape (repeat, chunks): ``repeat`` passes of the
    call (one more pass warms up, untimed). One intra-op thread runs in the calling thread, so the
    thread's CPU time is the compute time even when a busy shared machine preempts it (wall time
    then includes waits; a virtual machine's stolen time and cache interference it does not
    exclude: hence the per-pass p99 spread)."""
    wall, cpu = [], []
    for r in range(repeat + 1):
        stream = StreamingDetector(detector, window_logits=scorer, speech_budget_seconds=1e9)
        for i in range(0, len(x), SAMPLE_RATE):
            t, c = time.perf_counter(), time.thread_time()
            stream.push(x[i : i + SAMPLE_RATE])
            if r:
                wall.append(time.perf_counter() - t)
                cpu.append(time.thread_time() - c)
        stream.finish()
    return np.array(wall).reshape(repeat, -1), np.array(cpu).reshape(repeat, -1)


def time_window(scorer, n: int = 200) -> float:
    """Thread CPU seconds of one single-window forward (median of ``n``)."""
    w = (0.1 * np.random.default_rng(0).standard_normal((1, WINDOW_SAMPLES))).astype(np.float32)
    for _ in range(10):
        scorer(w)
    times = []
    for _ in range(n):
        c = time.thread_time()
        scorer(w)
        times.append(time.thread_time() - c)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="model stem (default: shipped; random weights if none shipped)")
    ap.add_argument("--audio", type=Path, default=None, help="call to stream (default: a shared-corpora call)")
    ap.add_argument("--repeat", type=int, default=3, help="timed passes over the call")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    detector = load_detector(args.model, random_ok=args.model is None)
    audio = args.audio or default_audio()
    x = load_audio(audio).samples[0]
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_model(Path(tmp) / "model.onnx", "onnx", detector.model)
        ts_path = export_model(Path(tmp) / "model.pt", "torchscript", detector.model)
        sizes = {"onnx": onnx_path.stat().st_size, "torchscript": ts_path.stat().st_size}
        # name -> (the stream's detector, its window scorer: None = the detector's own)
        runtimes = {
            "eager torch": (detector, _eager_model(detector)),  # the training module, unfolded
            "torch": (detector, None),  # a torch Detector's fast_model (BN folded, channels-last)
            "torchscript": (detector, load_exported(ts_path, threads=1)),
            "onnxruntime": (detector, load_exported(onnx_path, threads=1)),
        }
        default = default_stream_detector(args.model)
        if not isinstance(default, robodetect.Detector):  # StreamingDetector()'s own: the ONNX engine
            runtimes["onnx engine"] = (default, None)
        print(f"audio: {audio} ({len(x) / SAMPLE_RATE:.1f} s), model {detector.model_version}, 1 thread")
        print(f"torch {torch.__version__}, {os.cpu_count()} CPUs visible (shared machines make p99 noisy)\n")
        print(
            f"{'':<13} {'per 1 s chunk: thread CPU time':^32} {'wall time':^21} {'1 window':>9} {'p99 of each pass':>22}"
            f" {'p99 of chunk minima':>20}"
        )
        print(
            f"{'runtime':<13} {'median':>10} {'p99':>10} {'max':>10} {'median':>10} {'p99':>10} {'CPU':>9}"
            f" {'min / median / max':>22} {'(noise floor)':>20}"
        )
        best, floors = None, {}
        for name, (stream_detector, scorer) in runtimes.items():
            wall, cpu = time_stream(stream_detector, scorer, x, args.repeat)
            wall, cpu = wall * 1000, cpu * 1000
            per_pass = np.percentile(cpu, 99, axis=1)
            # every pass does the same work chunk by chunk, and a busy host only adds time: the
            # fastest of the passes at each chunk estimates the code's own cost (timeit's rule)
            floor_p99 = np.percentile(cpu.min(axis=0), 99)
            floors[name] = floor_p99
            wall, cpu = wall.ravel(), cpu.ravel()
            win = time_window(scorer or _eager(stream_detector)) * 1000
            p99 = np.percentile(cpu, 99)
            best = min(best or (p99, name), (p99, name))
            print(
                f"{name:<13} {np.median(cpu):7.2f} ms {p99:7.2f} ms {cpu.max():7.2f} ms "
                f"{np.median(wall):7.2f} ms {np.percentile(wall, 99):7.2f} ms {win:6.2f} ms"
                f"   {per_pass.min():.2f} / {np.median(per_pass):.2f} / {per_pass.max():.2f} ms"
                f" {floor_p99:17.2f} ms"
            )
    print(f"\nfastest p99 (CPU): {best[1]} {best[0]:.2f} ms per 1 s chunk (target <= {TARGET_P99_MS} ms)")
    print(
        f"its p99 over chunks of each chunk's fastest pass: {floors[best[1]]:.2f} ms "
        "(the cost without a busy host's interference)"
    )
    for fmt, size in sizes.items():
        print(f"export size {fmt}: {size / 1e6:.2f} MB (target <= {TARGET_SIZE_MB} MB)")
    return 0


def _eager(detector):
    def score(windows: np.ndarray) -> np.ndarray:
        return detector.window_logits(windows)[0]

    return score


def _eager_model(detector):
    """Calibrated logits from the eager training module (what the stream ran before the fast path)."""
    from robodetect import scoring

    def score(windows: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            raw = detector.model(torch.from_numpy(windows)).numpy().astype(np.float64)
        return scoring.calibrated_logit(raw, scale=detector.config.calib_scale, bias=detector.config.calib_bias)

    return score


if __name__ == "__main__":
    sys.exit(main())
