"""Play a recording as a live call and screen it: running robot probability and the decision moment.

    python scripts/screen_demo.py call.wav                  # real time (sleeps between chunks)
    python scripts/screen_demo.py call.wav --fast           # as fast as possible
    python scripts/screen_demo.py call.wav --fast --onnx model.onnx --confidence 0.9 --budget 3

The file is read at its own sample rate and pushed in ``--chunk-ms`` PCM chunks (int16, as a phone
line delivers them) to :class:`robodetect.stream.StreamingDetector`. A line is printed whenever the
probability is re-evaluated (every 1 s of speech), then the decision with its call time and what a
screening app would do, and at the end the final score (equal to ``robodetect score`` on the file).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import soundfile as sf
import torch

from robodetect.stream import HUMAN, ROBOT, StreamingDetector, default_stream_detector

ACTIONS = {ROBOT: "warn the user / hang up", HUMAN: "ring the phone"}


def _bar(p: float, width: int = 20) -> str:
    n = int(round(p * width))
    return "[" + "#" * n + "." * (width - n) + "]"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("wav", help="recording to play as a live call (any rate / channels libsndfile reads)")
    ap.add_argument("--fast", action="store_true", help="do not wait in real time between chunks")
    ap.add_argument("--chunk-ms", type=float, default=100.0, help="PCM chunk length (default 100 ms)")
    ap.add_argument("--model", default=None, help="model stem (default: the shipped model)")
    ap.add_argument("--onnx", default=None, help="score windows with this ONNX/TorchScript export instead")
    ap.add_argument("--confidence", type=float, default=0.95, help="decide early once p >= c or p <= 1 - c")
    ap.add_argument("--min-speech", type=float, default=1.0, help="seconds of speech before any decision")
    ap.add_argument("--budget", type=float, default=4.0, help="seconds of speech after which to decide anyway")
    ap.add_argument("--threshold", type=float, default=None, help="robot threshold (default: the model's)")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1, best for streaming; the default ONNX engine always runs one)",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    scorer = detector = None
    if args.onnx:
        from robodetect.export import load_exported

        scorer = load_exported(args.onnx, threads=args.threads)
    else:
        detector = default_stream_detector(args.model)  # the ONNX engine when onnxruntime is installed
    try:
        f = sf.SoundFile(args.wav)
    except Exception as exc:
        print(f"screen_demo: cannot read {args.wav}: {exc}", file=sys.stderr)
        return 1
    with f:
        stream = StreamingDetector(
            detector,
            sample_rate=f.samplerate,
            channels=f.channels,
            confidence=args.confidence,
            min_speech_seconds=args.min_speech,
            speech_budget_seconds=args.budget,
            threshold=args.threshold,
            window_logits=scorer,
        )
        print(
            f"{args.wav}: {f.frames / f.samplerate:.1f} s, {f.samplerate} Hz, {f.channels} ch; "
            f"decide at p >= {stream.confidence:.2f} or <= {1 - stream.confidence:.2f} after "
            f"{stream.min_speech_samples / 8000:g} s of speech, else by threshold {stream.threshold:.2f} "
            f"after {stream.budget_samples / 8000:g} s"
        )
        stream.warmup()
        block = max(1, int(round(args.chunk_ms / 1000 * f.samplerate)))
        start, last_p, busy = time.monotonic(), None, []
        for chunk in f.blocks(blocksize=block, dtype="int16", always_2d=True):
            t0 = time.perf_counter()
            u = stream.push(chunk)
            busy.append(time.perf_counter() - t0)
            if u.probability_speech_seconds != last_p and u.robot_probability is not None:
                last_p = u.probability_speech_seconds
                print(
                    f"  call {u.audio_seconds:6.2f} s  speech {u.probability_speech_seconds:5.1f} s  "
                    f"p(robot) {u.robot_probability:.3f} {_bar(u.robot_probability)}  {u.decision}"
                )
            if u.new_decision:
                _announce(u)
            if not args.fast:  # pace to the audio clock
                delay = start + u.audio_seconds - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        final = stream.finish()
    if final.new_decision:
        _announce(final)
    p = "n/a" if final.robot_probability is None else f"{final.robot_probability:.3f}"
    print(
        f"call ended at {final.audio_seconds:.2f} s: {final.label.upper()} (p(robot) {p}, "
        f"{final.speech_seconds:.1f} s of speech, {final.windows} windows); decision {final.decision}"
        + (f" at {final.decided_at_seconds:.2f} s ({final.decision_reason})" if final.decided_at_seconds else "")
    )
    busy_ms = np.array(busy) * 1000
    print(f"compute per {args.chunk_ms:g} ms chunk: median {np.median(busy_ms):.2f} ms, max {busy_ms.max():.2f} ms")
    return 0


def _announce(u) -> None:
    print(
        f">>> DECISION at call time {u.decided_at_seconds:.2f} s ({u.decided_at_speech_seconds:.1f} s of speech): "
        f"{u.decision.upper()} ({u.decision_reason}, p(robot) {u.robot_probability:.3f}) -> {ACTIONS[u.decision]}"
    )


if __name__ == "__main__":
    sys.exit(main())
