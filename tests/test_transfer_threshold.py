import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import transfer_threshold as tt  # noqa: E402

from robodetect.config import ModelConfig  # noqa: E402
from robodetect.metrics import robot_threshold  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SCALE, BIAS = 2.0, -1.0  # raw scores are not calibrated logits
LOW, HIGH = 0.7, 0.95


def _logit(p):
    return math.log(p / (1 - p))


#: the fold models' calibration humans (raw scores) and the threshold calibrate() gives them
CAL_HUMANS = (np.array([_logit(0.9), 0.0, -1.0]) - BIAS) / SCALE
THRESHOLD = robot_threshold(1 / (1 + np.exp(-(SCALE * CAL_HUMANS + BIAS))))


def _fold(folder, group, label, excess_at_threshold, other_label_calls=5):
    """A leave-out model's files: its JSON and the raw scores of its held-out calls, plus calls of
    the other class that must be ignored."""
    scale, bias = SCALE, BIAS
    cal_logit = _logit(THRESHOLD) + np.asarray(excess_at_threshold, float)
    raw = (cal_logit - bias) / scale
    (folder / f"loo-{group}.json").write_text(
        json.dumps(
            {
                "calib_scale": scale,
                "calib_bias": bias,
                "threshold": THRESHOLD,
                "uncertain_low": LOW,
                "uncertain_high": HIGH,
            }
        )
    )
    n_other = other_label_calls
    np.savez(
        folder / f"loo-{group}.scores.npz",
        held_score=np.concatenate([raw, np.full(n_other, 100.0)]),
        held_label=np.array([label] * len(raw) + [1 - label] * n_other),
        held_group=np.array([group] * len(raw) + ["dev-other"] * n_other),
        held_lang=np.array(["en"] * (len(raw) + n_other)),
        cal_score=np.concatenate([CAL_HUMANS, [5.0]]),
        cal_label=np.array([0, 0, 0, 1]),
        cal_group=np.array(["x", "x", "x", "y"]),
    )


@pytest.fixture
def folds(tmp_path):
    _fold(tmp_path, "a", 0, np.arange(100) / 10)  # excess 0.0 .. 9.9
    _fold(tmp_path, "b", 0, np.full(10, -5.0))  # far below its own threshold
    _fold(tmp_path, "fam", 1, np.array([-1.0, 0.5, 9.75, 12.0]))
    return tmp_path


def test_margin_weighs_each_human_source_the_same(folds):
    loaded = {f.group: f for f in tt.load_folds(folds)}
    assert loaded["a"].label == 0 and loaded["fam"].label == 1 and len(loaded["a"].logits) == 100
    result = tt.cross_fit(list(loaded.values()))
    # a carries half the weight over 100 calls (0.5 % each): 1 % flags its top two (9.9, 9.8);
    # pooled by calls (110) it would flag only one and the margin would sit above 9.8
    m = result["0.01"]["margin_logit"]
    assert 9.7 < m < 9.7 + 1e-9
    # the band edges: each level measured from its own in-sample point (5 %: a's top ten; 0.5 %: its top one)
    assert result["0.05"]["margin_logit"] == pytest.approx(_logit(THRESHOLD) + 8.9 - _logit(LOW))
    assert result["0.005"]["margin_logit"] == pytest.approx(_logit(THRESHOLD) + 9.8 - _logit(HIGH))
    fam = result["0.01"]["robots"]["fam"]
    assert fam["caught_at_margin"] == pytest.approx(0.5)  # 9.75 and 12.0
    assert fam["caught_in_sample_point"] == pytest.approx(0.75)


def test_nested_false_alarms_use_the_other_sources_only(folds):
    result = tt.cross_fit(tt.load_folds(folds))
    humans = result["0.01"]["humans"]
    # b alone: 1 % of 10 calls is none, the margin is clipped to 0 (never lowered): all of a flagged
    assert humans["a"]["margin_without"] == 0.0
    assert humans["a"]["flagged_out_of_sample"] == pytest.approx(1.0)
    # a alone: one call of 100 may be flagged: margin just above 9.8; none of b reaches it
    assert 9.8 < humans["b"]["margin_without"] < 9.8 + 1e-9
    assert humans["b"]["flagged_out_of_sample"] == 0.0
    assert result["0.01"]["humans_flagged_out_of_sample_mean"] == pytest.approx(0.5)


def test_transferred_threshold_raises_the_in_sample_points(folds):
    result = tt.cross_fit(tt.load_folds(folds))
    new = tt.transferred({"threshold": 0.8, "uncertain_low": 0.6, "uncertain_high": 0.85}, result)
    assert _logit(new["threshold"]) == pytest.approx(_logit(0.8) + result["0.01"]["margin_logit"], abs=1e-6)
    assert new["uncertain_low"] <= new["threshold"] <= new["uncertain_high"]


def test_cli_writes_a_loadable_model_json_and_rebuilds_its_engine(folds, tmp_path, capsys):
    models = tmp_path / "models"
    models.mkdir()
    for suffix in (".json", ".safetensors"):
        shutil.copy(REPO / "robodetect" / "models" / f"robodetect-v6{suffix}", models / f"v6{suffix}")
    src, out = models / "v6.json", models / "v6.json"
    before = json.loads(src.read_text())
    assert tt.main([str(folds), "--model", str(src), "--write", str(out), "--json", str(tmp_path / "t.json")]) == 0
    cfg = ModelConfig.from_json(out)
    assert _logit(cfg.threshold) == pytest.approx(_logit(before["threshold"]) + 9.7, abs=1e-6)
    assert cfg.metrics["threshold_transfer"]["in_sample"]["threshold"] == before["threshold"]
    assert "rebuilt the ONNX engine graph" in capsys.readouterr().out
    pytest.importorskip("onnxruntime")
    from robodetect.onnxengine import OnnxDetector

    assert OnnxDetector(models / "v6").decision.threshold == pytest.approx(cfg.threshold)  # not refused as stale
    # a second run starts again from the in-sample values, not from the raised ones
    assert tt.main([str(folds), "--model", str(out), "--write", str(out)]) == 0
    assert ModelConfig.from_json(out).threshold == pytest.approx(cfg.threshold)


def test_scores_must_belong_to_their_model(folds, capsys):
    cfg = json.loads((folds / "loo-a.json").read_text())
    (folds / "loo-a.json").write_text(json.dumps({**cfg, "threshold": 0.8}))  # another run's model
    assert tt.main([str(folds)]) == 2
    assert "loo-a" in capsys.readouterr().err
    (folds / "loo-a.json").write_text(json.dumps(cfg))
    (folds / "loo-b.scores.npz").unlink()  # a model saved before the scores were kept
    assert tt.main([str(folds)]) == 2
    assert "['b']" in capsys.readouterr().err


def test_cli_reports_a_folder_without_folds(tmp_path, capsys):
    assert tt.main([str(tmp_path)]) == 2
    assert str(tmp_path) in capsys.readouterr().err


def test_weighted_threshold_matches_the_unweighted_one_and_weighs():
    from robodetect.metrics import threshold_for_false_alarm, weighted_threshold_for_false_alarm

    rng = np.random.default_rng(0)
    for n in (1, 7, 100, 401):
        s = rng.normal(size=n)
        s[: n // 3] = np.round(s[: n // 3], 1)  # ties
        for level in (0.0, 0.01, 0.05, 0.5):
            assert weighted_threshold_for_false_alarm(s, np.ones(n), level) == threshold_for_false_alarm(s, level)
    # one heavy call may not be flagged even if it is the only one above
    s, w = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.02 * 2.02])
    assert weighted_threshold_for_false_alarm(s, w, 0.01) > 2.0
    assert 1.0 < weighted_threshold_for_false_alarm(s, w, 0.05) <= 2.0
    with pytest.raises(ValueError):
        weighted_threshold_for_false_alarm(s, np.zeros(3), 0.01)


def test_runs_of_several_seeds_pool_and_leave_a_source_out_of_all(tmp_path):
    one, two = tmp_path / "s0", tmp_path / "s1"
    one.mkdir(), two.mkdir()
    _fold(one, "a", 0, np.arange(100) / 10)
    _fold(one, "b", 0, np.full(10, -5.0))
    _fold(two, "a", 0, np.full(50, 20.0))  # seed 1's model flags every call of a far above its point
    result = tt.cross_fit(tt.load_folds(one) + tt.load_folds(two))
    assert result["human_sources"] == ["a", "b"] and result["folds"] == 3
    # b, left out, is judged by a margin fitted on both runs of a (never on b itself)
    nested = result["0.01"]["humans"]
    assert nested["b"]["margin_without"] > 19.9  # seed 1's a: half of a's weight, all at 20
    assert nested["a"]["flagged_out_of_sample"] == pytest.approx((1.0 + 1.0) / 2)  # b alone: margin 0
