"""What scoring is, whatever runs the model: the stage-1 analysis, results and verdicts.

:class:`Scorer` holds everything of a detector except the network: stage 1 (:func:`analyze`: VAD,
speech-only windows, timing features) and stage 3 (:meth:`Scorer.finalize`: calibrated window and
call probabilities, the verdict and its reasons). A subclass supplies stage 2,
``window_logits(windows) -> (logits, prosody)``: :class:`robodetect.detector.Detector` with torch,
:class:`robodetect.onnxengine.OnnxDetector` with onnxruntime. This module imports no torch.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from . import scoring
from .audio import SAMPLE_RATE, Audio, load_audio, prepare_waveform
from .config import ModelConfig
from .features import (
    HOP_SAMPLES,
    MIN_SPEECH_SECONDS,
    PROSODY_FEATURES,
    PROSODY_NAMES,
    WINDOW_SAMPLES,
    speech_to_call_time,
    timing_features,
)
from .scoring import Span, cut_windows, window_spans
from .vad import Segment, VadConfig, detect_speech, speech_samples

CPU_BATCH_WINDOWS = 32  # windows per forward pass on CPU (either engine): small batches keep activations in cache


@dataclass
class WindowScore:
    """Score of one WINDOW_SECONDS window of speech; times are in the call (seconds)."""

    start_seconds: float
    end_seconds: float
    robot_probability: float


@dataclass
class Result:
    """The verdict for one channel of one call. ``to_dict()`` gives the JSON form."""

    label: str  # "robot", "human", "uncertain" (uncertain_low <= p < uncertain_high) or "no_speech"
    robot_probability: float | None  # calibrated; None when there is no speech
    threshold: float
    speech_seconds: float
    duration_seconds: float
    channel: str
    windows: list[WindowScore]
    timing: dict[str, float | None]
    cues: list[str]
    model_version: str
    reason: str | None = None  # why label is no_speech
    path: str | None = None
    sample_rate: int | None = None  # of the input, before resampling to 8 kHz
    # two-party calls (``channel="call"``): the channel whose verdict decided the call's, and the
    # per-channel results; empty for a one-channel verdict
    party: str | None = None
    parties: list[Result] = field(default_factory=list)
    uncertain_low: float | None = None  # the uncertain band on robot_probability (scoring.Decision)
    uncertain_high: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


#: a call's verdict is its most alarming party's: robot before uncertain before human before no_speech
LABEL_PRIORITY = ("robot", "uncertain", "human", "no_speech")


def call_verdict(parties: list[Result]) -> Result:
    """One verdict for a call from its per-channel results (one party per channel).

    The call is a robot when any party is (then ``party`` names that channel), else uncertain when
    any party is, else human when any party spoke; probability, windows, timing and cues are the
    deciding party's. A single result is returned unchanged.
    """
    if len(parties) == 1:
        return parties[0]

    def rank(r: Result) -> tuple[int, float]:
        order = LABEL_PRIORITY.index(r.label) if r.label in LABEL_PRIORITY else len(LABEL_PRIORITY)
        return order, -(r.robot_probability if r.robot_probability is not None else -1.0)

    top = min(parties, key=rank)
    spoke = top.label != "no_speech"
    summary = ", ".join(
        f"{r.channel} {r.label}" + (f" {r.robot_probability:.3f}" if r.robot_probability is not None else "")
        for r in parties
    )
    cues = ([f"{top.channel} channel decides the call ({summary})"] if spoke else []) + top.cues
    return replace(
        top,
        channel="call",
        party=top.channel if spoke else None,
        parties=list(parties),
        cues=cues,
        reason=None if spoke else "no speech on any channel",
    )


@dataclass
class Analysis:
    """Stage 1 output for one channel (picklable; what batch workers send back)."""

    channel: str
    duration_seconds: float
    speech_seconds: float
    windows: np.ndarray  # (n, WINDOW_SAMPLES) float32
    window_times: list[tuple[float, float]]
    timing: dict[str, float | None]
    sample_rate: int | None = None
    path: str | None = None
    extra: dict = field(default_factory=dict)


def analyze_speech(
    x: np.ndarray,
    channel: str = "mix",
    vad_config: VadConfig | None = None,
    hop: int = HOP_SAMPLES,
    segments: list[Segment] | None = None,
) -> tuple[Analysis, np.ndarray, list[Span]]:
    """Stage 1 without cutting windows: (analysis with empty ``windows``, the speech-only signal,
    the window spans in it, :func:`robodetect.scoring.window_spans` at ``hop`` samples). Lets the
    batch path keep long calls as one signal. ``segments`` (experiments only): take the speech
    from these instead of the VAD's (the timing features still see the VAD's frame levels and
    speech mask)."""
    vad = detect_speech(x, vad_config)
    segments = vad.segments if segments is None else segments
    speech = speech_samples(x, segments)
    spans = window_spans(len(speech), hop)
    times = [(speech_to_call_time(segments, a), speech_to_call_time(segments, b, end=True)) for a, b in spans]
    duration = len(x) / SAMPLE_RATE
    timing = timing_features(segments, duration, vad.frame_energy_dbfs, vad.speech_mask)
    empty = np.zeros((0, WINDOW_SAMPLES), dtype=np.float32)
    return Analysis(channel, duration, len(speech) / SAMPLE_RATE, empty, times, timing), speech, spans


def analyze(
    x: np.ndarray,
    channel: str = "mix",
    vad_config: VadConfig | None = None,
    hop: int = HOP_SAMPLES,
    segments: list[Segment] | None = None,
) -> Analysis:
    """VAD, speech-only windows (every ``hop`` samples of speech) and call timing features of one
    8 kHz channel (``segments``: as :func:`analyze_speech`)."""
    analysis, speech, spans = analyze_speech(x, channel, vad_config, hop, segments)
    analysis.windows = cut_windows(speech, spans)
    return analysis


class Scorer:
    """Stages 1 and 3 of a detector; a subclass sets ``config`` (:class:`ModelConfig`),
    ``decision`` (:class:`robodetect.scoring.Decision`), ``vad_config`` and ``batch_windows``, and
    implements ``window_logits``."""

    config: ModelConfig
    decision: scoring.Decision
    vad_config: VadConfig
    batch_windows: int

    def window_logits(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, WINDOW_SAMPLES) -> (uncalibrated logits (n,), prosody (n, 6))."""
        raise NotImplementedError

    @property
    def threshold(self) -> float:
        return self.decision.threshold

    @property
    def uncertain_band(self) -> tuple[float, float]:
        """(low, high): calibrated call probabilities in [low, high) are labelled ``uncertain``."""
        return self.decision.uncertain_low, self.decision.uncertain_high

    @property
    def model_version(self) -> str:
        return self.config.version

    @property
    def hop_samples(self) -> int:
        """The window hop this model was trained and calibrated with (its JSON's frontend.hop_seconds)."""
        return self.config.frontend.hop_samples

    # ---- stage 3 ---------------------------------------------------------------------------
    def probability(self, logits: np.ndarray) -> np.ndarray:
        return self.config.probability(logits)

    def call_probability(self, logits: np.ndarray) -> float:
        """Call score: calibrated probability of the call logit (:func:`robodetect.scoring.call_logit`)."""
        return float(self.probability(scoring.call_logit(logits)))

    def finalize(self, analysis: Analysis, logits: np.ndarray, prosody: np.ndarray) -> Result:
        timing = dict(analysis.timing)
        common = dict(
            threshold=self.threshold,
            uncertain_low=self.decision.uncertain_low,
            uncertain_high=self.decision.uncertain_high,
            speech_seconds=round(analysis.speech_seconds, 3),
            duration_seconds=round(analysis.duration_seconds, 3),
            channel=analysis.channel,
            model_version=self.model_version,
            path=analysis.path,
            sample_rate=analysis.sample_rate,
        )
        if len(logits) == 0:
            for name in PROSODY_NAMES:
                timing[name] = None
            reason = (
                f"only {analysis.speech_seconds:.2f} s of speech detected (need {MIN_SPEECH_SECONDS} s)"
                if analysis.speech_seconds > 0
                else "no speech detected (silence, noise or music only)"
            )
            return Result("no_speech", None, windows=[], timing=timing, cues=[], reason=reason, **common)
        for j, name in enumerate(PROSODY_NAMES):
            timing[name] = float(np.mean(prosody[:, j]))
        p_windows = self.probability(logits)
        p_call = self.call_probability(logits)
        windows = [
            WindowScore(round(a, 3), round(b, 3), round(float(p), 5))
            for (a, b), p in zip(analysis.window_times, p_windows)
        ]
        label = self.decision.label(p_call)
        cues = self._cues(windows, timing, robot=p_call >= self.threshold)
        return Result(label, round(p_call, 6), windows=windows, timing=timing, cues=cues, **common)

    def _cues(self, windows: list[WindowScore], timing: dict, robot: bool) -> list[str]:
        """Human-readable reasons: the most telling windows, prosody outside the human range."""
        cues = []
        ranked = sorted(windows, key=lambda w: w.robot_probability, reverse=robot)
        for w in ranked[:2]:
            cues.append(
                f"{w.start_seconds:.1f}-{w.end_seconds:.1f} s sounds {'synthetic' if robot else 'human'} "
                f"(window robot probability {w.robot_probability:.2f})"
            )
        for name, (lo, hi) in self.config.human_ranges.items():
            v = timing.get(name)
            if v is None or math.isnan(v):
                continue
            desc = PROSODY_FEATURES[name].split(",")[0]
            if v < lo or v > hi:
                side = "below" if v < lo else "above"
                cues.append(f"{name} = {v:.2f} is {side} the usual human range {lo:.2f}-{hi:.2f} ({desc})")
        return cues

    # ---- public scoring --------------------------------------------------------------------
    def score_audio(self, audio: Audio, path: str | None = None) -> list[Result]:
        """Score every row of a decoded :class:`Audio`; one result per channel row."""
        results = []
        for row, name in zip(audio.samples, audio.channel_names):
            analysis = analyze(row, name, self.vad_config, self.hop_samples)
            analysis.path, analysis.sample_rate = path, audio.orig_sample_rate
            logits, prosody = self.window_logits(analysis.windows)
            results.append(self.finalize(analysis, logits, prosody))
        return results

    def score(self, waveform: np.ndarray, sample_rate: int, channel: str = "auto") -> Result | list[Result]:
        """Score an in-memory waveform ((n,), (channels, n) or (n, channels); int or float PCM).

        channel: ``auto`` (default: a 2-channel waveform is a two-party call, scored per channel
        with a call verdict, see :func:`call_verdict`; anything else is mixed), ``mix``, ``left``,
        ``right``, or ``each`` (returns a list with one result per channel).
        """
        results = self.score_audio(prepare_waveform(waveform, sample_rate, channel))
        return results if channel == "each" else call_verdict(results)

    def score_file(self, path: str | os.PathLike, channel: str = "auto") -> Result | list[Result]:
        """Score an audio file (``channel`` as in :meth:`score`); raises
        :class:`robodetect.AudioError` when it cannot be read."""
        from . import longaudio

        if longaudio.is_long(path):  # decoded through temp files: memory flat in recording length
            results = longaudio.score_long_file(self, path, channel)
        else:
            results = self.score_audio(load_audio(path, channel), path=os.fspath(path))
        return results if channel == "each" else call_verdict(results)
