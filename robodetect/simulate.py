"""Call simulator: turns clean utterances into realistic 8 kHz telephone calls.

Applied identically to human and robot speech (the only input that differs is the voice), so
that a model cannot learn corpus artefacts: every utterance's own leading/trailing silence is
stripped, utterances are joined with pauses drawn from one shared distribution, then background
noise, gain changes, clipping, telephone band-limiting, a telephone codec (G.711 mu-law / A-law,
GSM 06.10, AMR-NB) and packet-loss dropouts are applied at random. Seeded through the ``rng``.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

import librosa
import numpy as np
from scipy import signal

from .audio import SAMPLE_RATE

CODECS = ("none", "mulaw", "alaw", "gsm", "amr-nb")
CODEC_WEIGHTS = (0.15, 0.25, 0.2, 0.2, 0.2)
NOISE_TYPES = ("white", "pink", "brown", "hum", "office")


@dataclass
class SimConfig:
    pause_median_seconds: float = 0.45  # lognormal pause between utterances
    pause_sigma: float = 0.6
    lead_max_seconds: float = 1.5  # uniform leading silence 0..max
    trail_max_seconds: float = 1.0
    p_clean: float = 0.15  # no added noise (digital silence in pauses) — both classes
    snr_db: tuple[float, float] = (5.0, 40.0)
    gain_db: tuple[float, float] = (-20.0, 8.0)
    utterance_gain_jitter_db: float = 3.0
    p_clip: float = 0.08
    p_bandlimit: float = 0.7
    p_packet_loss: float = 0.2
    codec: str | None = None  # force one codec; None draws from CODECS/CODEC_WEIGHTS
    # speed perturbation (resampling: pitch, formants and tempo move together), per call, both
    # classes: more apparent voices from engines with few of them, and from human speakers alike
    p_speed: float = 0.0
    speed: tuple[float, float] = (0.9, 1.1)


def trim_silence(x: np.ndarray, top_db: float = 40.0) -> np.ndarray:
    """Strip an utterance's own leading/trailing silence (relative to its loudest frame)."""
    if len(x) < 512:
        return x
    y, _ = librosa.effects.trim(x, top_db=top_db, frame_length=256, hop_length=64)
    return y if len(y) else x


def _colored_noise(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "hum":
        t = np.arange(n) / SAMPLE_RATE
        f0 = rng.choice([50.0, 60.0])
        hum = sum(rng.uniform(0.2, 1.0) * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.3)) for k in (1, 2, 3, 5))
        return hum + 0.05 * rng.standard_normal(n)
    white = rng.standard_normal(n)
    if kind == "white":
        return white
    spec = np.fft.rfft(white)
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    f[0] = f[1]
    exponent = {"pink": 0.5, "brown": 1.0, "office": 0.7}[kind]
    y = np.fft.irfft(spec / f**exponent, n)
    if kind == "office":  # slowly modulated, like air conditioning and distant activity
        y *= 1.0 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.05, 0.5) * np.arange(n) / SAMPLE_RATE)
    return y


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-12))


def g711(x: np.ndarray, law: str) -> np.ndarray:
    """Round-trip through 8-bit G.711 companding (mu-law or A-law)."""
    x = np.clip(x, -1.0, 1.0)
    if law == "mulaw":
        y = np.sign(x) * np.log1p(255.0 * np.abs(x)) / np.log(256.0)
        q = np.round(y * 127.0) / 127.0
        return (np.sign(q) * ((256.0 ** np.abs(q)) - 1.0) / 255.0).astype(np.float32)
    a = 87.6
    ax = np.abs(x)
    y = np.where(ax < 1 / a, a * ax / (1 + np.log(a)), (1 + np.log(np.maximum(a * ax, 1e-12))) / (1 + np.log(a)))
    q = np.round(y * 127.0) / 127.0
    out = np.where(q < 1 / (1 + np.log(a)), q * (1 + np.log(a)) / a, np.exp(q * (1 + np.log(a)) - 1) / a)
    return (np.sign(x) * out).astype(np.float32)


def sox_codec(x: np.ndarray, codec: str, rng: np.random.Generator) -> np.ndarray:
    """Round-trip through GSM 06.10 or AMR-NB with sox (libsox-fmt-all)."""
    if shutil.which("sox") is None:
        raise RuntimeError("sox is not installed (apt-get install sox libsox-fmt-all)")
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()
    raw = ["-t", "raw", "-r", str(SAMPLE_RATE), "-e", "signed", "-b", "16", "-c", "1"]
    fmt = ["-t", "gsm"] if codec == "gsm" else ["-t", "amr-nb", "-C", str(int(rng.integers(0, 8)))]
    enc = subprocess.run(["sox", *raw, "-", *fmt, "-"], input=pcm, capture_output=True, check=True).stdout
    dec = subprocess.run(["sox", fmt[0], fmt[1], "-", *raw, "-"], input=enc, capture_output=True, check=True).stdout
    y = np.frombuffer(dec, dtype="<i2").astype(np.float32) / 32768.0
    out = np.zeros_like(x)
    out[: min(len(x), len(y))] = y[: len(x)]
    return out


def apply_codec(x: np.ndarray, codec: str, rng: np.random.Generator) -> np.ndarray:
    if codec == "none":
        return x.astype(np.float32)
    if codec in ("mulaw", "alaw"):
        return g711(x, codec)
    return sox_codec(x, codec, rng)


def packet_loss(x: np.ndarray, rng: np.random.Generator, rate: float) -> np.ndarray:
    """Zero random 20 ms packets (no concealment), as a lossy VoIP leg would."""
    y = x.copy()
    n = SAMPLE_RATE // 50
    for start in range(0, len(y) - n, n):
        if rng.random() < rate:
            y[start : start + n] = 0.0
    return y


def telephone_band(x: np.ndarray, low_hz: float = 300.0, high_hz: float = 3400.0) -> np.ndarray:
    sos = signal.butter(4, [low_hz, high_hz], btype="bandpass", fs=SAMPLE_RATE, output="sos")
    return signal.sosfilt(sos, x).astype(np.float32)


def change_speed(x: np.ndarray, factor: float) -> np.ndarray:
    """Play ``x`` ``factor`` times faster (resampled: pitch and formants scale with it)."""
    import soxr

    return soxr.resample(x, SAMPLE_RATE * factor, SAMPLE_RATE, quality="HQ").astype(np.float32)


def simulate_call(
    utterances: list[np.ndarray], rng: np.random.Generator, config: SimConfig | None = None
) -> tuple[np.ndarray, dict]:
    """Assemble trimmed utterances into one call and pass it through a random telephone channel.

    utterances: 1-D float32 8 kHz signals. Returns (call signal, the channel settings drawn).
    """
    c = config or SimConfig()
    parts = [np.zeros(int(rng.uniform(0, c.lead_max_seconds) * SAMPLE_RATE), np.float32)]
    speed = float(rng.uniform(*c.speed)) if rng.random() < c.p_speed else 1.0
    for i, u in enumerate(utterances):
        u = trim_silence(np.asarray(u, dtype=np.float32))
        if speed != 1.0:
            u = change_speed(u, speed)
        u = u / (_rms(u) + 1e-9) * 0.05 * 10 ** (rng.uniform(-1, 1) * c.utterance_gain_jitter_db / 20)
        if i:
            pause = float(np.clip(rng.lognormal(np.log(c.pause_median_seconds), c.pause_sigma), 0.1, 3.0))
            parts.append(np.zeros(int(pause * SAMPLE_RATE), np.float32))
        parts.append(u)
    parts.append(np.zeros(int(rng.uniform(0, c.trail_max_seconds) * SAMPLE_RATE), np.float32))
    x = np.concatenate(parts).astype(np.float64)

    meta: dict = {"speed": round(speed, 3)} if speed != 1.0 else {}
    speech_rms = 0.05
    if rng.random() >= c.p_clean:
        kind = str(rng.choice(NOISE_TYPES))
        snr = float(rng.uniform(*c.snr_db))
        noise = _colored_noise(len(x), kind, rng)
        x = x + noise / _rms(noise) * speech_rms * 10 ** (-snr / 20)
        meta.update(noise=kind, snr_db=round(snr, 1))
    else:
        meta.update(noise="none")
    gain = float(rng.uniform(*c.gain_db))
    x = x * 10 ** (gain / 20) * (0.1 / speech_rms)  # speech RMS -20 dBFS, then -40..-12 dBFS
    meta["gain_db"] = round(gain, 1)
    if rng.random() < c.p_clip:
        drive = 10 ** (rng.uniform(1, 8) / 20)
        x = x / (np.max(np.abs(x)) + 1e-9) * drive
        meta["clipped"] = True
    x = np.clip(x, -1.0, 1.0).astype(np.float32)
    if rng.random() < c.p_bandlimit:
        x = telephone_band(x)
        meta["bandlimit"] = True
    codec = c.codec or str(rng.choice(CODECS, p=CODEC_WEIGHTS))
    x = apply_codec(x, codec, rng)
    meta["codec"] = codec
    if rng.random() < c.p_packet_loss:
        rate = float(rng.uniform(0.01, 0.05))
        x = packet_loss(x, rng, rate)
        meta["packet_loss"] = round(rate, 3)
    return x, meta
