"""Shortcut checks: does the score move when only the channel (not the voice) changes?

    python scripts/shortcut_checks.py [--model STEM] [--calls 120]

Builds calls from dev utterances of both classes (clean channel: digital-zero pauses, no codec),
then scores each call and variants of it through the public API:
  * 2 s of extra leading and trailing silence,
  * +12 dB and -12 dB gain (clipped at full scale),
  * pauses filled with noise (pink noise, 30 dB below speech) instead of digital zero,
  * the same call delivered at 16 kHz (upsampled) instead of 8 kHz,
and prints the mean absolute change in robot probability and the share of flipped verdicts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import robodetect  # noqa: E402
from robodetect.simulate import SimConfig, _colored_noise, simulate_call  # noqa: E402
from robodetect.train import plan_calls, read_manifests  # noqa: E402


def variants(x: np.ndarray, rng: np.random.Generator) -> dict[str, tuple[np.ndarray, int]]:
    sil = np.zeros(2 * 8000, np.float32)
    rms = float(np.sqrt(np.mean(x[np.abs(x) > 1e-4] ** 2))) if np.any(np.abs(x) > 1e-4) else 0.01
    noise = _colored_noise(len(x), "pink", rng)
    noise = (noise / np.sqrt(np.mean(noise**2)) * rms * 10 ** (-30 / 20)).astype(np.float32)
    return {
        "+2 s silence both ends": (np.concatenate([sil, x, sil]), 8000),
        "+12 dB gain": (np.clip(x * 10 ** (12 / 20), -1, 1), 8000),
        "-12 dB gain": (x * 10 ** (-12 / 20), 8000),
        "noisy pauses vs digital zero": (x + noise, 8000),
        "16 kHz source vs 8 kHz": (soxr.resample(x, 8000, 16000), 16000),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--calls", type=int, default=120, help="calls per label")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    det = robodetect.load(args.model)
    rows = read_manifests(
        [REPO.parent / "shared" / "corpora" / "manifest.csv", REPO / "data" / "corpus" / "tts_manifest.csv"]
    )
    plans = plan_calls(rows, "dev", args.calls, args.seed)
    clean = SimConfig(
        p_clean=1.0,
        p_clip=0.0,
        p_bandlimit=0.0,
        p_packet_loss=0.0,
        codec="none",
        gain_db=(-6.0, -6.0),
        lead_max_seconds=0.0,
        trail_max_seconds=0.0,
    )
    deltas: dict[str, list[float]] = {}
    flips: dict[str, list[bool]] = {}
    for plan in plans:
        rng = np.random.default_rng(plan.seed)
        utts, left = [], plan.speech_seconds
        for p in plan.paths:
            x, _ = sf.read(p, dtype="float32")
            utts.append(x[: int(max(0.5, min(left, 6.0)) * 8000)])
            left -= len(utts[-1]) / 8000
            if left <= 0.25:
                break
        call, _ = simulate_call(utts, rng, clean)
        base = det.score(call, 8000)
        if base.robot_probability is None:
            continue
        for name, (y, sr) in variants(call, rng).items():
            r = det.score(y, sr)
            p = r.robot_probability if r.robot_probability is not None else 0.5
            deltas.setdefault(name, []).append(abs(p - base.robot_probability))
            flips.setdefault(name, []).append(r.label != base.label)
    print(f"model {det.model_version}; {len(plans)} dev calls (both labels), clean channel\n")
    print("| variation | calls | mean abs change in probability | 95th pct | verdicts flipped |")
    print("|---|---|---|---|---|")
    for name in deltas:
        d = np.array(deltas[name])
        print(
            f"| {name} | {len(d)} | {d.mean():.4f} | {np.percentile(d, 95):.4f} | {100 * np.mean(flips[name]):.1f}% |"
        )


if __name__ == "__main__":
    main()
