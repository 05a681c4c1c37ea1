import numpy as np
import pytest

from robodetect.metrics import eer, rates_at, threshold_for_false_alarm
from robodetect.simulate import SimConfig, apply_codec, change_speed, g711, simulate_call, trim_silence


def test_trim_strips_leading_and_trailing_silence(speech_8k):
    padded = np.concatenate([np.zeros(8000), speech_8k[8000:24000], np.zeros(4000)]).astype(np.float32)
    trimmed = trim_silence(padded)
    assert len(trimmed) < len(padded) - 10000 and np.abs(trimmed[:500]).max() > 1e-3


@pytest.mark.parametrize("codec", ["mulaw", "alaw", "gsm", "amr-nb"])
def test_codecs_round_trip_keep_speech(codec, speech_8k):
    x = speech_8k[:16000] * 0.5
    y = apply_codec(x, codec, np.random.default_rng(0))
    assert y.shape == x.shape and not np.allclose(x, y)
    # lossy but close: the decoded speech still correlates strongly with the input
    lag = int(np.argmax(np.correlate(y[2000:6000], x[2000:6000], "full"))) - 3999
    xs = np.roll(x, lag)
    corr = np.corrcoef(xs[1000:-1000], y[1000:-1000])[0, 1]
    assert corr > (0.99 if codec in ("mulaw", "alaw") else 0.3)  # CELP codecs keep the spectrum, not the waveform
    level_db = 10 * np.log10(np.mean(y**2) / np.mean(x**2))
    assert abs(level_db) < 6.0


def test_g711_is_8_bit():
    x = np.linspace(-1, 1, 10001).astype(np.float32)
    for law in ("mulaw", "alaw"):
        assert len(np.unique(g711(x, law))) <= 256


def test_simulator_is_seeded_and_normalises_level(speech_8k):
    utts = [speech_8k[:16000], speech_8k[16000:40000] * 0.01]  # very different source levels
    a, meta_a = simulate_call(utts, np.random.default_rng(5), SimConfig(codec="mulaw"))
    b, meta_b = simulate_call(utts, np.random.default_rng(5), SimConfig(codec="mulaw"))
    np.testing.assert_array_equal(a, b)
    assert meta_a == meta_b and meta_a["codec"] == "mulaw"
    c, _ = simulate_call(utts, np.random.default_rng(6))
    assert len(c) != len(a) or not np.array_equal(a, c)
    assert np.abs(a).max() <= 1.0


def test_eer_and_rates():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    assert eer(np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9]), labels)[0] == 0.0
    assert eer(np.array([0.1, 0.2, 0.3, 0.7, 0.6, 0.7, 0.8, 0.9]), labels)[0] == pytest.approx(0.25)
    r = rates_at(np.array([0.1, 0.2, 0.3, 0.7, 0.6, 0.7, 0.8, 0.9]), labels, 0.65)
    assert r == {"accuracy": 0.75, "human_false_alarm": 0.25, "robot_detection": 0.75}
    humans = np.arange(100) / 100.0
    t = threshold_for_false_alarm(humans, 0.01)
    assert np.mean(humans >= t) <= 0.01 and np.mean(humans >= t - 0.011) > 0.01


def test_speed_perturbation_scales_pitch_and_length():
    t = np.arange(8000) / 8000
    tone = np.sin(2 * np.pi * 200 * t).astype(np.float32)
    fast = change_speed(tone, 1.1)
    assert abs(len(fast) - 8000 / 1.1) < 2
    spec = np.abs(np.fft.rfft(fast * np.hanning(len(fast))))
    assert abs(np.argmax(spec) * 8000 / len(fast) - 220) < 2  # 200 Hz played 1.1x faster
    rng = np.random.default_rng(3)
    _, meta = simulate_call([tone], rng, SimConfig(p_speed=1.0, p_clean=1.0, codec="none"))
    assert 0.9 <= meta["speed"] <= 1.1
    _, meta = simulate_call([tone], np.random.default_rng(3), SimConfig(codec="none"))
    assert "speed" not in meta  # off by default: dev calls are never perturbed
