"""The scoring contract (robodetect.scoring): window plan, aggregation, calibration, uncertain band,
and the same numbers from every path that scores the first N seconds of a call."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import REPO

from robodetect import scoring
from robodetect.detector import analyze
from robodetect.export import WindowScorer
from robodetect.features import HOP_SAMPLES, MIN_SPEECH_SAMPLES, WINDOW_SAMPLES
from robodetect.model import ModelConfig, RobotNet, load_model, save_model
from robodetect.stream import StreamingDetector

SR = 8000


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Single-window forwards, as the stream runs them: one torch thread."""


def test_window_plan():
    assert scoring.window_spans(MIN_SPEECH_SAMPLES - 1) == []
    assert scoring.window_spans(WINDOW_SAMPLES - 5) == [(0, WINDOW_SAMPLES - 5)]  # tiled
    assert scoring.window_starts(5 * SR) == [0, 8000, 16000, 24000]
    assert scoring.extra_span(5 * SR) is None and scoring.extra_span(WINDOW_SAMPLES) is None
    # a 0.6 s tail after the last regular window gets an end-aligned window; 0.4 s does not
    n = int(5.6 * SR)
    assert scoring.window_spans(n)[-1] == (n - WINDOW_SAMPLES, n) == scoring.extra_span(n)
    assert scoring.window_spans(int(5.4 * SR)) == scoring.window_spans(5 * SR)
    for n in range(0, 12 * SR, 997):  # the regular windows are those ending at or before n
        spans = scoring.window_spans(n)
        regular = [(a, b) for a, b in spans if a % HOP_SAMPLES == 0 and b - a == WINDOW_SAMPLES]
        assert regular == [(a, a + WINDOW_SAMPLES) for a in range(0, n - WINDOW_SAMPLES + 1, HOP_SAMPLES)]
        assert spans == regular + ([scoring.extra_span(n)] if scoring.extra_span(n) else [])
        following = scoring.next_regular_end(n)  # the next regular window ends after n, on the grid
        assert following > n and scoring.window_spans(following)[len(regular)] == (
            following - WINDOW_SAMPLES,
            following,
        )
    short = np.arange(6000, dtype=np.float32)
    w = scoring.cut_windows(short, [(0, 6000)])
    assert w.shape == (1, WINDOW_SAMPLES) and w[0, 6000] == 0 and w[0, 6001] == 1  # tiled


def test_prefix_plans_keep_the_tail_of_a_short_call():
    """A 3.5 s call asked for its first 8 s is the whole call: its end-aligned tail window counts
    (evaluate.py's prefix rows used to drop it)."""
    n = int(3.5 * SR)
    spans, plans = scoring.prefix_plans(n, [1 * SR, 3 * SR, 8 * SR, int(0.4 * SR)])
    assert [[spans[i] for i in p] for p in plans] == [
        scoring.window_spans(SR),
        scoring.window_spans(3 * SR),
        scoring.window_spans(n),
        [],
    ]
    assert (n - WINDOW_SAMPLES, n) in [spans[i] for i in plans[2]]
    assert len(spans) == len(set(spans))  # shared windows are scored once


def test_calibration_and_aggregation():
    raw = np.array([-3.0, 0.5, 2.0])
    p = scoring.probability(raw, scale=0.5, bias=0.2)
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-(0.5 * raw + 0.2))), rtol=1e-12)
    assert scoring.call_logit(raw) == pytest.approx(-0.5 / 3)
    assert scoring.sigmoid(-800.0) == 0.0 and scoring.sigmoid(800.0) == 1.0  # no overflow warnings
    t = torch.tensor(raw)
    assert torch.allclose(scoring.calibrated_logit(t, scale=0.5, bias=0.2), torch.tensor(0.5 * raw + 0.2))


def test_uncertain_band():
    d = scoring.Decision.make(0.871268)  # robodetect-v2's threshold, band from the default
    assert (round(d.uncertain_low, 3), round(d.uncertain_high, 3)) == (0.713, 0.948)
    assert [d.label(p) for p in (None, 0.2, 0.714, 0.87, 0.9, 0.949, 0.99)] == [
        "no_speech",
        "human",
        "uncertain",
        "uncertain",
        "uncertain",
        "robot",
        "robot",
    ]
    assert d.forced(0.9) == "robot" and d.forced(0.87) == "human"
    plain = scoring.Decision.make(0.6, uncertain=False)
    assert [plain.label(p) for p in (0.59, 0.6)] == ["human", "robot"]
    # the threshold always lies inside the band
    assert scoring.Decision(0.5, 0.6, 0.7).uncertain_low == 0.5
    with pytest.raises(ValueError):
        scoring.Decision(1.5, 0.6, 0.7)


def test_band_from_model_json(tmp_path, speech_8k):
    import robodetect

    torch.manual_seed(0)
    config = ModelConfig(version="band", threshold=0.5, uncertain_low=0.0, uncertain_high=1.0)
    stem = tmp_path / "band"
    save_model(RobotNet(config), stem)
    assert load_model(stem).config.uncertain_high == 1.0
    r = robodetect.load(stem).score(speech_8k, SR)
    assert r.label == "uncertain" and (r.uncertain_low, r.uncertain_high) == (0.0, 1.0)
    assert r.to_dict()["label"] == "uncertain"
    r = robodetect.load(stem, uncertain=False).score(speech_8k, SR)
    assert r.label == ("robot" if r.robot_probability >= 0.5 else "human")
    # a threshold given by the caller gets the default band around it, not the JSON's
    d = robodetect.load(stem, threshold=0.9).decision
    assert (d.threshold, (d.uncertain_low, d.uncertain_high)) == (0.9, scoring.default_band(0.9))
    assert robodetect.load(stem).uncertain_band == (0.0, 1.0)


def _short_call(speech_8k) -> tuple[np.ndarray, int]:
    """About 3.6 s of speech whose plan has an end-aligned tail window."""
    x = speech_8k[: int(4.3 * SR)]
    x = np.round(x * 32768).clip(-32768, 32767) / 32768  # exactly representable as int16 / 32768
    n = int(round(analyze(x).speech_seconds * SR))
    assert 3 * SR < n < 4 * SR and scoring.extra_span(n) is not None
    return x.astype(np.float32), n


@pytest.mark.parametrize("hop", [1, 2])
def test_every_path_scores_prefixes_alike(detector, hop2_detector, hop, speech_8k, monkeypatch):
    """The first N s of a call: accuracy_vs_seconds (detector), the stream's checkpoints, the
    export graph and evaluate.py's prefix rows (train.truncated_call_scores) use the same windows
    and give the same probability; for the shipped models' 1 s hop and for a model with a 2 s hop."""
    import importlib.util

    from robodetect import train

    spec = importlib.util.spec_from_file_location("acc", REPO / "scripts" / "accuracy_vs_seconds.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    detector = detector if hop == 1 else hop2_detector
    assert detector.hop_samples == hop * SR

    x, n = _short_call(speech_8k)
    seconds = [1.0, 2.0, 3.0, 8.0] if hop == 1 else [1.0, 2.0, 8.0]
    expected, _ = script.prefix_probabilities(detector, x, seconds)
    assert expected[-1] == pytest.approx(detector.score(x, SR).robot_probability, abs=2e-6)

    # stream: checkpoints every hop of speech; 8 s is past the end -> the final score
    stream = StreamingDetector(detector, min_speech_seconds=1.0, speech_budget_seconds=30)
    updates = [stream.push(x[i : i + 800]) for i in range(0, len(x), 800)]
    seen = {u.probability_speech_seconds: u.robot_probability for u in updates}
    assert sorted(s for s in seen if s is not None) == seconds[:-1]
    got = [seen[s] for s in seconds[:-1]] + [stream.finish().robot_probability]
    assert got == pytest.approx(expected, abs=1e-6)

    # export graph over the prefix plans
    a = analyze(x)  # the 1 s plan (the dataset's)
    speech = train._speech_of(a.windows, n)
    spans, plans = scoring.prefix_plans(n, [int(s * SR) for s in seconds], hop * SR)
    windows = scoring.cut_windows(speech, spans)
    with torch.inference_mode():
        _, logit = WindowScorer(detector.model)(torch.from_numpy(windows))
    got = [float(scoring.sigmoid(scoring.call_logit(logit.numpy()[p]))) for p in plans]
    assert got == pytest.approx(expected, abs=1e-5)

    # evaluate.py's prefix rows: the same windows (int16 store), the same numbers up to the
    # float16 feature cache training uses
    data = train.CallData(
        (a.windows * 32768).astype(np.int16), np.zeros(len(a.windows), np.int32), [{"call_id": 0, "speech_samples": n}]
    )
    cut = []
    real_call_scores = train.call_scores
    monkeypatch.setattr(train, "call_scores", lambda m, d: (cut.append(d.windows), real_call_scores(m, d))[1])
    for s, p, plan in zip(seconds, expected, plans):
        logit = train.truncated_call_scores(detector.model, data, s)[0]
        np.testing.assert_array_equal(cut[-1].astype(np.float32) / 32768, windows[plan])
        assert float(detector.probability(logit)) == pytest.approx(p, abs=2e-3)


def test_cli_prints_uncertain(tmp_path, speech_8k, write_wav, capsys):
    import json

    from robodetect.cli import main

    torch.manual_seed(0)
    stem = tmp_path / "band"
    save_model(RobotNet(ModelConfig(version="band", threshold=0.5, uncertain_low=0.0, uncertain_high=1.0)), stem)
    wav = write_wav("s.wav", speech_8k, SR)
    assert main(["score", "--model", str(stem), str(wav)]) == 0
    assert "UNCERTAIN  robot probability" in capsys.readouterr().out
    assert main(["score", "--json", "--model", str(stem), str(wav)]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["label"] == "uncertain" and (row["uncertain_low"], row["uncertain_high"]) == (0.0, 1.0)
    assert main(["score", "--no-uncertain", "--model", str(stem), str(wav)]) == 0
    assert "UNCERTAIN" not in capsys.readouterr().out


def test_window_plan_at_another_hop():
    hop = 2 * SR
    assert scoring.window_starts(6 * SR, hop) == [0, 16000, 32000]
    n = int(6.6 * SR)  # regular windows end at 2, 4, 6 s; 0.6 s left: an end-aligned tail
    assert scoring.window_spans(n, hop) == [(0, 16000), (16000, 32000), (32000, 48000), (n - WINDOW_SAMPLES, n)]
    assert scoring.window_spans(int(7.4 * SR), hop)[-1] == (int(7.4 * SR) - WINDOW_SAMPLES, int(7.4 * SR))
    assert scoring.next_regular_end(int(4.5 * SR), hop) == 6 * SR
    for bad in (0, -8000, WINDOW_SAMPLES + 1, 1.5):
        with pytest.raises(ValueError):
            scoring.window_spans(5 * SR, bad)


def test_a_model_json_with_an_impossible_hop_is_refused(tmp_path):
    import json

    from robodetect.config import ModelError

    stem = tmp_path / "m"
    save_model(RobotNet(ModelConfig(version="m")), stem)
    cfg = json.loads(stem.with_suffix(".json").read_text())
    for hop in (0.0, 2.5, 1.00001):
        cfg["frontend"]["hop_seconds"] = hop
        stem.with_suffix(".json").write_text(json.dumps(cfg))
        with pytest.raises(ModelError, match="hop_seconds"):
            load_model(stem)


@pytest.mark.parametrize("seconds", [2.3, 3.05, 3.3, 4.2, 4.45, 5.0, 6.3])
def test_datasets_replan_to_any_hop_exactly(speech_8k, seconds):
    """Simulated datasets store the 1 s plan's windows (+ the window ending at the last speech
    sample where they stop short of it); re-cut at a 2 s hop they are the windows the detector of a
    2 s-hop model cuts from the same call."""
    from robodetect import train
    from robodetect.detector import analyze_speech

    x = np.concatenate([np.zeros(2000, np.float32), speech_8k[: int(seconds * SR)], np.zeros(4000, np.float32)])
    windows, speech_s, _, cover = train._windows_int16(x)
    n = int(round(speech_s * SR))
    data = train.CallData(windows, np.zeros(len(windows), np.int32), [{"call_id": 0, "speech_samples": n}])
    if cover is not None:
        data.covers[0] = cover
    for hop in (2 * SR, 3 * SR // 2, SR // 2):
        _, speech, spans = analyze_speech(x, hop=hop)
        want = train._int16(scoring.cut_windows(speech, spans))
        np.testing.assert_array_equal(data.replan(hop).windows, want)
    assert data.replan(SR) is data
