"""Shortcut checks: does the score move when only the channel (not the voice) changes?

    python scripts/shortcut_checks.py [--model STEM] [--calls 120] [--max-dlogit 0.1]

Builds calls from dev utterances of both classes (clean channel: dithered pauses and a 0.5 s
dithered lead, no codec),
then scores each call and variants of it through the public API:
  * 2 s of extra leading and trailing silence (whole 30 ms VAD frames, so the frame grid stays put),
  * 20 ms more lead (the reference's own dither): only the phase of the VAD's frame grid moves, which
    shifts segment edges by a frame here and there (a call's score should not follow that either),
  * +12 dB and -12 dB gain (clipped at full scale),
  * pauses filled with noise (pink noise, 30 dB below speech),
  * the same call delivered at 16 kHz (upsampled) instead of 8 kHz,
  * the resampler: the call taken to 22.05 kHz and back to 8 kHz with scipy's resample_poly (the
    filter that once marked every synthesised robot) instead of soxr HQ,
  * digital silence: every 30 ms frame more than 45 dB below the loudest set to exact zero (as
    formant synthesisers leave inside utterances),
  * extra dither: white noise 55 dB below the speech,
  * an MP3 round trip (16 kHz, VBR ~30 kbit/s), as archives and some human corpora were stored,
  * handset noise suppression (a Wiener suppressor with a -40 dB floor, as phones and VoIP clients
    run on the uplink: it gates the floor between and inside words and leaves "musical noise"),
  * automatic gain control / a compressor (3:1 over 300 ms toward the active speech level), as
    handsets and lines run: a human's level range compressed as a TTS engine's often is,
  * room reverberation: the call through a synthetic room (decaying noise, RT60 0.5 s, as much
    energy in the tail as in the direct path), as a speakerphone or a car kit hears a caller,
  * the pauses between utterances three times as long (the same utterances, the same draws; a pause
    stays within the simulator's 3 s cap, which about 9 % of them reach),
  * the call cut at its quietest 10 ms near every 0.5 s into digit-length pieces, a pause (the
    simulator's draw, dither only) put between them, the speech and its levels kept: the shape of a
    call of spoken digits (FSDD, 0.44 s clips: half of such a call is pause), spoken by anyone.
Prints, per variation, the mean signed and absolute change of the calibrated call logit (|dp|
saturates near 0 and 1; the logit does not), the change fitted as a shift plus a slope on the call's
own logit (dlogit = shift + slope * (logit - threshold logit): a cue moves every call one way, the
shift, while a variation that hides evidence pulls confident calls toward the threshold, a negative
slope), that change over the spread (std) of the calls' own
calibrated logits (a model with compressed, less confident scores passes the absolute figure more
easily for the same reliance on a cue), the mean |dp|, the share of verdicts flipped
overall and among calls within 0.1 of the threshold. Exits 1 when a mean |dlogit| exceeds
--max-dlogit: a channel property that moves the score is a shortcut the model learnt.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import soundfile as sf
import soxr
from scipy.signal import resample_poly

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from train import manifests  # noqa: E402

import robodetect  # noqa: E402
from robodetect.core import analyze  # noqa: E402
from robodetect.jsonio import dumps  # noqa: E402
from robodetect.scoring import logit, sigmoid  # noqa: E402
from robodetect.simulate import (  # noqa: E402
    SimConfig,
    _colored_noise,
    _pause,
    agc_compress,
    mp3_round_trip,
    noise_suppress,
    room_reverb,
    simulate_call,
    split_pieces,
    with_pauses,
)
from robodetect.train import plan_calls, read_manifests  # noqa: E402
from robodetect.vad import FRAME_SAMPLES, detect_speech  # noqa: E402

LEAD_SAMPLES = 4000  # 0.5 s at 8 kHz
PHASE_SAMPLES = 160  # 20 ms: two thirds of a VAD frame


def _digital_silence(x: np.ndarray, below_db: float = 45.0) -> np.ndarray:
    n = 240
    y = x.copy()
    frames = y[: len(y) // n * n].reshape(-1, n)
    level = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-20)
    frames[level < level.max() - below_db] = 0.0
    return y


ROOMS = ((0.5, 0.0),)  # the room row(s): (RT60 in s, direct-to-reverberant ratio in dB)


def room_row(rt60: float, drr_db: float) -> str:
    return f"room reverberation (RT60 {rt60:g} s, DRR {drr_db:g} dB)"


def variants(
    x: np.ndarray, rng: np.random.Generator, rooms: tuple[tuple[float, float], ...] = ROOMS
) -> dict[str, tuple[np.ndarray, int]]:
    sil = np.zeros(67 * FRAME_SAMPLES, np.float32)  # 2.01 s: whole VAD frames, the grid stays aligned
    rms = float(np.sqrt(np.mean(x[np.abs(x) > 1e-4] ** 2))) if np.any(np.abs(x) > 1e-4) else 0.01
    noise = _colored_noise(len(x), "pink", rng)
    noise = (noise / np.sqrt(np.mean(noise**2)) * rms * 10 ** (-30 / 20)).astype(np.float32)
    up = soxr.resample(x, 8000, 22050, quality="HQ")
    dither = rng.standard_normal(len(x)).astype(np.float32) * rms * 10 ** (-55 / 20)
    return {
        "+2 s silence both ends": (np.concatenate([sil, x, sil]), 8000),
        # 20 ms more of the lead's dither: only the phase of the 30 ms VAD frame grid changes
        "VAD frame phase (+20 ms lead)": (np.concatenate([x[:PHASE_SAMPLES], x]), 8000),
        "+12 dB gain": (np.clip(x * 10 ** (12 / 20), -1, 1), 8000),
        "-12 dB gain": (x * 10 ** (-12 / 20), 8000),
        "noisy pauses": (x + noise, 8000),
        "16 kHz source vs 8 kHz": (soxr.resample(x, 8000, 16000), 16000),
        "resample_poly vs soxr (via 22.05 kHz)": (resample_poly(up, 320, 882).astype(np.float32), 8000),
        "digital silence (frames < -45 dB zeroed)": (_digital_silence(x), 8000),
        "extra dither (-55 dB white)": (x + dither, 8000),
        "MP3 round trip (16 kHz, ~30 kbit/s)": (mp3_round_trip(x, 0.5).astype(np.float32), 8000),
        "handset noise suppression (Wiener, -40 dB floor)": (noise_suppress(x, -40.0, 2.0).astype(np.float32), 8000),
        "AGC / compressor (3:1, 300 ms)": (np.clip(agc_compress(x), -1, 1).astype(np.float32), 8000),
        # last, so that every other row's draws are what they were before the room rows existed
        **{room_row(*r): (np.clip(room_reverb(x, *r, rng), -1, 1).astype(np.float32), 8000) for r in rooms},
    }


PIECE_SECONDS = 0.5  # the "pieces" row: about one FSDD digit (0.44 s on average)


def insert_pauses(x: np.ndarray, rng: np.random.Generator, floor: float, config: SimConfig) -> np.ndarray:
    """``x`` with a pause (the simulator's pause draw, white noise at ``floor`` RMS, as the clean
    channel's dither) put in at every cut of :func:`split_pieces`: the same speech at the same
    level, only broken into digit-length pieces."""

    def pause() -> np.ndarray:
        return (rng.standard_normal(_pause(rng, config)) * floor).astype(np.float32)

    return np.concatenate(with_pauses(split_pieces(x, PIECE_SECONDS), pause))


def measure(
    det,
    calls: list[tuple],
    thr: float,
    bases: list[float] | None = None,
    rooms: tuple[tuple[float, float], ...] = ROOMS,
) -> dict[str, list[tuple]]:
    """Score each (8 kHz call, seed[, label[, extra variants]]) and its variants with ``det``; per
    variation a list of (dlogit, dp, verdict flipped, base within 0.1 of the threshold, label or
    None, the unvaried calibrated logit). Extra variants ({name: (signal, rate)}) are those only the call's builder can make (its
    utterances re-assembled). ``bases``, if given, receives each call's unvaried calibrated logit
    (for :func:`relative`); ``rooms``: the room rows' (RT60, DRR)."""
    out: dict[str, list[tuple]] = {}
    for call, seed, *rest in calls:
        label, extra = rest[:1], (rest[1] if len(rest) > 1 else {})
        rng = np.random.default_rng(seed)
        if hasattr(det, "reference"):
            det.reference(call)
        base = det.score(call, 8000).robot_probability
        if base is None:
            continue
        if bases is not None:
            bases.append(float(logit(base)))
        near = abs(base - thr) <= 0.1
        for name, (y, sr) in {**variants(call, rng, rooms), **extra}.items():
            p = det.score(y, sr).robot_probability
            p = 0.5 if p is None else p
            flip = (p >= thr) != (base >= thr)
            row = (logit(p) - logit(base), p - base, flip, near, (label or [None])[0], float(logit(base)))
            out.setdefault(name, []).append(row)
    return out


def shift_and_slope(dlogit: np.ndarray, base: np.ndarray, thr: float) -> tuple[float, float]:
    """Least-squares ``dlogit = shift + slope * (base - logit(thr))``: the move of a call at the
    threshold (a cue: every call moved one way) and how much of its own logit a call loses (masked
    evidence: confident calls pulled toward the threshold, slope < 0). (nan, nan) under 2 calls."""
    dlogit, x = np.asarray(dlogit, np.float64), np.asarray(base, np.float64) - float(logit(thr))
    if len(x) < 2 or np.ptp(x) == 0:
        return float("nan"), float("nan")
    (shift, slope), *_ = np.linalg.lstsq(np.c_[np.ones_like(x), x], dlogit, rcond=None)
    return float(shift), float(slope)


def relative(mean_abs_dlogit: float, bases: list[float]) -> float:
    """A row's mean |dlogit| over the spread (std) of the calls' own calibrated logits: a model whose
    probabilities are less confident moves less in logits for the same reliance on a cue, so the
    absolute figure alone can pass a model only because its scores are compressed."""
    spread = float(np.std(bases)) if len(bases) > 1 else 0.0
    return mean_abs_dlogit / spread if spread > 0 else float("nan")


class PhaseAveraged:
    """``det`` scoring each call at ``phases`` phases of the VAD's 30 ms frame grid (the call's own
    first k * 10 ms repeated in front, k < phases) and averaging the calibrated call logits: an
    experiment on how much of a row is segmentation jitter (``--phases``), not a shipped rule."""

    def __init__(self, det, phases: int) -> None:
        self.det, self.phases = det, phases

    def score(self, y: np.ndarray, sr: int):
        step = sr // 100
        logits = []
        for k in range(self.phases):
            p = self.det.score(np.concatenate([y[: k * step], y]), sr).robot_probability
            if p is None:
                return SimpleNamespace(robot_probability=None)
            logits.append(logit(p))
        return SimpleNamespace(robot_probability=float(sigmoid(np.mean(logits))))


class ReferenceSegments:
    """``det`` scoring every variant with the speech segments its VAD finds in the *unvaried* call
    (variants of the same length at 8 kHz; the others as usual): an experiment on how much of a row
    is the segmentation moving (what the VAD keeps) rather than the classifier hearing the change
    in the windows it gets (``--reference-segments``), not a shipped rule."""

    def __init__(self, det) -> None:
        self.det, self.ref = det, None

    def reference(self, call: np.ndarray) -> None:
        self.ref = (len(call), detect_speech(call, self.det.vad_config).segments)

    def score(self, y: np.ndarray, sr: int):
        if self.ref is None or sr != 8000 or len(y) != self.ref[0]:
            return self.det.score(y, sr)
        y = np.asarray(y, dtype=np.float32)
        analysis = analyze(y, "mix", self.det.vad_config, self.det.hop_samples, segments=self.ref[1])
        return self.det.finalize(analysis, *self.det.window_logits(analysis.windows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--calls", type=int, default=120, help="calls per label")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--corpus", default=str(REPO / "data" / "corpus"), help="build_corpus.py's output folder")
    ap.add_argument("--max-dlogit", type=float, default=0.1, help="fail above this mean |dlogit|")
    ap.add_argument(
        "--phases",
        type=int,
        default=1,
        help="experiment: average each call's logit over this many VAD frame-grid phases (10 ms apart)",
    )
    ap.add_argument(
        "--reference-segments",
        action="store_true",
        help="experiment: segment every same-length 8 kHz variant with the unvaried call's VAD segments",
    )
    ap.add_argument(
        "--room",
        nargs=2,
        type=float,
        action="append",
        default=[],
        metavar=("RT60", "DRR"),
        help="experiment: one more room row, a room of this RT60 (seconds, > 0) and direct-to-reverberant "
        "ratio (dB); repeatable (the RT60 0.5 s, DRR 0 dB row is always there)",
    )
    ap.add_argument(
        "--json",
        type=Path,
        default=None,
        help="also write the rows as JSON here (what scripts/rows_over_models.py reads before the Markdown)",
    )
    args = ap.parse_args()
    rooms = ROOMS + tuple((rt60, drr) for rt60, drr in args.room)
    if not all(rt60 > 0 and np.isfinite(rt60) and np.isfinite(drr) for rt60, drr in rooms):
        ap.error("--room: RT60 must be > 0 seconds and both values finite")
    if len({room_row(*r) for r in rooms}) < len(rooms):
        ap.error("--room: each room once (RT60 0.5 s, DRR 0 dB is always measured)")
    if args.json is not None and (args.json.is_dir() or not os.access(args.json.parent, os.W_OK)):
        raise SystemExit(f"shortcut_checks: {args.json}: cannot write the rows there (a folder, or not writable)")
    det = robodetect.load(args.model)
    rows = read_manifests(manifests(args))
    plans = plan_calls(rows, "dev", args.calls, args.seed)
    clean = SimConfig(
        p_clean=1.0,
        clean_floor_db=(-120.0, -120.0),  # the reference: dither only
        p_clip=0.0,
        p_bandlimit=0.0,
        p_packet_loss=0.0,
        codec="none",
        gain_db=(-6.0, -6.0),
        lead_max_seconds=0.0,
        trail_max_seconds=0.0,
    )
    long_pauses = replace(clean, pause_median_seconds=3 * clean.pause_median_seconds)
    thr = det.decision.threshold
    calls = []
    for plan in plans:
        rng = np.random.default_rng(plan.seed)
        utts, left = [], plan.speech_seconds
        for p in plan.paths:
            x, _ = sf.read(p, dtype="float32")
            utts.append(x[: int(max(0.5, min(left, 6.0)) * 8000)])
            left -= len(utts[-1]) / 8000
            if left <= 0.25:
                break
        call = simulate_call(utts, rng, clean)[0]
        floor = 0.1 * 10 ** ((clean.gain_db[0] + clean.dither_db) / 20)  # the clean channel's dither
        assembled = {  # the same utterances re-assembled, from the call's own seed
            "pauses between utterances x3": simulate_call(utts, np.random.default_rng(plan.seed), long_pauses)[0],
            f"speech cut into {PIECE_SECONDS:g} s pieces, pauses between": insert_pauses(
                call, np.random.default_rng(plan.seed), floor, clean
            ),
        }
        # half a second of the channel's own dither before the speech, as every real recording has
        # some lead: a call that starts with speech at sample 0 loses its first ~0.2 s to the VAD's
        # trailing noise-floor gate starting up (robodetect.vad), which is not what the
        # "+2 s silence" row is meant to measure (any lead, zeros or dither, changes that alike)
        lead = rng.standard_normal(LEAD_SAMPLES) * 0.1 * 10 ** ((clean.gain_db[0] + clean.dither_db) / 20)
        lead = lead.astype(np.float32)
        extra = {name: (np.concatenate([lead, y]), 8000) for name, y in assembled.items()}
        calls.append((np.concatenate([lead, call]), plan.seed, plan.label, extra))
    bases: list[float] = []
    scorer = PhaseAveraged(det, args.phases) if args.phases > 1 else det
    if args.reference_segments:
        if args.phases > 1:
            raise SystemExit("shortcut_checks: --phases and --reference-segments are separate experiments")
        scorer = ReferenceSegments(det)
    rows_out = measure(scorer, calls, thr, bases, rooms)
    experiment = f", call logit averaged over {args.phases} VAD frame phases" if args.phases > 1 else ""
    if args.reference_segments:
        experiment = ", variants of the same length segmented with the unvaried call's VAD segments"
    print(
        f"model {det.model_version}; {len(plans)} dev calls (both labels), clean channel{experiment}, threshold {thr:.3f}; "
        f"spread (std) of their calibrated logits {np.std(bases):.3f}\n"
    )
    print(
        "| variation | calls | mean dlogit | humans / robots | mean abs dlogit | / spread | shift at threshold / slope | "
        "mean abs dp | verdicts flipped | flipped within 0.1 of threshold |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    table = summarise_rows(rows_out, bases, thr)
    for r in table:
        near_flip = f"{r['near_flipped_percent']:.1f} % of {r['near_calls']}" if r["near_calls"] else "-"
        by = " / ".join("-" if v is None else f"{v:+.3f}" for v in (r["mean_dlogit_humans"], r["mean_dlogit_robots"]))
        print(
            f"| {r['variation']} | {r['calls']} | {r['mean_dlogit']:+.3f} | {by} | {r['mean_abs_dlogit']:.3f} | "
            f"{r['relative']:.3f} | {r['shift']:+.3f} / {r['slope']:+.3f} | {r['mean_abs_dp']:.4f} | "
            f"{r['flipped_percent']:.1f} % | {near_flip} |"
        )
    failed = [r["variation"] for r in table if r["mean_abs_dlogit"] > args.max_dlogit]
    json_error = None
    if args.json is not None:
        doc = {
            "model": det.model_version,
            "experiment": experiment.lstrip(", ") or None,
            "calls": len(plans),
            "threshold": float(thr),
            "spread": float(np.std(bases)),
            "max_dlogit": args.max_dlogit,
            "rows": table,
            "failed": failed,
        }
        try:
            write_json(args.json, doc)
        except OSError as exc:
            json_error = f"shortcut_checks: {args.json}: cannot write ({exc.strerror or exc})"
    if failed:
        print(f"\nFAIL: mean |dlogit| above {args.max_dlogit} for: {', '.join(failed)}")
    else:
        print(f"\nOK: every mean |dlogit| is within {args.max_dlogit}")
    if json_error:  # the table above is whole; only the JSON copy is missing
        print(json_error, file=sys.stderr)
        sys.exit(2)
    sys.exit(1 if failed else 0)


def summarise_rows(rows_out: dict[str, list[tuple]], bases: list[float], thr: float) -> list[dict]:
    """One record per row of ``measure``'s output: what the printed table and the --json file hold.
    A class without calls in a row has ``None`` for its mean dlogit."""
    table = []
    for name, vals in rows_out.items():
        dl, dp, flip, near, label, base = (np.array(v) for v in zip(*vals))
        shift, slope = shift_and_slope(dl, base, thr)
        # a channel property that moves both classes the same way masks evidence (noise hides
        # artefacts: robots drift toward human); one that separates them is a cue the model reads
        by = {k: float(dl[label == k].mean()) if np.any(label == k) else None for k in ("human", "robot")}
        table.append(
            {
                "variation": name,
                "calls": int(len(dl)),
                "mean_dlogit": float(dl.mean()),
                "mean_dlogit_humans": by["human"],
                "mean_dlogit_robots": by["robot"],
                "mean_abs_dlogit": float(np.abs(dl).mean()),
                "relative": float(relative(np.abs(dl).mean(), bases)),
                "shift": float(shift),
                "slope": float(slope),
                "mean_abs_dp": float(np.abs(dp).mean()),
                "flipped_percent": float(100 * flip.mean()),
                "near_calls": int(near.sum()),
                "near_flipped_percent": float(100 * flip[near].mean()) if near.any() else None,
            }
        )
    return table


def write_json(path: Path, doc: dict) -> None:
    """``doc`` to ``path`` through a temporary file beside it, so a full disk or Ctrl-C leaves no
    half-written file (robodetect's strict JSON: NaN, as an undefined slope, is written as null). The
    file gets the permissions a plain ``open`` would give it (mkstemp's are owner-only)."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=".rows-", suffix=".tmp")
    tmp = Path(name)
    umask = os.umask(0)
    os.umask(umask)
    try:
        with os.fdopen(fd, "w") as f:  # owns fd from here: closed whatever fails below
            os.fchmod(f.fileno(), 0o666 & ~umask)
            f.write(dumps(doc, indent=1) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
