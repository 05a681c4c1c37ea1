import numpy as np
import pytest

import robodetect
from robodetect import AudioError
from robodetect.model import DEFAULT_MODEL


def test_score_result_fields(detector, speech_8k):
    r = detector.score(speech_8k, 8000)
    assert 0.0 <= r.robot_probability <= 1.0
    p, lo, hi = r.robot_probability, r.uncertain_low, r.uncertain_high
    assert lo <= r.threshold <= hi
    assert r.label == ("robot" if p >= hi else "human" if p < lo else "uncertain")
    assert 2.0 < r.speech_seconds <= r.duration_seconds == pytest.approx(len(speech_8k) / 8000, abs=0.01)
    assert r.model_version == "test-random" and r.channel == "mix"
    assert len(r.windows) >= 3
    for w in r.windows:
        assert 0.0 <= w.start_seconds < w.end_seconds <= r.duration_seconds + 1e-6
        assert 0.0 <= w.robot_probability <= 1.0
    for key in ("speech_ratio", "pause_mean_seconds", "syllable_rate", "pitch_std_semitones", "noise_floor_dbfs"):
        assert key in r.timing
    d = r.to_dict()
    assert d["windows"][0]["start_seconds"] == r.windows[0].start_seconds


def test_call_probability_is_calibrated_mean_of_window_logits(detector, speech_8k):
    from robodetect.detector import analyze

    a = analyze(speech_8k)
    logits, _ = detector.window_logits(a.windows)
    r = detector.score(speech_8k, 8000)
    assert r.robot_probability == pytest.approx(detector.probability(logits.mean()), abs=1e-6)
    assert [w.robot_probability for w in r.windows] == pytest.approx(list(detector.probability(logits)), abs=1e-5)


def test_file_array_and_rate_paths_agree(detector, speech_8k, write_wav):
    path = write_wav("s.wav", speech_8k, 8000, "FLOAT")
    a = detector.score_file(path)
    b = detector.score(speech_8k, 8000)
    assert a.robot_probability == pytest.approx(b.robot_probability, abs=1e-6) and a.path == str(path)
    # the same speech delivered at 16 kHz scores nearly the same after downsampling
    import soxr

    up = soxr.resample(speech_8k, 8000, 16000)
    c = detector.score(up, 16000)
    assert c.sample_rate == 16000 and abs(c.robot_probability - b.robot_probability) < 0.1


def test_each_channel(detector, speech_8k):
    stereo = np.stack([speech_8k, np.zeros_like(speech_8k)])
    results = detector.score(stereo, 8000, channel="each")
    assert [r.channel for r in results] == ["left", "right"]
    assert results[0].label != "no_speech" and results[1].label == "no_speech"


def test_silence_and_too_little_speech_are_no_speech(detector, speech_8k):
    r = detector.score(np.zeros(8000 * 5, np.float32), 8000)
    assert r.label == "no_speech" and r.robot_probability is None and r.windows == [] and "no speech" in r.reason
    blip = np.concatenate([np.zeros(8000), speech_8k[8000:10400], np.zeros(8000)])
    r = detector.score(blip, 8000)
    assert r.label == "no_speech" and r.reason


def test_threshold_override(model_stem, speech_8k):
    lo = robodetect.load(model_stem, threshold=0.0).score(speech_8k, 8000)
    hi = robodetect.load(model_stem, threshold=1.0).score(speech_8k, 8000)
    assert lo.label == "robot" and hi.label == "human" and lo.robot_probability == hi.robot_probability


def test_unreadable_file_raises(detector, tmp_path):
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(AudioError, match="bad.mp3"):
        detector.score_file(bad)


def test_default_load_is_offline_and_works(speech_8k):
    det = robodetect.load()
    r = det.score(speech_8k, 8000)
    assert r.model_version.startswith(DEFAULT_MODEL) and r.label in ("robot", "human", "uncertain")
