import librosa
import numpy as np
import pytest
import torch

from robodetect.features import (
    F_MAX,
    F_MIN,
    HOP_LENGTH,
    LOG_EPS,
    N_FFT,
    N_FRAMES,
    N_MELS,
    PROSODY_NAMES,
    WINDOW_SAMPLES,
    FrontEnd,
    FrontEndConfig,
    speech_to_call_time,
    timing_features,
)
from robodetect.vad import Segment

SR = 8000


def prosody_of(x: np.ndarray, hop_length: int = HOP_LENGTH) -> dict[str, float]:
    _, p = FrontEnd(config=FrontEndConfig(hop_length=hop_length))(torch.from_numpy(x[None].astype(np.float32)))
    return dict(zip(PROSODY_NAMES, p[0].tolist()))


@pytest.mark.parametrize("hop_length", [HOP_LENGTH, 160])
def test_logmel_matches_librosa_reference(speech_8k, hop_length):
    """The front end's log filterbank equals librosa's, at the default STFT hop (10 ms) and at a
    model's own (``frontend.hop_length``, rebuilt from the JSON)."""
    window = speech_8k[8000 : 8000 + WINDOW_SAMPLES]
    ref = librosa.feature.melspectrogram(
        y=window,
        sr=SR,
        n_fft=N_FFT,
        hop_length=hop_length,
        center=False,
        power=2.0,
        window="hann",
        n_mels=N_MELS,
        fmin=F_MIN,
        fmax=F_MAX,
    )
    ref = np.log(ref + LOG_EPS * ref.mean() + 1e-20)
    ref -= ref.mean()
    logmel, prosody = FrontEnd(config=FrontEndConfig(hop_length=hop_length))(torch.from_numpy(window[None]))
    frames = N_FRAMES if hop_length == HOP_LENGTH else 1 + (WINDOW_SAMPLES - N_FFT) // hop_length
    assert logmel.shape == (1, N_MELS, frames) and prosody.shape == (1, len(PROSODY_NAMES))
    np.testing.assert_allclose(logmel[0].numpy(), ref, atol=2e-3)


def test_logmel_is_gain_invariant(speech_8k):
    w = torch.from_numpy(speech_8k[None, :WINDOW_SAMPLES])
    a, pa = FrontEnd()(w)
    b, pb = FrontEnd()(w * 10 ** (-12 / 20))
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-3)
    np.testing.assert_allclose(pa.numpy(), pb.numpy(), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("hop_length", [HOP_LENGTH, 160])
def test_pitch_features_on_tones(hop_length):
    t = np.arange(WINDOW_SAMPLES) / SR
    steady = 0.3 * np.sin(2 * np.pi * 150 * t)
    p = prosody_of(steady, hop_length)
    assert p["voiced_ratio"] > 0.95 and p["pitch_std_semitones"] < 0.3
    # vibrato: f0 swings 120..200 Hz -> several semitones of spread
    f0 = 160 + 40 * np.sin(2 * np.pi * 1.5 * t)
    glide = 0.3 * np.sin(2 * np.pi * np.cumsum(f0) / SR)
    assert prosody_of(glide, hop_length)["pitch_std_semitones"] > 2.0
    noise = 0.1 * np.random.default_rng(0).standard_normal(WINDOW_SAMPLES)
    assert prosody_of(noise, hop_length)["voiced_ratio"] < 0.2


@pytest.mark.parametrize("hop_length", [HOP_LENGTH, 160])
def test_syllable_rate_follows_modulation(hop_length):
    """Syllable nuclei per second; at a 20 ms STFT hop the envelope smoothing and peak-picking
    spans keep their durations (kept in frames, each would span twice the time)."""
    t = np.arange(WINDOW_SAMPLES) / SR
    carrier = np.sin(2 * np.pi * 200 * t)
    for rate in (3.0, 6.0):
        env = np.abs(np.sin(np.pi * rate * t)) ** 2 + 1e-3  # `rate` bursts per second
        assert prosody_of(0.3 * env * carrier, hop_length)["syllable_rate"] == pytest.approx(rate, abs=1.0)


@pytest.mark.parametrize("hop_length", [0, N_FFT + 1, 80.5])
def test_front_end_refuses_an_stft_hop_it_cannot_honour(hop_length):
    bad = FrontEndConfig(hop_length=hop_length).unsupported()
    assert len(bad) == 1 and bad[0].startswith(f"frontend.hop_length={hop_length}")
    with pytest.raises(ValueError, match="hop_length"):
        FrontEnd(config=FrontEndConfig(hop_length=hop_length))


def test_speech_offsets_map_back_to_call_time():
    """A window starting exactly on a segment boundary starts in the next segment (not at the end of
    the previous one); a window ending there ends in the previous one."""
    segs = [Segment(0.0, 3.0), Segment(10.0, 13.0)]
    assert speech_to_call_time(segs, 3 * SR) == pytest.approx(10.0)
    assert speech_to_call_time(segs, 3 * SR, end=True) == pytest.approx(3.0)
    assert speech_to_call_time(segs, 6 * SR, end=True) == pytest.approx(13.0)
    assert speech_to_call_time(segs, SR) == pytest.approx(1.0)


def test_timing_features():
    segs = [Segment(0.5, 2.0), Segment(2.5, 3.0), Segment(4.0, 6.0)]
    mask = np.zeros(200, bool)
    energy = np.full(200, -70.0, np.float32)
    t = timing_features(segs, 8.0, energy, mask)
    assert t["segment_count"] == 3 and t["speech_ratio"] == pytest.approx(4.0 / 8.0)
    assert t["pause_mean_seconds"] == pytest.approx(0.75) and t["pause_max_seconds"] == pytest.approx(1.0)
    assert t["noise_floor_dbfs"] == pytest.approx(-70.0)
    assert t["segments_per_minute"] == pytest.approx(22.5)


@pytest.mark.parametrize("f0", [70.0, 80.0, 100.0, 130.0, 180.0, 250.0, 330.0, 400.0])
def test_pitch_and_voicing_on_harmonic_tones(f0):
    """A perfect harmonic signal is voiced at its own pitch across the whole 70-400 Hz range
    (the old circular, un-normalised autocorrelation called 80 Hz unvoiced)."""
    fe = FrontEnd()
    t = np.arange(WINDOW_SAMPLES) / SR
    x = sum(np.sin(2 * np.pi * f0 * k * t + k) / k for k in range(1, int(3800 / f0) + 1))
    w = torch.from_numpy((0.5 * x / np.abs(x).max())[None].astype(np.float32))
    hz, strength = fe.pitch(fe.pitch_power(w))
    assert abs(float(hz.median()) / f0 - 1) < 0.01
    p = dict(zip(PROSODY_NAMES, fe(w)[1][0].tolist()))
    assert p["voiced_ratio"] > 0.95 and p["pitch_std_semitones"] < 0.1


def test_noise_is_unvoiced():
    x = np.random.default_rng(0).standard_normal(WINDOW_SAMPLES).astype(np.float32) * 0.1
    assert prosody_of(x)["voiced_ratio"] < 0.1


def test_legacy_circular_pitch_keeps_v2_behaviour():
    """robodetect-v2's estimator (kept for its JSON) still calls an 80 Hz voice unvoiced: the bug
    the linear estimator fixes, preserved only so v2 scores exactly as it was trained."""
    from robodetect.features import FrontEndConfig

    t = np.arange(WINDOW_SAMPLES) / SR
    x = sum(np.sin(2 * np.pi * 80.0 * k * t) / k for k in range(1, 48))
    w = torch.from_numpy((0.5 * x / np.abs(x).max())[None].astype(np.float32))
    legacy = FrontEnd(config=FrontEndConfig(pitch="circular-acf"))
    voiced = dict(zip(PROSODY_NAMES, legacy(w)[1][0].tolist()))["voiced_ratio"]
    assert voiced < 0.2 and prosody_of(w[0].numpy())["voiced_ratio"] > 0.95
