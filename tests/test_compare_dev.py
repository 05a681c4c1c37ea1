"""scripts/compare_dev.py: the paired EER difference of two models on the same calls."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import compare_dev  # noqa: E402


def _calls(n_clusters=20, per=10, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(2 * n_clusters) % 2, per)
    clusters = np.repeat(np.arange(2 * n_clusters), per)
    return rng, labels, clusters


def test_the_same_scores_differ_by_nothing():
    rng, y, cl = _calls()
    s = rng.standard_normal(len(y)) + 1.0 * y
    r = compare_dev.paired_eer(s, s, y, cl)
    assert r["a_minus_b"] == (0.0, 0.0, 0.0)
    assert r["a"] == r["b"] and r["a"][1] < r["a"][0] < r["a"][2]


def test_a_better_model_has_a_difference_below_zero_and_a_tie_holds_zero():
    rng, y, cl = _calls()
    good = rng.standard_normal(len(y)) + 3.0 * y
    weak = rng.standard_normal(len(y)) + 0.5 * y
    value, low, high = compare_dev.paired_eer(good, weak, y, cl)["a_minus_b"]
    assert value < 0 and high < 0
    # two draws of equally good models: the interval holds 0
    other = rng.standard_normal(len(y)) + 3.0 * y
    value, low, high = compare_dev.paired_eer(good, other, y, cl)["a_minus_b"]
    assert low < 0 < high


def test_refuses_without_dev_calls(tmp_path, capsys):
    assert compare_dev.main(["--models", "robodetect-v11", "robodetect-v11", "--calls-dir", str(tmp_path)]) == 1
    assert "no dev calls" in capsys.readouterr().err


def test_an_unknown_model_is_one_line(capsys):
    assert compare_dev.main(["--models", "no-such-model", "robodetect-v11"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("compare_dev: ") and "no-such-model" in err and len(err.splitlines()) == 1
