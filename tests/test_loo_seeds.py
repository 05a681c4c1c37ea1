import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import loo_seeds  # noqa: E402

FAMS = ("a", "b")


def _write(tmp_path, name, eers):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"_source": "test", **{g: {"eer": e, "epochs": 3} for g, e in eers.items()}}))
    return path


def test_spread_and_paired_differences(tmp_path):
    files = [
        _write(tmp_path, "x-seed0", {"a": 0.10, "b": 0.30}),
        _write(tmp_path, "x-seed1", {"a": 0.20, "b": 0.40}),
        _write(tmp_path, "y-seed0", {"a": 0.10, "b": 0.10}),
        _write(tmp_path, "y-seed2", {"a": 0.50, "b": 0.50}),  # no partner seed in x
    ]
    s = loo_seeds.summarise(loo_seeds.load_runs(files), FAMS)
    x = s["recipes"]["x"]
    assert x["seeds"] == [0, 1]
    assert x["families"]["a"]["mean"] == pytest.approx(0.15)
    assert x["families"]["a"]["sd"] == pytest.approx(0.0707107, abs=1e-6)
    assert x["mean"]["mean"] == pytest.approx(0.25)  # seed means 0.2 and 0.3
    assert x["worst"]["max"] == pytest.approx(0.40)
    pair = s["pairs"]["x - y"]
    assert pair["per_seed"] == {0: pytest.approx(0.10)}  # only the seed both ran
    assert pair["n"] == 1


def test_a_run_missing_a_family_has_no_mean(tmp_path):
    files = [_write(tmp_path, "x-seed0", {"a": 0.1}), _write(tmp_path, "x-seed1", {"a": 0.3, "b": 0.5})]
    s = loo_seeds.summarise(loo_seeds.load_runs(files), FAMS)
    assert s["recipes"]["x"]["mean"]["n"] == 1 and s["recipes"]["x"]["mean"]["mean"] == pytest.approx(0.4)
    assert s["recipes"]["x"]["families"]["a"]["n"] == 2


def test_cli_rejects_badly_named_files(tmp_path, capsys):
    bad = _write(tmp_path, "no_seed_here", {"a": 0.1})
    assert loo_seeds.main([str(bad)]) == 2
    assert "no_seed_here" in capsys.readouterr().err


def test_cli_prints_every_recipe(tmp_path, capsys):
    files = [_write(tmp_path, "x-seed0", {"a": 0.1, "b": 0.2}), _write(tmp_path, "y-seed0", {"a": 0.3, "b": 0.4})]
    assert loo_seeds.main([str(f) for f in files] + ["--families", "a", "b", "--json", str(tmp_path / "s.json")]) == 0
    out = capsys.readouterr().out
    assert "x (seeds 0)" in out and "y (seeds 0)" in out and "x - y" in out and "-20.0" in out
    assert json.loads((tmp_path / "s.json").read_text())["pairs"]["x - y"]["mean"] == pytest.approx(-0.2)


def test_recipe_flags_ignore_seed_results_and_groups(tmp_path):
    path = tmp_path / "x-seed1.json"
    argv = [
        "--no-main",
        "--loo",
        "--head",
        "cosine",
        "--seed",
        "1",
        "--results",
        "/r",
        "--loo-groups",
        "a",
        "b",
        "--pool",
        "avg",
    ]
    path.write_text(json.dumps({"_run": {"argv": argv, "seed": 1}, "a": {"eer": 0.1}}))
    assert loo_seeds.recipe_flags(path) == ("--no-main", "--loo", "--head", "cosine", "--pool", "avg")
    other = tmp_path / "x-seed2.json"
    other.write_text(json.dumps({"_run": {"argv": argv[:2] + argv[4:], "seed": 2}, "a": {"eer": 0.2}}))
    assert loo_seeds.recipe_flags(other) != loo_seeds.recipe_flags(path)
    assert loo_seeds.load_runs([path, other])["x"] == {1: {"a": 0.1}, 2: {"a": 0.2}}  # _run is not a group


def test_ensemble_averages_each_calls_member_scores():
    import loo_ensemble

    members = [[{1: 1.0, 2: -1.0}, {7: 3.0}], [{1: 3.0, 2: 1.0}, {7: -1.0}]]  # 2 members x 2 call sets
    assert loo_ensemble.ensemble_scores(members) == [{1: 2.0, 2: 0.0}, {7: 1.0}]


def test_worst_family_follows_the_measure(tmp_path):
    files = [_write(tmp_path, "x-seed0", {"a": 0.1, "b": 0.6})]
    runs = loo_seeds.load_runs(files)
    assert loo_seeds.summarise(runs, FAMS)["recipes"]["x"]["worst"]["mean"] == pytest.approx(0.6)
    assert loo_seeds.summarise(runs, FAMS, worst=min)["recipes"]["x"]["worst"]["mean"] == pytest.approx(0.1)


def test_a_one_member_cross_scoring_reads_as_that_members_run(tmp_path):
    """scripts/loo_ensemble.py with one member: the member's row, its flags without --members/--json."""
    row = {"members": [{"eer": 0.25, "flagged_at_threshold": 0.1}], "ensemble": {"eer": 0.99}}
    argv = ["--members", "/m/s1", "--json", "/o.json", "--pool", "avg", "--seed", "1", "--loo-groups", "a"]
    path = tmp_path / "x-seed1.json"
    path.write_text(json.dumps({"_run": {"argv": argv, "seed": 1}, "a": row}))
    assert loo_seeds.load_runs([path])["x"] == {1: {"a": 0.25}}  # the member, not the "ensemble" row
    assert loo_seeds.recipe_flags(path) == ("--pool", "avg")
    two = tmp_path / "y-seed1.json"
    two.write_text(json.dumps({"a": {"members": [{"eer": 0.2}, {"eer": 0.3}], "ensemble": {"eer": 0.25}}}))
    with pytest.raises(ValueError, match="2 members"):
        loo_seeds.load_runs([two])
    assert loo_seeds.main([str(two)]) == 2


def test_option_order_does_not_make_another_recipe():
    a = ("--vad", "new", "--ns-augment", "0.5", "--pool", "avg")
    b = ("--ns-augment", "0.5", "--pool", "avg", "--vad", "new")
    assert loo_seeds.option_set(a) == loo_seeds.option_set(b)
    assert loo_seeds.option_set(a) != loo_seeds.option_set(("--vad", "new", "--ns-augment", "0.3", "--pool", "avg"))


def test_worst_flagged_group_is_the_fewest_caught_family_or_the_most_flagged_human_source(tmp_path, capsys):
    assert loo_seeds.worst_of("eer", ("festvox", "librispeech")) is max
    assert loo_seeds.worst_of("flagged_at_threshold", ("festvox", "zs-tts")) is min  # robots caught
    assert loo_seeds.worst_of("flagged_at_threshold", ("fsdd", "librispeech")) is max  # humans flagged
    assert loo_seeds.worst_of("flagged_at_threshold", ("festvox", "librispeech")) is None  # no meaning
    path = tmp_path / "x-seed0.json"
    path.write_text(
        json.dumps({g: {"eer": 0.2, "flagged_at_threshold": v} for g, v in (("fsdd", 0.01), ("librispeech", 0.4))})
    )
    assert loo_seeds.main([str(path), "--families", "fsdd", "librispeech", "--measure", "flagged_at_threshold"]) == 0
    worst = [line for line in capsys.readouterr().out.splitlines() if line.startswith("worst of 2")]
    assert len(worst) == 1 and "40.0" in worst[0]
    path.write_text(
        json.dumps(
            {"festvox": {"eer": 0.2, "flagged_at_threshold": 0.3}, "fsdd": {"eer": 0.1, "flagged_at_threshold": 0.05}}
        )
    )
    assert loo_seeds.main([str(path), "--families", "festvox", "fsdd", "--measure", "flagged_at_threshold"]) == 0
    assert "worst of" not in capsys.readouterr().out
