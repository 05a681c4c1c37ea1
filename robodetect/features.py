"""Features: speech windows, the torch spectral/prosody front end, and per-call timing statistics.

The model sees fixed-length windows cut from the *speech-only* signal (VAD segments concatenated),
so leading silence, pause lengths and the noise floor between words never reach the spectral model.

:class:`robodetect.frontend.FrontEnd` is one torch implementation (``torch.stft`` + the numpy-built
filterbanks and pitch bases of this module) that runs on any device and is part of the exported
graph, so CPU, GPU, batch, streaming and exported scores all come from the same code. This module
itself imports no torch (the ONNX scoring engine and the result tools use it without torch).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .audio import SAMPLE_RATE
from .vad import FRAME_SECONDS, Segment

# spectral front end
N_FFT = 256  # 32 ms analysis frames
HOP_LENGTH = 80  # 10 ms hop
N_MELS = 64
F_MIN = 100.0
F_MAX = 4000.0
LOG_EPS = 1e-5  # relative to the window's mean mel energy: the floor scales with gain (-50 dB)
# the optional fine-resolution half of a multi-resolution front end (FrontEndConfig.fine_bands):
# 64 ms Hann frames, 15.6 Hz bins, so harmonics of voices down to ~80 Hz are resolved
FINE_N_FFT = 512
FINE_F_MAX = 2000.0
GROUP_DELAY_SCALE = 4.0  # band group delay in frames of N_FFT samples, times this: about -2..2

# windows of speech (the plan that cuts them is robodetect.scoring.window_spans)
WINDOW_SECONDS = 2.0
WINDOW_SAMPLES = int(WINDOW_SECONDS * SAMPLE_RATE)
HOP_SECONDS = 1.0
HOP_SAMPLES = int(HOP_SECONDS * SAMPLE_RATE)
MIN_SPEECH_SECONDS = 0.5  # less speech than this in a call -> no_speech
MIN_SPEECH_SAMPLES = int(MIN_SPEECH_SECONDS * SAMPLE_RATE)
N_FRAMES = 1 + (WINDOW_SAMPLES - N_FFT) // HOP_LENGTH  # 197 STFT frames per window

# prosody (per window), computed in torch from the window's power spectrogram
PITCH_MIN_HZ = 70.0
PITCH_MAX_HZ = 400.0
VOICING_THRESHOLD = 0.5  # normalised autocorrelation peak above which a frame is voiced
PITCH_METHOD = "linear-acf"
LEGACY_PITCH_METHOD = "circular-acf"  # what a model JSON without frontend.pitch was trained with
PITCH_METHODS = (PITCH_METHOD, LEGACY_PITCH_METHOD)
PITCH_N_FFT = 2 * N_FFT  # zero-padded FFT size for the pitch autocorrelation (linear, not circular)
PITCH_BAND_HZ = (1000.0, 2000.0)  # the autocorrelation uses the spectrum below this (tapered)
OCTAVE_COST = 0.02  # per octave below PITCH_MAX_HZ: favours the true period over its multiples
ACTIVE_RANGE_DB = 35.0  # frames within this many dB of the window's loudest frame are "active"

#: one line per prosody feature (computed per window, averaged per call)
PROSODY_FEATURES = {
    "energy_std_db": "standard deviation of frame level over active frames, dB (loudness variability)",
    "pitch_std_semitones": "standard deviation of the autocorrelation pitch over voiced frames, semitones",
    "voiced_ratio": "fraction of active frames that are voiced (periodic)",
    "syllable_rate": "energy-envelope peaks (syllable nuclei) per second of speech",
    "spectral_flux": "mean absolute frame-to-frame change of the normalised log-mel spectrum",
    "energy_delta_db": "mean absolute frame-to-frame change of level over active frames, dB (rhythm sharpness)",
}
PROSODY_NAMES = list(PROSODY_FEATURES)

#: one line per call-level timing feature (from the VAD segments and the signal)
TIMING_FEATURES = {
    "speech_ratio": "speech seconds / call seconds",
    "segment_count": "number of VAD speech segments",
    "segments_per_minute": "speech segments per minute of call",
    "segment_mean_seconds": "mean length of a speech segment",
    "pause_mean_seconds": "mean pause between speech segments (None with fewer than 2 segments)",
    "pause_std_seconds": "standard deviation of those pauses",
    "pause_max_seconds": "longest pause between speech segments",
    "noise_floor_dbfs": "10th percentile level of non-speech 30 ms frames (None without pauses)",
    **PROSODY_FEATURES,
}


@dataclass
class FrontEndConfig:
    """Every front-end setting a model was trained with (its JSON's ``frontend``; defaults are the
    module constants, which is what a JSON written before these were recorded gets).

    The band layout (``n_bands``, ``f_min``, ``f_max``; the band spacing is ``ModelConfig.filterbank``)
    ``log_eps``, the pitch estimator and the scoring plan's window hop (``hop_seconds``: every
    scorer cuts windows with :attr:`hop_samples`) are rebuilt from the JSON; the rest is recorded and must equal this code's
    constants (:meth:`unsupported` lists what does not, and the loader refuses such a model).
    """

    sample_rate: int = SAMPLE_RATE
    n_fft: int = N_FFT
    hop_length: int = HOP_LENGTH
    n_bands: int = N_MELS
    f_min: float = F_MIN
    f_max: float = F_MAX
    log_eps: float = LOG_EPS
    window_seconds: float = WINDOW_SECONDS
    hop_seconds: float = HOP_SECONDS
    min_speech_seconds: float = MIN_SPEECH_SECONDS
    pitch_min_hz: float = PITCH_MIN_HZ
    pitch_max_hz: float = PITCH_MAX_HZ
    voicing_threshold: float = VOICING_THRESHOLD
    active_range_db: float = ACTIVE_RANGE_DB
    # pitch/voicing estimator: "linear-acf" (zero-padded, window-normalised, interpolated; since
    # robodetect-v3) or "circular-acf" (v2's: wrong for low voices, kept so old models score as
    # they were trained); a JSON written before this was recorded used "circular-acf"
    pitch: str = PITCH_METHOD
    # multi-resolution: ``fine_bands`` > 0 adds that many bands over f_min..``fine_f_max`` from
    # FINE_N_FFT-sample frames (same hop and frame centres) below the N_FFT bands, as one stacked
    # spectrogram (n_bands + fine_bands rows); 0 (every model before session 17): off
    fine_bands: int = 0
    fine_f_max: float = FINE_F_MAX
    # phase: True stacks n_bands rows of band group delay (the power-weighted time centroid of
    # each band within the 32 ms frame: phase dispersion, which magnitude bands cannot see) below
    group_delay: bool = False
    # True: each band's mean over the window's frames is subtracted from its log energies (the N_FFT
    # and fine bands; cepstral mean normalisation per band), so a stationary colouring of the line,
    # a microphone's, a codec's or an engine's post-filter, cancels; False (every model before
    # session 26): one mean over the whole window (only the gain cancels)
    band_norm: bool = False

    #: settings this code rebuilds from a model's JSON (the others are fixed)
    REBUILT = (
        "n_bands",
        "f_min",
        "f_max",
        "log_eps",
        "pitch",
        "hop_seconds",
        "hop_length",
        "fine_bands",
        "fine_f_max",
        "group_delay",
        "band_norm",
    )

    @property
    def spectral_rows(self) -> int:
        """Rows of the spectrogram the CNN sees: the N_FFT bands, plus the fine and group-delay ones when on."""
        return self.n_bands * (2 if self.group_delay else 1) + self.fine_bands

    @property
    def hop_samples(self) -> int:
        """The window hop of the scoring plan in samples (:func:`robodetect.scoring.window_spans`)."""
        return int(round(self.hop_seconds * self.sample_rate))

    def unsupported(self) -> list[str]:
        """Settings this code cannot honour, as ``frontend.name=value (reason)``; empty when all can be."""
        code = FrontEndConfig()
        bad = [
            f"frontend.{f.name}={getattr(self, f.name)} (this code uses {getattr(code, f.name)})"
            for f in fields(self)
            if f.name not in self.REBUILT and getattr(self, f.name) != getattr(code, f.name)
        ]
        from .scoring import check_hop  # the plan's own rule (scoring imports this module)

        hop = self.hop_seconds * self.sample_rate
        try:
            check_hop(round(hop) if abs(hop - round(hop)) <= 1e-6 else hop)
        except ValueError:
            bad.append(f"frontend.hop_seconds={self.hop_seconds} (a whole number of samples, up to one window)")
        if not (isinstance(self.hop_length, int) and 1 <= self.hop_length <= self.n_fft):
            bad.append(f"frontend.hop_length={self.hop_length} (STFT hop: whole samples, 1..n_fft={self.n_fft})")
        if self.pitch not in PITCH_METHODS:
            bad.append(f"frontend.pitch={self.pitch} (this code has {', '.join(PITCH_METHODS)})")
        if not (self.n_bands >= 1 and 0 <= self.f_min < self.f_max <= self.sample_rate / 2):
            bad.append(
                f"frontend bands n_bands={self.n_bands} f_min={self.f_min} f_max={self.f_max} (need 0 <= f_min < f_max <= sr/2)"
            )
        if not (isinstance(self.fine_bands, int) and self.fine_bands >= 0):
            bad.append(f"frontend.fine_bands={self.fine_bands} (a whole number >= 0)")
        elif self.fine_bands and not (self.f_min < self.fine_f_max <= self.sample_rate / 2):
            bad.append(f"frontend.fine_f_max={self.fine_f_max} (need f_min < fine_f_max <= sr/2)")
        for name in ("group_delay", "band_norm"):
            if not isinstance(getattr(self, name), bool):
                bad.append(f"frontend.{name}={getattr(self, name)} (true or false)")
        return bad


_MEL_F_SP = 200.0 / 3  # slaney mel scale (librosa's default, htk=False): linear below 1 kHz ...
_MEL_LOG_HZ = 1000.0
_MEL_LOG_MEL = _MEL_LOG_HZ / _MEL_F_SP
_MEL_LOG_STEP = np.log(6.4) / 27.0  # ... logarithmic above


def _hz_to_mel(hz: float) -> float:
    if hz >= _MEL_LOG_HZ:
        return _MEL_LOG_MEL + np.log(hz / _MEL_LOG_HZ) / _MEL_LOG_STEP
    return (hz - 0.0) / _MEL_F_SP


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    hz = 0.0 + _MEL_F_SP * mels
    log_t = mels >= _MEL_LOG_MEL
    hz[log_t] = _MEL_LOG_HZ * np.exp(_MEL_LOG_STEP * (mels[log_t] - _MEL_LOG_MEL))
    return hz


def _fft_frequencies(n_fft: int = N_FFT) -> np.ndarray:
    return np.fft.rfftfreq(n=n_fft, d=1.0 / SAMPLE_RATE)


def mel_filterbank(
    *, n_bands: int = N_MELS, f_min: float = F_MIN, f_max: float = F_MAX, n_fft: int = N_FFT
) -> np.ndarray:
    """(n_bands, n_fft // 2 + 1) slaney-normalised mel filterbank, built in numpy with librosa's own
    arithmetic, so it equals ``librosa.filters.mel(sr=8000, n_fft=N_FFT, n_mels=n_bands, fmin=f_min,
    fmax=f_max)`` bit for bit (tested) without importing librosa."""
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(f_min), _hz_to_mel(f_max), n_bands + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, _fft_frequencies(n_fft))
    weights = np.zeros((n_bands, n_fft // 2 + 1), dtype=np.float32)
    for i in range(n_bands):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
    weights *= (2.0 / (mel_f[2 : n_bands + 2] - mel_f[:n_bands]))[:, np.newaxis]
    return weights


def linear_filterbank(
    *, n_bands: int = N_MELS, f_min: float = F_MIN, f_max: float = F_MAX, n_fft: int = N_FFT
) -> np.ndarray:
    """(n_bands, n_fft // 2 + 1) triangular bands equally spaced in Hz over f_min..f_max, unit area
    like the slaney mel bands (an LFCC-style front end: finer resolution at 2-4 kHz)."""
    freqs = np.linspace(0.0, SAMPLE_RATE / 2, n_fft // 2 + 1)
    edges = np.linspace(f_min, f_max, n_bands + 2)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    tri = np.maximum(0.0, np.minimum((freqs - lower) / (centre - lower), (upper - freqs) / (upper - centre)))
    return (tri * (2.0 / (upper - lower))).astype(np.float32)


FILTERBANKS = {"mel": mel_filterbank, "linear": linear_filterbank}


def hann_window(n: int) -> np.ndarray:
    """Periodic Hann window in float64, as ``torch.hann_window(n, dtype=torch.float64)``."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def _acf_basis() -> tuple[np.ndarray, np.ndarray, int]:
    """Linear (not circular) autocorrelation of a frame from its zero-padded power spectrum.

    Returns a cosine basis (PITCH_N_FFT // 2 + 1, 1 + n_lags) mapping the PITCH_N_FFT-point power
    spectrum of a Hann-windowed N_FFT-sample frame to its autocorrelation at lag 0 and at the
    candidate lags ``lag_min - 1 .. lag_max + 1`` (one extra each side for the parabolic peak
    interpolation), the Hann window's own normalised autocorrelation at those lags, and lag_min.
    PITCH_N_FFT >= 2 * N_FFT, so the autocorrelation does not wrap around."""
    lag_min = int(np.floor(SAMPLE_RATE / PITCH_MAX_HZ))
    lag_max = int(np.ceil(SAMPLE_RATE / PITCH_MIN_HZ))
    lags = np.arange(lag_min - 1, lag_max + 2)
    k = np.arange(PITCH_N_FFT // 2 + 1)[:, None]
    weight = np.full((PITCH_N_FFT // 2 + 1, 1), 2.0)
    weight[0] = weight[-1] = 1.0
    # low-pass taper (1 below PITCH_BAND_HZ[0], raised cosine to 0 at PITCH_BAND_HZ[1]): the
    # autocorrelation peaks get wide enough for the parabolic interpolation at high pitch
    hz = k * SAMPLE_RATE / PITCH_N_FFT
    lo, hi = PITCH_BAND_HZ
    taper = np.where(hz <= lo, 1.0, np.where(hz >= hi, 0.0, 0.5 + 0.5 * np.cos(np.pi * (hz - lo) / (hi - lo))))
    basis = weight * taper * np.cos(2 * np.pi * k * np.concatenate([[0], lags])[None, :] / PITCH_N_FFT)
    w = hann_window(N_FFT)
    w_acf = np.array([np.dot(w[: N_FFT - t], w[t:]) for t in lags]) / np.dot(w, w)
    return basis.astype(np.float32), w_acf.astype(np.float32), lag_min


def _circular_acf_basis() -> np.ndarray:
    """robodetect-v2's pitch basis: circular autocorrelation of the N_FFT-point power spectrum at
    lag 0 and lag_min..lag_max (kept only so v2 scores as it was trained)."""
    lag_min = int(np.floor(SAMPLE_RATE / PITCH_MAX_HZ))
    lag_max = int(np.ceil(SAMPLE_RATE / PITCH_MIN_HZ))
    k = np.arange(N_FFT // 2 + 1)[:, None]
    weight = np.full((N_FFT // 2 + 1, 1), 2.0)
    weight[0] = weight[-1] = 1.0
    lags = np.concatenate([[0], np.arange(lag_min, lag_max + 1)])[None, :]
    return (weight * np.cos(2 * np.pi * k * lags / N_FFT)).astype(np.float32)


def speech_to_call_time(segments: list[Segment], offset_samples: int, *, end: bool = False) -> float:
    """Map a sample offset in the concatenated speech signal back to seconds in the call.

    An offset exactly on a boundary between two segments is the start of the next segment for a
    window start, and the end of the previous one for a window end (``end=True``)."""
    remaining = offset_samples
    for seg in segments:
        n = int(round(seg.end_seconds * SAMPLE_RATE)) - int(round(seg.start_seconds * SAMPLE_RATE))
        if remaining < n or (end and remaining == n):
            return seg.start_seconds + remaining / SAMPLE_RATE
        remaining -= n
    return segments[-1].end_seconds if segments else 0.0


def timing_features(
    segments: list[Segment], duration_seconds: float, frame_energy_dbfs: np.ndarray, speech_mask: np.ndarray
) -> dict[str, float | None]:
    """Call-level timing features from VAD output (the prosody means are added by the detector)."""
    seg_lengths = np.array([s.duration_seconds for s in segments], dtype=np.float64)
    pauses = np.array([b.start_seconds - a.end_seconds for a, b in zip(segments, segments[1:])])
    speech_seconds = float(seg_lengths.sum())
    pause_energy = frame_energy_dbfs[~speech_mask] if len(speech_mask) else np.zeros(0)
    minutes = max(duration_seconds, FRAME_SECONDS) / 60.0
    return {
        "speech_ratio": speech_seconds / max(duration_seconds, 1e-9),
        "segment_count": float(len(segments)),
        "segments_per_minute": len(segments) / minutes,
        "segment_mean_seconds": float(seg_lengths.mean()) if len(segments) else 0.0,
        "pause_mean_seconds": float(pauses.mean()) if len(pauses) else None,
        "pause_std_seconds": float(pauses.std()) if len(pauses) else None,
        "pause_max_seconds": float(pauses.max()) if len(pauses) else None,
        "noise_floor_dbfs": float(np.percentile(pause_energy, 10)) if len(pause_energy) else None,
    }


def __getattr__(name: str):
    if name == "FrontEnd":  # moved to robodetect.frontend (torch); kept importable from here
        from .frontend import FrontEnd

        return FrontEnd
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
