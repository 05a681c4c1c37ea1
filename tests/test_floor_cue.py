"""scripts/floor_cue.py and the weighted EER it reads: the floor depth, the matching weights, and
whether a model that scores the floor loses its edge once the floor is balanced."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import floor_cue  # noqa: E402

from robodetect.metrics import eer  # noqa: E402


def _eer_by_definition(s, y):
    """The EER as first written (a loop over thresholds): the vectorised one must agree bit for bit."""
    pos, neg = s[y == 1], s[y == 0]
    th = np.unique(np.concatenate([s, [np.inf]]))
    frr = np.array([(pos < t).mean() for t in th])
    far = np.array([(neg >= t).mean() for t in th])
    i = int(np.argmin(np.abs(frr - far)))
    return float((frr[i] + far[i]) / 2), float(th[i])


def test_eer_unweighted_is_the_definition_and_a_weight_is_a_repeat():
    rng = np.random.default_rng(0)
    for n in (2, 7, 50, 301):
        s = np.round(rng.standard_normal(n), 1)  # with ties
        y = rng.integers(0, 2, n)
        y[:2] = [0, 1]
        assert eer(s, y) == _eer_by_definition(s, y)
        w = rng.integers(0, 4, n).astype(float)
        w[:2] = 1.0
        rep = np.repeat(np.arange(n), w.astype(int))
        assert eer(s, y, w)[0] == pytest.approx(eer(s[rep], y[rep])[0], abs=1e-12)
    with pytest.raises(ValueError):
        eer(np.array([0.1, 0.9]), np.array([0, 1]), np.array([1.0, -1.0]))
    with pytest.raises(ValueError):
        eer(np.array([0.1, 0.9]), np.array([0, 1]), np.array([0.0, 1.0]))  # no human weight left


def test_floor_depth_reads_quiet_gaps_inside_a_window():
    rng = np.random.default_rng(1)
    steady = (3000 * rng.standard_normal((1, 16000))).astype(np.int16)
    gappy = steady.copy()
    for k in range(0, 16000, 3200):  # a 20 % share of near-silent stretches
        gappy[0, k : k + 640] //= 300
    d = floor_cue.window_floor_depth(np.r_[steady, gappy])
    assert abs(d[0]) < 1.0 and d[1] < -40.0
    per_call = floor_cue.call_floor_depth(np.r_[steady, gappy, gappy], np.array([7, 9, 9]), [9, 7, 8])
    assert per_call[0] == pytest.approx(d[1]) and per_call[1] == pytest.approx(d[0]) and np.isnan(per_call[2])


def test_weights_give_the_humans_the_robots_distribution():
    rng = np.random.default_rng(2)
    y = np.r_[np.ones(500, int), np.zeros(700, int)]
    stat = np.r_[rng.normal(-25, 5, 500), rng.normal(-18, 5, 700)]
    w, bins = floor_cue.match_weights(stat, y)
    b = np.searchsorted([x["high"] for x in bins], stat, side="left")
    for k in range(len(bins)):
        robots = np.mean(b[y == 1] == k)
        humans = w[(y == 0) & (b == k)].sum() / w[y == 0].sum()
        assert humans == pytest.approx(robots, abs=1e-9)
    assert np.all(w[y == 1] == 1.0)
    with pytest.raises(ValueError, match="no human"):
        floor_cue.match_weights(np.r_[stat[:500], np.full(700, 100.0)], y)


def test_a_model_that_scores_the_floor_loses_its_edge_once_the_floor_is_balanced():
    rng = np.random.default_rng(3)
    n = 1000
    y = np.r_[np.ones(n, int), np.zeros(n, int)]
    clusters = np.r_[np.arange(n) // 5, 10000 + np.arange(n) // 5]
    depth = np.r_[rng.normal(-24, 5, n), rng.normal(-18, 5, n)]  # robots' floors deeper
    floor_reader = -depth + rng.normal(0, 1, 2 * n)
    honest = 1.0 * y + rng.standard_normal(2 * n)  # weaker than the floor, but blind to it
    r = floor_cue.analyse(np.c_[floor_reader, honest], depth, y, clusters, 1)
    reader, fair = r["models"]
    assert reader["eer"] < 0.33 and reader["eer_reweighted"] > 0.42  # its edge was the floor
    assert abs(fair["eer_reweighted"] - fair["eer"]) < 0.03  # a score blind to the floor keeps its EER
    assert r["floor_alone"][0] < 0.33 and r["floor_direction"] == "deeper floor = robot"
    assert r["as_is"]["a_minus_b"][0] < 0 < r["reweighted"]["a_minus_b"][0]
    assert reader["spearman_humans"] < -0.8 and abs(fair["spearman_humans"]) < 0.2


def test_refuses_without_dev_calls(tmp_path, capsys):
    assert floor_cue.main(["--models", "robodetect-v11", "robodetect-v11", "--calls-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("floor_cue: ") and "no dev calls" in err and len(err.splitlines()) == 1
    assert floor_cue.main(["--models", "robodetect-v11"]) == 1
    assert "--models takes" in capsys.readouterr().err
