"""scripts/compare_dev.py: the paired EER difference of two models on the same calls."""

import sys
from pathlib import Path

import numpy as np
import pytest

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


def test_means_over_seeds_pair_every_model_on_the_same_calls():
    rng, y, cl = _calls(n_clusters=12, per=5)
    a0, a1 = (rng.standard_normal(len(y)) + 2.0 * y for _ in range(2))
    b0, b1 = (rng.standard_normal(len(y)) + 0.5 * y for _ in range(2))
    r = compare_dev.paired_means(np.c_[a0, a1], np.c_[b0, b1], y, cl)
    one = [compare_dev.eer(s, y)[0] for s in (a0, a1, b0, b1)]
    assert abs(r["a"][0] - (one[0] + one[1]) / 2) < 1e-12 and abs(r["b"][0] - (one[2] + one[3]) / 2) < 1e-12
    value, low, high = r["a_minus_b"]
    assert abs(value - (r["a"][0] - r["b"][0])) < 1e-12 and high < 0  # the better recipe, over both seeds
    # one model per side is the two-model comparison, as the bootstrap of EER(A) - EER(B) gives it
    direct = compare_dev.bootstrap_ci(
        lambda s, yy: compare_dev.eer(s[:, 0], yy)[0] - compare_dev.eer(s[:, 1], yy)[0], np.c_[a0, b0], y, cl
    )
    assert compare_dev.paired_means(np.c_[a0], np.c_[b0], y, cl)["a_minus_b"] == direct
    # the same two models on both sides differ by nothing in every replicate
    assert compare_dev.paired_means(np.c_[a0, a1], np.c_[a0, a1], y, cl)["a_minus_b"] == (0.0, 0.0, 0.0)
    # swapping a model across sides changes the means: the sides are not pooled
    assert compare_dev.paired_means(np.c_[a0, b1], np.c_[b0, a1], y, cl)["a_minus_b"][0] != value


def test_align_keeps_the_calls_every_model_scored_in_the_first_models_order():
    pick, dropped = compare_dev.align([[3, 1, 2, 5], [1, 2, 3], [2, 3, 1, 9]])
    assert [list(p) for p in pick] == [[0, 1, 2], [2, 0, 1], [1, 2, 0]]  # calls 3, 1, 2 in each model's rows
    assert dropped == [1, 0, 1]
    pick, dropped = compare_dev.align([[1, 2], [1, 2]])
    assert [list(p) for p in pick] == [[0, 1], [0, 1]] and dropped == [0, 0]


def test_sides_are_two_models_or_split_at_vs(capsys):
    assert compare_dev.split_sides(["a", "b"]) == (["a"], ["b"])
    assert compare_dev.split_sides(["a0", "a1", "vs", "b0"]) == (["a0", "a1"], ["b0"])
    for bad in (["a", "b", "c"], ["vs", "b"], ["a", "vs"], ["a", "vs", "b", "vs", "c"], ["a"]):
        assert compare_dev.split_sides(bad) is None
    assert compare_dev.main(["--models", "a", "b", "c"]) == 1
    err = capsys.readouterr().err
    assert "A1 A2 ... vs B1 B2" in err and len(err.splitlines()) == 1


def test_by_group_finds_the_family_a_difference_comes_from():
    rng = np.random.default_rng(4)
    y = np.r_[np.ones(300, int), np.zeros(300, int)]
    cl = np.r_[np.arange(300) // 5, 1000 + np.arange(300) // 5]
    groups = np.r_[np.repeat(["famA", "famB", "famC"], 100), np.repeat(["src1", "src2"], 150)]
    base = rng.standard_normal(600) + 2.0 * y
    worse = base.copy()
    worse[groups == "famB"] -= 2.0  # the second model misses family B only
    rows = {(label, g): r for label, g, r in compare_dev.by_group(np.c_[base, worse], y, cl, groups, 1)}
    assert [k[0] for k in rows] == ["robot"] * 3 + ["human"] * 2
    assert rows[("robot", "famB")]["a_minus_b"][2] < 0  # the first is better on B, the interval says so
    assert rows[("robot", "famA")]["a_minus_b"] == (0.0, 0.0, 0.0)  # identical scores elsewhere
    assert rows[("robot", "famB")]["n"] == 100 and rows[("human", "src1")]["n"] == 150
    assert rows[("human", "src1")]["a_minus_b"][0] < 0  # every robot is in a human source's row


def test_caught_at_a_false_alarm_reads_the_low_end_of_the_roc():
    y = np.r_[np.ones(100, int), np.zeros(100, int)]
    humans = np.arange(100.0)  # 0 .. 99
    robots = np.r_[np.full(60, 99.5), np.full(40, 50.0)]  # 60 above every human, 40 in their middle
    s = np.r_[robots, humans]
    measure, label = compare_dev.parse_measure("caught@0.01")
    assert measure(s, y) == 0.6 and "1 % humans flagged" in label
    assert compare_dev.parse_measure("caught@0.5")[0](s, y) == 1.0  # half the humans flagged: all robots
    assert compare_dev.parse_measure("eer")[0](s, y) == compare_dev.eer(s, y)[0]
    for bad in ("caught@0", "caught@1.5", "auc"):
        with pytest.raises(ValueError):
            compare_dev.parse_measure(bad)
    # the paired machinery takes it: a model that separates only at the top beats one that does not
    worse = np.r_[np.full(100, 50.0), humans]
    r = compare_dev.paired_means(np.c_[s], np.c_[worse], y, np.arange(200), measure)
    assert r["a"][0] == 0.6 and r["b"][0] == 0.0 and r["a_minus_b"][1] > 0


def test_a_bad_measure_is_one_line(capsys):
    for bad in ("caught@2", "caught@x"):
        assert compare_dev.main(["--models", "a", "b", "--measure", bad]) == 1
        err = capsys.readouterr().err
        assert err.startswith("compare_dev: --measure") and len(err.splitlines()) == 1


def test_keep_selects_a_channel_mix_per_class():
    rows = [
        {"label": "human", "ns": [-30.0, 2.0]},
        {"label": "human"},
        {"label": "robot", "ns": [-40.0, 1.5]},
        {"label": "robot", "mp3": 0.5},
    ]
    keeps = [compare_dev.parse_keep("human:ns=yes"), compare_dev.parse_keep("robot:ns=no")]
    assert [all(k(c) for k in keeps) for c in rows] == [True, False, False, True]
    assert [compare_dev.parse_keep("robot:mp3=yes")(c) for c in rows] == [True, True, False, True]
    # the simulator records a stage only where it applied it: an MP3 quality rounded to 0.0 is an MP3 call
    assert compare_dev.parse_keep("robot:mp3=yes")({"label": "robot", "mp3": 0.0})
    for bad in ("human", "human:ns", "caller:ns=yes", "human:ns=maybe", "human:=yes"):
        with pytest.raises(ValueError):
            compare_dev.parse_keep(bad)


def test_mixes_print_every_call_and_both_one_class_mixes(capsys):
    """A model that reads the suppressor as "robot" looks fine on every call, fails where the stage
    marks the humans and shines where it marks the robots; a model blind to it does not move."""
    from types import SimpleNamespace

    rng = np.random.default_rng(5)
    n = 200
    rows = []
    for i in range(2 * n):
        row = {"call_id": i, "label": "robot" if i < n else "human", "group": "g"}
        if i % 2:
            row["ns"] = [-40.0, 2.0]
        rows.append(row)
    y = np.array([r["label"] == "robot" for r in rows], int)
    ns = np.array(["ns" in r for r in rows])
    blind = 1.5 * y + rng.standard_normal(2 * n)
    reader = blind + 3.0 * ns  # suppression pushes toward robot
    scored = [SimpleNamespace(rows=rows, y=y, cluster=np.arange(2 * n) // 4, mean=m) for m in (reader, blind)]
    pick = [np.arange(2 * n)] * 2
    args = SimpleNamespace(measure=["eer"], by_group=False)
    measures = [compare_dev.parse_measure("eer")]
    eers = []
    for _title, texts in compare_dev.mix_selections("ns", []):
        assert (
            compare_dev.report([["reader"], ["blind"]], scored, pick, rows, Path("dev.npz"), "", texts, args, measures)
            == 0
        )
        out = capsys.readouterr().out
        line = next(x for x in out.splitlines() if x.startswith("| paired cluster bootstrap"))
        eers.append([float(c.split("[")[0]) for c in line.split("|")[2:4]])
        if texts:
            assert f"calls kept: {', '.join(texts)} (200 left out)" in out
    (r_all, b_all), (r_h, b_h), (r_r, b_r) = eers
    assert r_h > 45 and r_r < 3  # the reader: chance or worse where the stage marks humans, near perfect where robots
    assert max(b_all, b_h, b_r) - min(b_all, b_h, b_r) < 8  # the blind model keeps its EER in every mix
    assert compare_dev.mix_selections(None, ["robot:mp3=yes"]) == [(None, ["robot:mp3=yes"])]


def test_mixes_and_keep_together_is_one_line(capsys):
    assert compare_dev.main(["--models", "a", "b", "--mixes", "ns", "--keep", "human:ns=yes"]) == 1
    err = capsys.readouterr().err
    assert "--mixes and --keep" in err and len(err.splitlines()) == 1
