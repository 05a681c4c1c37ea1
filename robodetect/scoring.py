"""The scoring contract: which windows of a call are scored, and how their logits become a verdict.

This module is the only copy of the rule; the detector, the batch scan, the stream, the exports,
training/evaluation and the scripts all call it.

1. **Window plan** (:func:`window_spans`): the model sees WINDOW_SECONDS windows cut from the
   *speech-only* signal (VAD segments concatenated) every ``hop`` samples (the model JSON's
   ``frontend.hop_seconds``; HOP_SECONDS, 1 s, for robodetect-v2 and -v3); when the speech after the last
   regular window is at least MIN_SPEECH_SECONDS, one more window aligned to the end (the *tail*)
   is added. Speech shorter than one window gives one *tiled* window (the speech repeated to fill
   it); less than MIN_SPEECH_SECONDS gives none (``no_speech``). A span ``(start, end)`` is a range
   of the speech-only signal; :func:`cut_windows` turns spans into model input. The plan for the
   *first N seconds* of a call is the plan of its speech truncated to N s (:func:`prefix_plans`);
   the stream's running score is that prefix plan at each checkpoint.
2. **Aggregation** (:func:`call_logit`): the call's raw logit is the mean of its window logits.
3. **Calibration** (:func:`calibrated_logit`, :func:`probability`): Platt scaling fitted on dev
   calls, ``p = sigmoid(calib_scale * logit + calib_bias)``, applied to window and call logits alike.
4. **Decision** (:class:`Decision`): ``robot`` when p >= ``uncertain_high``, ``human`` when
   p < ``uncertain_low``, ``uncertain`` in between; the threshold always lies inside the band
   (a band of zero width, ``(threshold, threshold)``, gives the plain robot/human rule). A model
   JSON may carry ``uncertain_low`` / ``uncertain_high`` (calibrated probabilities); without them
   the band is the probabilities within DEFAULT_UNCERTAIN_LOGITS of the threshold in calibrated
   logit (odds within a factor e of the threshold's): for robodetect-v2 (threshold 0.871)
   that is 0.713 <= p < 0.948.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .features import HOP_SAMPLES, MIN_SPEECH_SAMPLES, WINDOW_SAMPLES

Span = tuple[int, int]  # [start, end) in samples of the speech-only signal

ROBOT, HUMAN, UNCERTAIN, NO_SPEECH = "robot", "human", "uncertain", "no_speech"
LABELS = (ROBOT, HUMAN, UNCERTAIN, NO_SPEECH)
DEFAULT_UNCERTAIN_LOGITS = 1.0  # default band half-width around the threshold, in calibrated logit


# ---- 1. window plan ---------------------------------------------------------------------------
def window_starts(n_speech_samples: int, hop: int = HOP_SAMPLES) -> list[int]:
    """Start offsets (in the speech-only signal) of the scoring windows of ``n_speech_samples``."""
    return [a for a, _ in window_spans(n_speech_samples, hop)]


def check_hop(hop: int) -> int:
    """``hop`` as an int, or ValueError when no window plan can use it (1..WINDOW_SAMPLES samples)."""
    if int(hop) != hop or not 0 < hop <= WINDOW_SAMPLES:
        raise ValueError(f"window hop must be a whole number of samples in 1..{WINDOW_SAMPLES}, got {hop}")
    return int(hop)


def _plan(n: int, hop: int) -> tuple[int, Span | None]:
    """(number of regular windows, the extra tail/tiled span or None) of n speech samples; O(1)."""
    if n < MIN_SPEECH_SAMPLES:
        return 0, None
    if n < WINDOW_SAMPLES:
        return 0, (0, n)
    regular = (n - WINDOW_SAMPLES) // hop + 1
    last_end = (regular - 1) * hop + WINDOW_SAMPLES
    return regular, ((n - WINDOW_SAMPLES, n) if n - last_end >= MIN_SPEECH_SAMPLES else None)


def window_spans(n_speech_samples: int, hop: int = HOP_SAMPLES) -> list[Span]:
    """Spans ``(start, end)`` of the scoring windows of a speech signal of ``n_speech_samples``:
    regular windows every ``hop`` samples, then the end-aligned tail when it adds >= MIN_SPEECH_SAMPLES;
    one span (0, n) (tiled by :func:`cut_windows`) when n < WINDOW_SAMPLES; none below
    MIN_SPEECH_SAMPLES."""
    hop = check_hop(hop)
    regular, extra = _plan(int(n_speech_samples), hop)
    spans = [(k * hop, k * hop + WINDOW_SAMPLES) for k in range(regular)]
    return spans + [extra] if extra else spans


def extra_span(n_speech_samples: int, hop: int = HOP_SAMPLES) -> Span | None:
    """The window the plan of ``n_speech_samples`` adds beyond the hop grid (the end-aligned tail or
    the tiled short window), or None. The regular windows are those ending at or before n."""
    return _plan(int(n_speech_samples), check_hop(hop))[1]


def next_regular_end(n_speech_samples: int, hop: int = HOP_SAMPLES) -> int:
    """End of the first regular (hop-grid) window that ends after ``n_speech_samples``: where a
    stream that has heard n samples of speech completes its next window."""
    n, hop = int(n_speech_samples), check_hop(hop)
    return WINDOW_SAMPLES if n < WINDOW_SAMPLES else WINDOW_SAMPLES + ((n - WINDOW_SAMPLES) // hop + 1) * hop


def prefix_plans(
    n_speech_samples: int, prefix_samples: Sequence[int], hop: int = HOP_SAMPLES
) -> tuple[list[Span], list[list[int]]]:
    """Window plans of several prefixes of one speech signal, sharing windows.

    Returns (spans, plans): the distinct spans to score, and per prefix (truncated to the speech
    there is) the indices into ``spans`` of its windows (empty: no_speech)."""
    spans: list[Span] = []
    index: dict[Span, int] = {}
    plans = []
    for n in prefix_samples:
        plan = []
        for span in window_spans(min(int(n), int(n_speech_samples)), hop):
            if span not in index:
                index[span] = len(spans)
                spans.append(span)
            plan.append(index[span])
        plans.append(plan)
    return spans, plans


def cut_window(speech: np.ndarray, span: Span, out: np.ndarray | None = None) -> np.ndarray:
    """One (WINDOW_SAMPLES,) float32 window: ``speech[start:end]``, tiled when shorter."""
    a, b = span
    out = np.empty(WINDOW_SAMPLES, np.float32) if out is None else out
    if b - a == WINDOW_SAMPLES:
        out[:] = speech[a:b]
    else:
        out[:] = np.resize(np.asarray(speech[a:b], dtype=np.float32), WINDOW_SAMPLES)
    return out


def cut_windows(speech: np.ndarray, spans: Sequence[Span]) -> np.ndarray:
    """(len(spans), WINDOW_SAMPLES) float32 model input for ``spans`` of the speech-only signal."""
    out = np.empty((len(spans), WINDOW_SAMPLES), np.float32)
    for row, span in zip(out, spans):
        cut_window(speech, span, row)
    return out


# ---- 2. aggregation ----------------------------------------------------------------------------
def mean_logit(logit_sum: float, count: int) -> float:
    """The call logit from a running sum of ``count`` window logits (what the stream keeps)."""
    return float(logit_sum) / int(count)


def call_logit(window_logits: np.ndarray | Sequence[float]) -> float:
    """The call's raw (uncalibrated) logit: the mean of its window logits, in float64."""
    z = np.asarray(window_logits, dtype=np.float64)
    return mean_logit(float(z.sum()), len(z))


# ---- 3. calibration ----------------------------------------------------------------------------
def calibrated_logit(raw_logits, *, scale: float, bias: float):
    """``scale * raw + bias`` (Platt scaling); numpy arrays, floats or torch tensors (export)."""
    return raw_logits * scale + bias


def sigmoid(z) -> np.ndarray:
    """Numerically stable logistic function over a numpy array or float (float64)."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def probability(raw_logits, *, scale: float, bias: float) -> np.ndarray:
    """Raw logits (any shape) -> calibrated robot probabilities (float64)."""
    return sigmoid(calibrated_logit(np.asarray(raw_logits, dtype=np.float64), scale=scale, bias=bias))


def logit(p: float) -> float:
    p = min(max(float(p), 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))


# ---- 4. decision --------------------------------------------------------------------------------
def default_band(threshold: float) -> tuple[float, float]:
    """The uncertain band of a model JSON without one: DEFAULT_UNCERTAIN_LOGITS around the threshold."""
    z = logit(threshold)
    lo, hi = sigmoid(z - DEFAULT_UNCERTAIN_LOGITS), sigmoid(z + DEFAULT_UNCERTAIN_LOGITS)
    return float(lo), float(hi)


@dataclass(frozen=True)
class Decision:
    """Threshold and uncertain band on the calibrated call probability (see the module docstring)."""

    threshold: float
    uncertain_low: float
    uncertain_high: float

    def __post_init__(self) -> None:
        for name in ("threshold", "uncertain_low", "uncertain_high"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {v}")
        # the threshold always lies inside the band
        object.__setattr__(self, "uncertain_low", min(self.uncertain_low, self.threshold))
        object.__setattr__(self, "uncertain_high", max(self.uncertain_high, self.threshold))

    @classmethod
    def make(
        cls, threshold: float, band: tuple[float | None, float | None] | None = None, *, uncertain: bool = True
    ) -> Decision:
        """From a threshold and a band (None parts: the default band); ``uncertain=False``: no band."""
        if not uncertain:
            return cls(threshold, threshold, threshold)
        lo, hi = band or (None, None)
        d_lo, d_hi = default_band(threshold)
        return cls(threshold, d_lo if lo is None else lo, d_hi if hi is None else hi)

    def label(self, p: float | None) -> str:
        """Calibrated call probability (None: no speech) -> robot / human / uncertain / no_speech."""
        if p is None:
            return NO_SPEECH
        if p >= self.uncertain_high:
            return ROBOT
        if p < self.uncertain_low:
            return HUMAN
        return UNCERTAIN

    def forced(self, p: float) -> str:
        """The plain robot/human verdict at the threshold (a screening app that must act now)."""
        return ROBOT if p >= self.threshold else HUMAN


__all__ = [
    "Span",
    "LABELS",
    "check_hop",
    "window_starts",
    "window_spans",
    "extra_span",
    "next_regular_end",
    "prefix_plans",
    "cut_window",
    "cut_windows",
    "mean_logit",
    "call_logit",
    "calibrated_logit",
    "sigmoid",
    "probability",
    "default_band",
    "Decision",
]
