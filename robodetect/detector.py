"""The public API: ``robodetect.load()`` and :class:`Detector`.

Scoring one channel has three stages, exposed so the batch and streaming paths reuse them:

1. :func:`analyze` (CPU, numpy): VAD -> speech-only signal -> windows + call timing features;
2. :meth:`Detector.window_logits` (torch, any device, batched): windows -> logits + prosody;
3. :meth:`Detector.finalize`: logits -> calibrated per-window and per-call probabilities.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from . import scoring
from .audio import SAMPLE_RATE, Audio, load_audio, prepare_waveform
from .features import (
    HOP_SAMPLES,
    MIN_SPEECH_SECONDS,
    PROSODY_FEATURES,
    PROSODY_NAMES,
    WINDOW_SAMPLES,
    speech_to_call_time,
    timing_features,
)
from .model import DEFAULT_MODEL, RobotNet, available_models, inference_model, model_digest, resolve_model
from .scoring import Span, cut_windows, window_spans
from .vad import VadConfig, detect_speech, speech_samples

CPU_BATCH_WINDOWS = 32  # windows per forward pass on CPU: small batches keep activations in cache
CUDA_BATCH_WINDOWS = 1024


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
    x: np.ndarray, channel: str = "mix", vad_config: VadConfig | None = None
) -> tuple[Analysis, np.ndarray, list[Span]]:
    """Stage 1 without cutting windows: (analysis with empty ``windows``, the speech-only signal,
    the window spans in it, :func:`robodetect.scoring.window_spans`). Lets the batch path keep long
    calls as one signal."""
    vad = detect_speech(x, vad_config)
    speech = speech_samples(x, vad.segments)
    spans = window_spans(len(speech))
    times = [(speech_to_call_time(vad.segments, a), speech_to_call_time(vad.segments, b, end=True)) for a, b in spans]
    duration = len(x) / SAMPLE_RATE
    timing = timing_features(vad.segments, duration, vad.frame_energy_dbfs, vad.speech_mask)
    empty = np.zeros((0, WINDOW_SAMPLES), dtype=np.float32)
    return Analysis(channel, duration, len(speech) / SAMPLE_RATE, empty, times, timing), speech, spans


def analyze(x: np.ndarray, channel: str = "mix", vad_config: VadConfig | None = None) -> Analysis:
    """VAD, speech-only windows and call timing features of one 8 kHz channel."""
    analysis, speech, spans = analyze_speech(x, channel, vad_config)
    analysis.windows = cut_windows(speech, spans)
    return analysis


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``auto`` -> cuda when available else cpu; ``cuda`` without CUDA -> cpu with a warning."""
    name = str(device or "cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        print("robodetect: CUDA requested but not available; falling back to CPU", file=sys.stderr)
        return torch.device("cpu")
    return torch.device(name)


class Detector:
    """Scores calls with a :class:`RobotNet`. Create with :func:`robodetect.load`."""

    def __init__(
        self,
        model: RobotNet,
        device: str | torch.device = "cpu",
        threshold: float | None = None,
        vad_config: VadConfig | None = None,
        uncertain: bool = True,
    ) -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        #: the scoring copy (batch-norm folded, channels-last; :func:`robodetect.model.inference_model`)
        #: that score, stream and scan all run; ``model`` stays the eager training module
        self.fast_model = inference_model(self.model, self.device)
        self.batch_windows = CUDA_BATCH_WINDOWS if self.device.type == "cuda" else CPU_BATCH_WINDOWS
        self.config = model.config
        #: threshold and uncertain band (:class:`robodetect.scoring.Decision`)
        self.decision = self.config.decision(threshold, uncertain=uncertain)
        self.vad_config = vad_config or self.config.vad  # the VAD the model was trained with
        self._key: str | None = None

    @property
    def threshold(self) -> float:
        return self.decision.threshold

    @property
    def model_key(self) -> str:
        """What a result store keys rows by: the version, a hash of the weights + full config, and
        the threshold/band when they differ from the model's (rows of two models never mix)."""
        if self._key is None:
            key = f"{self.model_version} sha256:{model_digest(self.model)[:16]}"
            if self.decision != self.config.decision():
                d = self.decision
                key += f" threshold={d.threshold:g} band={d.uncertain_low:g}-{d.uncertain_high:g}"
            self._key = key
        return self._key

    @property
    def uncertain_band(self) -> tuple[float, float]:
        """(low, high): calibrated call probabilities in [low, high) are labelled ``uncertain``."""
        return self.decision.uncertain_low, self.decision.uncertain_high

    @property
    def model_version(self) -> str:
        return self.config.version

    # ---- stage 2 ---------------------------------------------------------------------------
    @torch.inference_mode()
    def window_logits(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, WINDOW_SAMPLES) -> (uncalibrated logits (n,), prosody (n, 6)), batched on device."""
        logits, prosody = [], []
        for i in range(0, len(windows), self.batch_windows):
            wav = torch.from_numpy(np.ascontiguousarray(windows[i : i + self.batch_windows])).to(self.device)
            feats, pros = self.fast_model.features(wav)
            logits.append(self.fast_model.head(feats, pros).float().cpu().numpy())
            prosody.append(pros.float().cpu().numpy())
        if not logits:
            return np.zeros(0, np.float32), np.zeros((0, len(PROSODY_NAMES)), np.float32)
        return np.concatenate(logits), np.concatenate(prosody)

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
            analysis = analyze(row, name, self.vad_config)
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


def load(
    name_or_path: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    threshold: float | None = None,
    uncertain: bool = True,
) -> Detector:
    """Load a detector offline: a shipped model by name (None: the default; see
    :func:`available_models`) or a model stem path (stem.safetensors + stem.json). An unknown name
    raises :class:`robodetect.model.ModelError` listing the shipped names."""
    return Detector(resolve_model(name_or_path), device=device, threshold=threshold, uncertain=uncertain)


__all__ = [
    "load",
    "available_models",
    "DEFAULT_MODEL",
    "Detector",
    "Result",
    "WindowScore",
    "Analysis",
    "analyze",
    "call_verdict",
    "HOP_SAMPLES",
]
