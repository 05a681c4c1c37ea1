"""Call simulator: turns clean utterances into realistic 8 kHz telephone calls.

Applied identically to human and robot speech (the only input that differs is the voice), so
that a model cannot learn corpus artefacts: every utterance's own leading/trailing silence is
stripped, utterances are joined with pauses drawn from one shared distribution, then background
noise, gain changes, clipping, telephone band-limiting, a telephone codec (G.711 mu-law / A-law,
GSM 06.10, AMR-NB) and packet-loss dropouts are applied at random (optionally also resampler and
MP3 round trips, a room, a handset noise suppressor and an AGC). Seeded through the ``rng``.
"""

from __future__ import annotations

import shutil
import subprocess
import zlib
from dataclasses import dataclass

import librosa
import numpy as np
from scipy import signal

from .audio import SAMPLE_RATE

CODECS = ("none", "mulaw", "alaw", "gsm", "amr-nb")
CODEC_WEIGHTS = (0.15, 0.25, 0.2, 0.2, 0.2)
NOISE_TYPES = ("white", "pink", "brown", "hum", "office")
SPEECH_RMS = 0.05  # every utterance is set to this level before the channel


@dataclass
class SimConfig:
    pause_median_seconds: float = 0.45  # lognormal pause between utterances
    pause_sigma: float = 0.6
    lead_max_seconds: float = 1.5  # uniform leading silence 0..max
    trail_max_seconds: float = 1.0
    p_clean: float = 0.15  # no background noise, only a low floor (clean_floor_db) — both classes
    # the floor of a "clean" call: coloured noise this many dB below the speech, so the source's
    # own recording noise (humans) or its absence (synthesis) does not mark a class
    clean_floor_db: tuple[float, float] = (-50.0, -30.0)
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
    # a low white-noise floor under every call, relative to the speech level (before any other
    # noise): no source, human or robot, keeps digital zeros inside or between its utterances
    dither_db: float = -50.0
    # resampler augmentation: a share of legs go to another rate and back through a random
    # resampler (soxr LQ..VHQ or scipy's polyphase filter), so the 3.5-4 kHz band edge that a
    # source's resampler leaves (or a 16 kHz delivery) cannot mark a class
    p_resample: float = 0.0
    resample_rates: tuple[int, ...] = (11025, 16000, 22050, 24000, 44100)
    # MP3 round trip of a share of legs (both classes, before the noise): human corpora cut from
    # MP3 (LibriVox audiobooks, Common Voice) and robot prompts stored as MP3 both exist, so MP3
    # coding artefacts must not mark a class; drawn from its own generator like the clean floor
    p_mp3: float = 0.0
    # a room between the talker and the microphone for a share of legs (both classes, before
    # everything else in the channel; training only, session 29's X): every synthesised robot is dry,
    # the human corpora were recorded in rooms, so a room must not read as "a human's recording
    # chain"; a speakerphone or car kit puts any caller in one. RT60 drawn log-uniform, the
    # direct-to-reverberant ratio uniform; its own generator (seeded by the signal)
    p_room: float = 0.0
    room_rt60_seconds: tuple[float, float] = (0.15, 1.0)
    room_drr_db: tuple[float, float] = (-3.0, 12.0)
    # handset noise suppression of a share of legs (both classes, after the background noise, before
    # gain and codec): phones and VoIP clients run a Wiener-type suppressor on the uplink, whose
    # gating and "musical noise" a spectral model could otherwise take for synthesis (v6 scores
    # suppressed human windows up to +1.5 logit more robot). Drawn from its own generator
    p_ns: float = 0.0
    ns_floor_db: tuple[float, float] = (-60.0, -16.0)  # the suppressor's gain floor (gentle to gating)
    ns_over: tuple[float, float] = (1.0, 4.0)  # over-subtraction of the noise estimate
    # handset / network automatic gain control of a share of legs (after the suppressor, before the
    # gain): a real line compresses a caller's level range, and v11 scores a human through a 3:1
    # 300 ms AGC +1.4 logit more robot. Ratio and window drawn per leg (the window log-uniform),
    # from its own generator
    p_agc: float = 0.0
    agc_ratio: tuple[float, float] = (1.5, 4.0)
    agc_window_seconds: tuple[float, float] = (0.03, 0.5)
    # None: the gate relative to the speech only (line noise in pauses is boosted, session 22's H);
    # a value: the gate at least this many dB above the leg's noise floor (only speech compressed)
    agc_noise_gate_db: float | None = None
    # line noise raised in a share of legs' pauses only (training; session 23's M): an AGC or a
    # VoIP client's comfort noise lifts the noise between words, not under them (session 22's H
    # stage did this by accident: -8.9 dB pause SNR, median). Drawn per leg from its own generator.
    # "Pauses" are decided on the source before noise, so pauses inside synthetic utterances (digital
    # silence) are lifted more often than inside human ones, whose own room noise reads as speech
    p_pause_noise: float = 0.0
    pause_noise_db: tuple[float, float] = (5.0, 20.0)
    # where the pauses are (session 24's P): "signal", decided on the source's level (M, above);
    # "gaps", the gaps the simulator put between its utterances (and the lead and trail; in a
    # two-party leg, wherever that party is silent): the line noise is never raised inside a source
    # utterance, either class (a suppressor or AGC stage after it still acts on the whole leg)
    pause_noise_from: str = "signal"
    # two-party calls (simulate_two_party): the callee answers after a lognormal gap; a share of
    # the turns overlap (barge-in) by up to overlap_max_seconds
    turn_gap_median_seconds: float = 0.5
    p_overlap: float = 0.15
    overlap_max_seconds: float = 0.4
    # short source clips joined into phrases (session 25's Q): a one-party call assembled from
    # clips shorter than this many seconds each (FSDD's spoken digits, 0.44 s on average) puts a
    # short gap (lognormal, join_gap_median_seconds) instead of a pause between two of them while
    # the phrase stays within a length drawn from phrase_seconds, as a person reads a number;
    # otherwise half of such a call is pause and the pause structure marks the source. 0: off.
    # Its draws come from its own generator: the utterances, their levels and the other pauses are
    # the call's without it (the channel, whose draws depend on the call's length, draws anew). The
    # generator is seeded by the call's first utterance, so calls that open with the same source clip
    # draw the same phrase lengths. A clip's length is taken before any speed change, and a phrase's
    # length counts its clips, not the gaps between them
    join_below_seconds: float = 0.0
    join_gap_median_seconds: float = 0.12
    phrase_seconds: tuple[float, float] = (1.5, 6.0)
    # a share of one-party calls (both classes) whose every utterance is cut into pieces of about
    # piece_seconds at its quietest 10 ms (split_pieces), a pause drawn between them (session 25's
    # Q): speech broken into digit-length bursts, said by a robot or a person alike. Own generator,
    # seeded as join_below_seconds' (calls that open with the same clip are cut or not alike)
    p_pieces: float = 0.0
    piece_seconds: float = 0.5


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


RESAMPLERS = ("soxr-LQ", "soxr-MQ", "soxr-HQ", "soxr-VHQ", "poly")


def resample_round_trip(x: np.ndarray, rng: np.random.Generator, rates: tuple[int, ...]) -> tuple[np.ndarray, str]:
    """``x`` (8 kHz) to a random rate and back with one random resampler; same length."""
    import soxr

    rate, how = int(rng.choice(rates)), str(rng.choice(RESAMPLERS))
    if how == "poly":
        from fractions import Fraction

        f = Fraction(rate, SAMPLE_RATE)
        y = signal.resample_poly(signal.resample_poly(x, f.numerator, f.denominator), f.denominator, f.numerator)
    else:
        q = how.split("-")[1]
        y = soxr.resample(soxr.resample(x, SAMPLE_RATE, rate, quality=q), rate, SAMPLE_RATE, quality=q)
    out = np.zeros(len(x), np.float64)
    out[: min(len(x), len(y))] = y[: len(x)]
    return out, f"{how}@{rate}"


MP3_RATE = 16000  # MPEG-2 Layer III at 16 kHz: the rate LibriSpeech and Common Voice clips were cut at


def mp3_round_trip(x: np.ndarray, quality: float) -> np.ndarray:
    """``x`` (8 kHz) through an MP3 encoder and decoder at 16 kHz (libsndfile's LAME/mpg123),
    variable bit rate; ``quality`` 0 (~48 kbit/s) .. 0.95 (~22 kbit/s) is libsndfile's compression
    level. Same length and alignment (the decoder removes the encoder delay)."""
    import io

    import soundfile as sf
    import soxr

    up = soxr.resample(np.asarray(x, np.float32), SAMPLE_RATE, MP3_RATE, quality="HQ")
    peak = float(np.max(np.abs(up))) if len(up) else 0.0
    scale = 0.9 / peak if peak > 0.9 else 1.0  # MP3 of a full-scale signal would clip on decoding
    buf = io.BytesIO()
    sf.write(buf, up * scale, MP3_RATE, format="MP3", compression_level=quality, bitrate_mode="VARIABLE")
    buf.seek(0)
    y, _ = sf.read(buf, dtype="float32")
    y = soxr.resample(y / scale, MP3_RATE, SAMPLE_RATE, quality="HQ")
    out = np.zeros(len(x), np.float64)
    out[: min(len(x), len(y))] = y[: len(x)]
    return out


NS_FFT, NS_HOP = 256, 128  # 32 ms frames, 50 % overlap (sqrt-Hann analysis and synthesis)
NS_MIN_BIAS = 3.0  # measured on white and pink noise (2.96, 2.98; tests/test_simulate.py re-measures it)


def room_response(rt60: float, drr_db: float, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room impulse response at 8 kHz: a unit direct path, then a diffuse tail of
    Gaussian noise decaying by 60 dB in ``rt60`` seconds (starting 2.5 ms after the direct path,
    cut where it is 80 dB down), scaled so that the direct path's energy over the tail's is
    ``drr_db``."""
    if not (rt60 > 0 and np.isfinite(rt60) and np.isfinite(drr_db)):
        raise ValueError(f"room_response: rt60 must be > 0 and both finite, not {rt60!r}, {drr_db!r}")
    onset = int(0.0025 * SAMPLE_RATE)
    n = max(int(rt60 * 80 / 60 * SAMPLE_RATE), 1)
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.standard_normal(n) * 10 ** (-3.0 * t / rt60)  # amplitude: -60 dB at t = rt60
    tail *= 10 ** (-drr_db / 20) / np.sqrt(np.sum(tail**2))
    h = np.zeros(onset + n)
    h[0] = 1.0
    h[onset:] = tail
    return h


def room_reverb(x: np.ndarray, rt60: float, drr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``x`` heard through :func:`room_response` (same length: the tail past the end is cut), at the
    RMS it had over the whole leg, so the channel's speech level and SNR draws keep their meaning
    (nearly: the tail moves a little energy into the pauses, -0.1 dB of speech level at RT60 0.5 s)."""
    x = np.asarray(x, dtype=np.float64)
    if not len(x):
        return x
    y = signal.fftconvolve(x, room_response(rt60, drr_db, rng))[: len(x)]
    before, after = np.sqrt(np.mean(x**2)), np.sqrt(np.mean(y**2))
    return y * (before / after) if after > 0 else y


def track_noise(power: np.ndarray, tracking_seconds: float = 1.5) -> np.ndarray:
    """Noise power per STFT bin and frame of ``power`` (bins, frames) by minimum statistics: the
    minimum of the recursively smoothed power over the past ``tracking_seconds`` (a causal window),
    times :data:`NS_MIN_BIAS` (the ratio of stationary noise's mean power to that minimum)."""
    from scipy.ndimage import minimum_filter1d

    smooth = signal.lfilter([0.3], [1.0, -0.7], power, axis=1)  # first-order recursive smoothing
    span = max(1, int(tracking_seconds * SAMPLE_RATE / NS_HOP))
    return minimum_filter1d(smooth, size=span, axis=1, origin=(span - 1) // 2, mode="nearest") * NS_MIN_BIAS


def _ns_frames() -> dict:
    """The suppressor's STFT settings, analysis and synthesis alike: sqrt-Hann frames of NS_FFT
    samples every NS_HOP."""
    return {
        "window": np.sqrt(signal.get_window("hann", NS_FFT, fftbins=True)),
        "nperseg": NS_FFT,
        "noverlap": NS_FFT - NS_HOP,
    }


def ns_stft(x: np.ndarray) -> np.ndarray:
    """The suppressor's analysis (:func:`_ns_frames`)."""
    return signal.stft(x, boundary="even", padded=True, **_ns_frames())[2]


def noise_suppress(x: np.ndarray, floor_db: float = -20.0, over: float = 2.0, dd: float = 0.98) -> np.ndarray:
    """A handset-style noise suppressor: the noise power per STFT bin from :func:`track_noise`,
    the a priori SNR decision-directed (Ephraim & Malah, smoothing ``dd``) against ``over`` times
    that noise, and the Wiener gain xi / (1 + xi) held above ``floor_db``. Same length as ``x``.
    The tracker starts from silence, so the first ~1.5 s of a signal are suppressed less (as a
    suppressor converging after the line opens)."""
    x = np.asarray(x, np.float64)
    n = len(x)
    if n < NS_FFT:
        return x.copy()
    z = ns_stft(x)
    power = np.abs(z) ** 2  # (bins, frames)
    gamma = power / (over * track_noise(power) + 1e-12)  # a posteriori SNR
    floor = 10 ** (floor_db / 20)  # the gain scales amplitudes
    gain = np.empty_like(power)
    prev = np.ones(power.shape[0])  # |previous clean estimate|^2 / noise, per bin
    for t in range(power.shape[1]):
        xi = np.maximum(dd * prev + (1 - dd) * np.maximum(gamma[:, t] - 1, 0.0), 1e-3)
        g = np.maximum(xi / (1 + xi), floor)
        gain[:, t] = g
        prev = g**2 * gamma[:, t]
    _, y = signal.istft(z * gain, boundary=True, **_ns_frames())
    out = np.zeros(n, np.float64)
    out[: min(n, len(y))] = y[:n]
    return out


def agc_compress(
    x: np.ndarray,
    ratio: float = 3.0,
    window_seconds: float = 0.3,
    gate_db: float = -40.0,
    max_gain_db: float = 20.0,
    noise_gate_db: float | None = None,
) -> np.ndarray:
    """A handset-style automatic gain control / compressor (the shortcut checks' AGC row; the
    simulator's ``p_agc`` stage): the level over a sliding ``window_seconds`` is pulled toward the
    active speech level (the median level of the frames within ``-gate_db`` dB of the loudest) with
    ``ratio``:1 compression in dB, so loud syllables come down and weak ones, closures and breaths
    come up; below the gate, ``gate_db`` under the active level, the boost fades to none over 10 dB,
    and the gain stays within +-``max_gain_db``. Same length as ``x``.

    With ``noise_gate_db`` None (the shortcut row's AGC) the gate sits only relative to the speech:
    line noise within 40 dB of the speech (any real SNR) is boosted in the pauses, as by an AGC
    without a noise gate. With ``noise_gate_db`` set, no boost reaches a level within
    ``noise_gate_db`` of the line's noise floor (the 5th percentile of 20 ms frame levels; full boost
    10 dB higher), and the active level is the median of the frames above that too (a leg where one
    party speaks a third of the time keeps its speech level): the pauses keep their SNR and only
    speech is compressed."""
    x = np.asarray(x, np.float64)
    win = max(1, int(window_seconds * SAMPLE_RATE))
    if len(x) < win:
        return x.copy()
    # the mean power over the window centred as np.convolve(..., mode="same") centres it, by running
    # sums: O(n) however long the window
    n = len(x)
    sums = np.concatenate(([0.0], np.cumsum(x * x)))
    end = np.minimum(np.arange(n) + (win - 1) // 2, n - 1) + 1
    start = np.maximum(np.arange(n) + (win - 1) // 2 - win + 1, 0)
    power = np.maximum(sums[end] - sums[start], 0.0) / win
    level = 10 * np.log10(power + 1e-12)
    frames = level[: len(level) // win * win].reshape(-1, win).mean(axis=1)
    floor = -np.inf  # no boost at or below this level
    if noise_gate_db is not None:
        short = x[: n // 160 * 160].reshape(-1, 160) if n >= 160 else x[None, :]
        floor = float(np.percentile(10 * np.log10(np.mean(short**2, axis=1) + 1e-12), 5)) + noise_gate_db
    speech = frames[frames >= max(frames.max() + gate_db, floor + 10.0)]
    active = float(np.median(speech if len(speech) else frames[frames >= frames.max() + gate_db]))
    gain_db = np.clip((active - np.maximum(level, active + gate_db)) * (1.0 - 1.0 / ratio), -max_gain_db, max_gain_db)
    # the boost fades in over 10 dB: from none at the higher of (the gate - 10 dB, the noise gate) to full
    fade = np.clip((level - max(active + gate_db - 10.0, floor)) / 10.0, 0.0, 1.0)
    return x * 10 ** (np.where(gain_db > 0, gain_db * fade, gain_db) / 20)


def pause_gain(
    x: np.ndarray, boost_db: float, active_db: float = -35.0, hangover_frames: int = 2, ramp_frames: int = 5
) -> np.ndarray:
    """Per-sample gain for the noise added to ``x`` (speech at RMS :data:`SPEECH_RMS` before any
    noise): 1 where ``x`` speaks, ``boost_db`` dB in its pauses. A 20 ms frame speaks when its level
    is within ``-active_db`` dB of the speech level (the dither, 50 dB under, never does), or within
    ``hangover_frames`` of one that does; the gain moves between the two over ``ramp_frames``
    frames (in dB, linear), as an AGC's or a comfort-noise generator's level would."""
    x = np.asarray(x, np.float64)
    if len(x) == 0:
        return np.ones(0)
    level = 10 * np.log10(np.mean(_frames(x) ** 2, axis=1) + 1e-20)
    return _frame_gain(level > 20 * np.log10(SPEECH_RMS) + active_db, len(x), boost_db, hangover_frames, ramp_frames)


def gap_gain(speech: np.ndarray, boost_db: float, hangover_frames: int = 2, ramp_frames: int = 5) -> np.ndarray:
    """:func:`pause_gain` with the pauses known instead of measured: ``speech`` is True on every
    sample of a source utterance as the simulator placed it, and a 20 ms frame speaks when any of
    its samples does (same hangover and ramps); the gain is 1 on every utterance sample (the ramp's
    last half frame included), so nothing inside an utterance is lifted, whatever its level."""
    speech = np.asarray(speech, bool)
    if len(speech) == 0:
        return np.ones(0)
    gain = _frame_gain(_frames(speech).any(axis=1), len(speech), boost_db, hangover_frames, ramp_frames)
    gain[speech] = 1.0
    return gain


def _frames(x: np.ndarray) -> np.ndarray:
    """``x`` as 20 ms frames, (frames, samples), the last one zero-padded."""
    return _frames_of(x, SAMPLE_RATE // 50)


def _frames_of(x: np.ndarray, frame: int) -> np.ndarray:
    """``x`` as frames of ``frame`` samples, (frames, samples), the last one zero-padded."""
    padded = np.zeros(-(-len(x) // frame) * frame, x.dtype)
    padded[: len(x)] = x
    return padded.reshape(-1, frame)


def _frame_gain(active: np.ndarray, n: int, boost_db: float, hangover_frames: int, ramp_frames: int) -> np.ndarray:
    """Per-sample gain of ``n`` samples from 20 ms frames' speech flags ``active``: 1 near speech,
    ``boost_db`` dB elsewhere, with a hangover and linear-in-dB ramps."""
    frame, nf = SAMPLE_RATE // 50, len(active)
    active = np.asarray(active, np.float64)
    k = 2 * hangover_frames + 1
    active = np.convolve(np.pad(active, hangover_frames), np.ones(k), "valid") > 0
    gain_db = boost_db * (1.0 - active)
    half = ramp_frames // 2
    gain_db = np.convolve(
        np.pad(gain_db, (half, ramp_frames - 1 - half), mode="edge"), np.ones(ramp_frames) / ramp_frames, "valid"
    )
    centres = np.arange(nf) * frame + frame / 2
    return 10 ** (np.interp(np.arange(n), centres, gain_db) / 20)


#: the channel stages :func:`channel_view` draws from (the shortcut checks' noise, MP3 and suppression rows)
VIEW_STAGES = ("noise", "mp3", "suppress")


def channel_view(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A second rendering of one short window ``x`` (float, 8 kHz) through one channel stage drawn
    at random, for consistency training (the model's logit should not move): coloured noise 25-40 dB
    below the window's active level; an MP3 round trip (libsndfile quality 0.3-0.8); or the handset
    noise suppressor (floor -40..-20 dB), run on the window three times over so its noise tracker has
    converged on the last copy (the tracker needs ~1.5 s; a window is 1 s). Same length as ``x``."""
    x = np.asarray(x, np.float64)
    stage = VIEW_STAGES[int(rng.integers(len(VIEW_STAGES)))]
    if stage == "noise":
        active = np.abs(x) > 1e-4
        level = _rms(x[active]) if active.any() else 0.01
        noise = _colored_noise(len(x), str(rng.choice(["white", "pink", "brown", "office"])), rng)
        y = x + noise / _rms(noise) * level * 10 ** (-rng.uniform(25.0, 40.0) / 20)
    elif stage == "mp3":
        y = mp3_round_trip(x, float(rng.uniform(0.3, 0.8)))
    else:
        n = len(x)
        y = noise_suppress(np.tile(x, 3), float(rng.uniform(-40.0, -20.0)), 2.0)[2 * n :]
    return np.clip(y, -1.0, 1.0), stage


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


def _level(u: np.ndarray, rng: np.random.Generator, c: SimConfig, speed: float) -> np.ndarray:
    """One utterance trimmed, speed-changed and set to the common speech level (RMS 0.05) with a
    small per-utterance jitter."""
    u = trim_silence(np.asarray(u, dtype=np.float32))
    if speed != 1.0:
        u = change_speed(u, speed)
    return u / (_rms(u) + 1e-9) * SPEECH_RMS * 10 ** (rng.uniform(-1, 1) * c.utterance_gain_jitter_db / 20)


def _pause(rng: np.random.Generator, c: SimConfig) -> int:
    return int(float(np.clip(rng.lognormal(np.log(c.pause_median_seconds), c.pause_sigma), 0.1, 3.0)) * SAMPLE_RATE)


def split_pieces(x: np.ndarray, piece_seconds: float = 0.5, search_seconds: float = 0.15) -> list[np.ndarray]:
    """``x`` cut into pieces of about ``piece_seconds``, each cut at the quietest 10 ms frame within
    ``search_seconds`` of its nominal place (between words or syllables where there is one). Cutting
    stops when less than one and a half pieces are left, so the last piece is from ``piece_seconds / 2
    - search_seconds`` to ``1.5 * piece_seconds`` long; ``x`` under 1.5 pieces (or empty) is one piece."""
    step, search = SAMPLE_RATE // 100, int(search_seconds * SAMPLE_RATE)
    if piece_seconds * SAMPLE_RATE < step:
        raise ValueError(f"piece_seconds must be at least {step / SAMPLE_RATE} s, not {piece_seconds}")
    n = int(piece_seconds * SAMPLE_RATE)
    energy = np.mean(_frames_of(np.asarray(x, np.float64), step) ** 2, axis=1)
    cuts = [0]
    while cuts[-1] + n + n // 2 <= len(x):
        last = cuts[-1]
        lo, hi = max((last + n - search) // step, last // step + 1), min((last + n + search) // step, len(energy))
        cuts.append((lo + int(np.argmin(energy[lo:hi]))) * step if hi > lo else last + n)
    cuts.append(len(x))
    return [x[a:b] for a, b in zip(cuts, cuts[1:], strict=False) if b > a] or [x]


class _Assembly:
    """The draws of session 25's utterance-level stages (joined short clips, pieces), from their
    own generators seeded by the call's first utterance: the utterances' levels and the usual
    pauses are drawn as without them (the channel after them sees another length, so draws anew)."""

    def __init__(self, utterances: list[np.ndarray], c: SimConfig) -> None:
        seed = zlib.crc32(np.asarray(utterances[0], np.float32).tobytes()) if utterances else 0
        self.c = c
        self.join = np.random.default_rng(seed ^ 0x4A4E) if c.join_below_seconds > 0 else None
        sub = np.random.default_rng(seed ^ 0x5043)
        self.pieces = c.p_pieces > 0 and sub.random() < c.p_pieces
        self.sub, self.phrase, self.target, self.prev_short = sub, 0.0, 0.0, False

    def gap(self, u: np.ndarray, pause: int) -> int:
        """The silence before source utterance ``u`` (``pause``: the simulator's usual draw; for the
        call's first utterance, which only begins a phrase, anything)."""
        if self.join is None:
            return pause
        seconds = len(u) / SAMPLE_RATE
        short = seconds < self.c.join_below_seconds
        joined = short and self.prev_short and self.phrase + seconds <= self.target
        self.prev_short = short
        if not joined:
            self.phrase, self.target = seconds, float(self.join.uniform(*self.c.phrase_seconds))
            return pause
        self.phrase += seconds
        gap = self.join.lognormal(np.log(self.c.join_gap_median_seconds), 0.5)
        return int(float(np.clip(gap, 0.03, 0.4)) * SAMPLE_RATE)

    def cut(self, u: np.ndarray) -> list[np.ndarray]:
        """A levelled utterance as the parts it enters the call as: itself, or its pieces with
        pauses (zeros) between them."""
        if not self.pieces:
            return [u]
        return with_pauses(
            split_pieces(u, self.c.piece_seconds), lambda: np.zeros(_pause(self.sub, self.c), np.float32)
        )


def with_pauses(pieces: list[np.ndarray], pause) -> list[np.ndarray]:
    """``pieces`` with ``pause()`` (a new silence each time, drawn in order) between each two."""
    out: list[np.ndarray] = []
    for k, piece in enumerate(pieces):
        if k:
            out.append(pause())
        out.append(piece)
    return out


def simulate_call(
    utterances: list[np.ndarray], rng: np.random.Generator, config: SimConfig | None = None
) -> tuple[np.ndarray, dict]:
    """Assemble trimmed utterances into one call and pass it through a random telephone channel.

    utterances: 1-D float32 8 kHz signals. Returns (call signal, the channel settings drawn).
    """
    c = config or SimConfig()
    parts = [np.zeros(int(rng.uniform(0, c.lead_max_seconds) * SAMPLE_RATE), np.float32)]
    speed = float(rng.uniform(*c.speed)) if rng.random() < c.p_speed else 1.0
    assembly = _Assembly(utterances, c)
    for i, u in enumerate(utterances):
        gap = assembly.gap(u, _pause(rng, c) if i else 0)
        if i:
            parts.append(np.zeros(gap, np.float32))
        parts.extend(assembly.cut(_level(u, rng, c, speed)))
    parts.append(np.zeros(int(rng.uniform(0, c.trail_max_seconds) * SAMPLE_RATE), np.float32))
    # parts alternate silence (lead, pauses, trail: even places) and utterances (odd places)
    speech = np.concatenate([np.full(len(p), i % 2 == 1) for i, p in enumerate(parts)])
    x, meta = telephone_channel(np.concatenate(parts), rng, c, speech)
    if speed != 1.0:
        meta["speed"] = round(speed, 3)
    if assembly.pieces:
        meta["pieces"] = True
    return x, meta


def simulate_two_party(
    caller: list[np.ndarray], callee: list[np.ndarray], rng: np.random.Generator, config: SimConfig | None = None
) -> tuple[np.ndarray, dict]:
    """A call between two parties, one per channel: (2, n) float32, row 0 the caller.

    The caller speaks first; after each caller turn (one utterance) the callee may answer with
    one of its utterances after a lognormal gap, sometimes barging in (overlap). Each party's leg
    goes through its own random telephone channel (noise, gain, codec, ...). ``mono = x.mean(0)``
    is the same call recorded on one channel."""
    c = config or SimConfig()
    lead = int(rng.uniform(0, c.lead_max_seconds) * SAMPLE_RATE)
    turns: list[tuple[int, int, np.ndarray]] = []  # (party, start sample, signal)
    t, callee_left = lead, list(callee)
    for u in caller:
        u = _level(u, rng, c, 1.0)
        turns.append((0, t, u))
        t += len(u)
        if callee_left and rng.random() < 0.8:
            v = _level(callee_left.pop(0), rng, c, 1.0)
            gap = int(float(np.clip(rng.lognormal(np.log(c.turn_gap_median_seconds), 0.5), 0.1, 2.5)) * SAMPLE_RATE)
            if rng.random() < c.p_overlap:
                gap = -int(rng.uniform(0.05, c.overlap_max_seconds) * SAMPLE_RATE)
            start = max(0, t + gap)
            turns.append((1, start, v))
            t = start + len(v)
        t += _pause(rng, c)
    n = t + int(rng.uniform(0, c.trail_max_seconds) * SAMPLE_RATE)
    legs = np.zeros((2, n), np.float64)
    spoken = np.zeros((2, n), bool)  # each party's utterance samples (its leg's speech mask)
    for party, start, u in turns:
        legs[party, start : start + len(u)] += u
        spoken[party, start : start + len(u)] = True
    out, metas = [], []
    for leg, mask in zip(legs, spoken, strict=True):
        y, m = telephone_channel(leg, rng, c, mask)
        out.append(y)
        metas.append(m)
    speech = [round(sum(len(u) for p, _, u in turns if p == k) / SAMPLE_RATE, 2) for k in (0, 1)]
    return np.stack(out), {"caller": metas[0], "callee": metas[1], "speech_seconds": speech}


def _signal_rng(x: np.ndarray, salt: int = 0) -> np.random.Generator:
    """A channel stage's own generator, seeded by the signal it acts on and the stage's ``salt``:
    its draws leave the call's ``rng`` sequence, and so every other draw of the call, unchanged."""
    return np.random.default_rng(zlib.crc32(x.tobytes()) ^ salt)


def telephone_channel(
    x: np.ndarray, rng: np.random.Generator, c: SimConfig, speech: np.ndarray | None = None
) -> tuple[np.ndarray, dict]:
    """A room, a resampler and an MP3 round trip (where the config asks), dither, background noise, a noise
    suppressor and an AGC (where asked), gain, clipping, band-limiting, a codec and packet loss,
    drawn at random (speech in ``x`` at RMS :data:`SPEECH_RMS`; ``speech``: True on the samples of
    the source utterances, which ``pause_noise_from="gaps"`` needs)."""
    if c.p_pause_noise > 0 and c.pause_noise_from == "gaps" and (speech is None or len(speech) != len(x)):
        raise ValueError("pause_noise_from='gaps' needs the simulator's per-sample speech mask")
    if c.pause_noise_from not in ("signal", "gaps"):
        raise ValueError(f"pause_noise_from: 'signal' or 'gaps', not {c.pause_noise_from!r}")
    x = np.asarray(x, dtype=np.float64)
    meta: dict = {}
    if c.p_room > 0:  # its own generator (seeded by the signal): every other draw is unchanged
        sub = _signal_rng(x, 0x524F4F4D)
        if sub.random() < c.p_room:
            rt60 = float(np.exp(sub.uniform(*np.log(c.room_rt60_seconds))))
            drr = float(sub.uniform(*c.room_drr_db))
            x = room_reverb(x, rt60, drr, sub)
            meta["room"] = [round(rt60, 3), round(drr, 1)]
    if c.p_resample > 0 and rng.random() < c.p_resample:
        x, meta["resampled"] = resample_round_trip(x, rng, c.resample_rates)
    if c.p_mp3 > 0:  # its own generator (seeded by the signal): every other draw is unchanged
        sub = _signal_rng(x, 0x6D7033)
        if sub.random() < c.p_mp3:
            quality = float(sub.uniform(0.0, 0.95))
            x = mp3_round_trip(x, quality)
            meta["mp3"] = round(quality, 2)
    x = x + rng.standard_normal(len(x)) * SPEECH_RMS * 10 ** (c.dither_db / 20)
    speech_rms = SPEECH_RMS
    if rng.random() >= c.p_clean:
        kind = str(rng.choice(NOISE_TYPES))
        snr = float(rng.uniform(*c.snr_db))
        noise = _colored_noise(len(x), kind, rng)
        meta.update(noise=kind, snr_db=round(snr, 1))
    else:  # the floor draws from its own generator (seeded by the signal): ``rng``'s sequence, and
        # so every other draw of the call, is what it was before the floor existed
        sub = _signal_rng(x)
        kind = str(sub.choice(NOISE_TYPES))
        snr = -float(sub.uniform(*c.clean_floor_db))
        noise = _colored_noise(len(x), kind, sub)
        meta.update(noise="floor", floor=kind, snr_db=round(snr, 1))
    noise = noise / _rms(noise) * speech_rms * 10 ** (-snr / 20)
    if c.p_pause_noise > 0:  # its own generator (seeded by the signal): ``rng``'s draws are unchanged
        # (the suppressor's and AGC's generators, seeded by the noisy signal, draw anew where it acts)
        sub = _signal_rng(x, 0x504E)
        if sub.random() < c.p_pause_noise:
            boost = float(sub.uniform(*c.pause_noise_db))
            noise = noise * (gap_gain(speech, boost) if c.pause_noise_from == "gaps" else pause_gain(x, boost))
            meta["pause_noise_db"] = round(boost, 1)
    x = x + noise
    if c.p_ns > 0:  # its own generator (seeded by the signal): every other draw is unchanged
        sub = _signal_rng(x, 0x4E53)
        if sub.random() < c.p_ns:
            floor_db, over = float(sub.uniform(*c.ns_floor_db)), float(sub.uniform(*c.ns_over))
            x = noise_suppress(x, floor_db, over)
            meta["ns"] = [round(floor_db, 1), round(over, 2)]
    if c.p_agc > 0:  # its own generator (seeded by the signal): every other draw is unchanged
        sub = _signal_rng(x, 0x414743)
        if sub.random() < c.p_agc:
            ratio = float(sub.uniform(*c.agc_ratio))
            window = float(np.exp(sub.uniform(*np.log(c.agc_window_seconds))))
            if len(x) >= int(window * SAMPLE_RATE):  # agc_compress leaves shorter legs as they are
                x = agc_compress(x, ratio, window, noise_gate_db=c.agc_noise_gate_db)
                meta["agc"] = [round(ratio, 2), round(window, 3)]
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
