"""The file-backed path for long recordings gives exactly the in-memory path's results."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr
from conftest import SAMPLES
from test_scan import rows

from robodetect import longaudio
from robodetect.batch import scan
from robodetect.store import ResultStore


@pytest.fixture
def calls(tmp_path):
    """A 16 kHz mono call and an 8 kHz two-party (stereo) call, ~20 s each."""
    a = sf.read(SAMPLES / "robot_en_piper.wav", dtype="float32")[0]
    b = sf.read(SAMPLES / "human_en_speechocean.wav", dtype="float32")[0]
    mono = np.concatenate([a, np.zeros(8000, np.float32), b])
    sf.write(tmp_path / "mono16k.wav", soxr.resample(mono, 8000, 16000), 16000, subtype="PCM_16")
    n = min(len(a), len(b))
    sf.write(tmp_path / "stereo.flac", np.stack([a[:n], b[:n]], 1), 8000, subtype="PCM_16")
    return [tmp_path / "mono16k.wav", tmp_path / "stereo.flac"]


def _same(r1, r2) -> None:
    d1, d2 = r1.to_dict(), r2.to_dict()
    assert d1 == d2


@pytest.mark.parametrize("channel", ["auto", "each", "mix"])
def test_score_file_long_path_equals_in_memory(detector, calls, monkeypatch, channel):
    expected = [detector.score_file(p, channel=channel) for p in calls]
    assert not longaudio.is_long(calls[0])
    monkeypatch.setattr(longaudio, "LONG_SECONDS", 1.0)
    assert longaudio.is_long(calls[0])
    got = [detector.score_file(p, channel=channel) for p in calls]
    for e, g in zip(expected, got):
        for a, b in zip(e if isinstance(e, list) else [e], g if isinstance(g, list) else [g]):
            _same(a, b)


def test_scan_long_path_equals_in_memory(detector, calls, tmp_path, monkeypatch):
    with ResultStore(tmp_path / "a.db") as store:
        scan([str(p) for p in calls], store, detector, workers=1)
    monkeypatch.setattr(longaudio, "LONG_SECONDS", 1.0)
    with ResultStore(tmp_path / "b.db") as store:
        scan([str(p) for p in calls], store, detector, workers=1)
    drop = ("scored_at",)
    a = [{k: v for k, v in r.items() if k not in drop} for r in rows(tmp_path / "a.db")]
    b = [{k: v for k, v in r.items() if k not in drop} for r in rows(tmp_path / "b.db")]
    assert a == b and len(a) >= 2


def test_a_2s_hop_model_scans_as_it_scores(hop2_detector, detector, calls, tmp_path, monkeypatch):
    """The scan's workers, the in-memory and the file-backed paths cut a model's windows at the hop
    its JSON gives (2 s here: fewer windows than the 1 s plan) and agree with score_file."""
    ref = [hop2_detector.score_file(p, channel="mix") for p in calls]
    one_s = [len(detector.score_file(p, channel="mix").windows) for p in calls]
    assert all(len(r.windows) < n for r, n in zip(ref, one_s))
    for long_path in (False, True):
        if long_path:
            monkeypatch.setattr(longaudio, "LONG_SECONDS", 1.0)
        with ResultStore(tmp_path / f"{long_path}.db") as store:
            scan([str(p) for p in calls], store, hop2_detector, workers=1, channel="mix")
        got = {r["path"]: r for r in rows(tmp_path / f"{long_path}.db")}
        for p, r in zip(calls, ref):
            assert got[str(p)]["robot_probability"] == pytest.approx(r.robot_probability, abs=1e-5)
            _same(r, hop2_detector.score_file(p, channel="mix"))


def test_call_times_match_speech_to_call_time():
    from robodetect.features import speech_to_call_time
    from robodetect.vad import Segment

    segs = [Segment(0.3, 1.2), Segment(2.0, 2.6), Segment(5.0, 9.03)]
    offsets = np.array([0, 100, 7199, 7200, 7201, 12000, 40000, 80000])
    for end in (False, True):
        want = [speech_to_call_time(segs, int(o), end=end) for o in offsets]
        assert longaudio.call_times(segs, offsets, end=end) == want


def test_signal_file_round_trip(tmp_path):
    x = np.random.default_rng(0).standard_normal(100_003).astype(np.float32)
    with longaudio.SignalFile.create(str(tmp_path)) as f:
        f.append(x[:50_000])
        f.append(x[50_000:])
        assert len(f) == len(x) and np.array_equal(f[10:90_000], x[10:90_000])
        assert np.array_equal(np.concatenate(list(f.blocks(7777))), x)
    assert list(tmp_path.iterdir()) == []
