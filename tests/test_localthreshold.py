"""robodetect calibrate: a threshold fitted on an archive's own known humans, with a bound."""

import json

import numpy as np
import pytest
from conftest import SAMPLES

from robodetect.cli import main
from robodetect.localthreshold import certified_threshold, false_alarm_upper_bound, fit


def test_upper_bound_is_clopper_pearson():
    for n in (1, 10, 299, 1000):  # none flagged: 1 - (1 - confidence)^(1/n), the "rule of three"
        assert false_alarm_upper_bound(0, n) == pytest.approx(1 - 0.05 ** (1 / n), rel=1e-9)
    assert false_alarm_upper_bound(0, 299) <= 0.01 < false_alarm_upper_bound(0, 298)
    assert false_alarm_upper_bound(5, 10) > 0.5 + 0.2  # two-thirds of the way to 1 at n = 10
    assert false_alarm_upper_bound(3, 3) == 1.0 and false_alarm_upper_bound(0, 0) == 1.0


def test_certified_threshold_flags_as_many_as_the_bound_allows():
    humans = np.random.default_rng(0).uniform(0.5, 1.0, 2000)
    t = certified_threshold(humans, 0.01)
    k = int((humans >= t).sum())
    assert false_alarm_upper_bound(k, 2000) <= 0.01 < false_alarm_upper_bound(k + 1, 2000)
    assert (humans >= np.nextafter(t, 0)).sum() == k + 1 or t == 0.5  # the lowest such threshold
    assert certified_threshold(humans[:100], 0.01) is None  # 100 humans cannot show 1 %
    ties = np.concatenate([np.full(30, 0.99), np.linspace(0.5, 0.9, 2000)])  # a tie across the allowed count
    t = certified_threshold(ties, 0.01)
    assert false_alarm_upper_bound(int((ties >= t).sum()), len(ties)) <= 0.01


def test_fit_reports_each_operating_point():
    humans = np.r_[np.full(98, 0.1), 0.95, 0.99]
    r = fit(humans, 0.9, robots=np.array([0.2, 0.96, 0.999]), others=np.array([0.0, 0.97, 1.0, 0.5]))
    assert r.model.humans_flagged == 2 and r.model.robots_caught == pytest.approx(2 / 3)
    assert 0.95 < r.point.threshold <= 0.99 and r.point.humans_flagged == 1  # 1 % of 100
    assert r.point.others_flagged == pytest.approx(0.5) and r.point.robots_caught == pytest.approx(2 / 3)
    assert r.certified.threshold is None  # 100 humans
    with pytest.raises(ValueError):
        fit(np.zeros(0), 0.9)


@pytest.fixture(scope="module")
def store(tmp_path_factory, model_stem):
    db = tmp_path_factory.mktemp("cal") / "r.db"
    assert main(["scan", str(SAMPLES), "--out", str(db), "--model", str(model_stem)]) == 0
    return db


def test_cli_fits_on_the_listed_humans(store, capsys):
    humans = sorted(str(p) for p in SAMPLES.glob("human_*.wav"))
    robots = sorted(str(p) for p in SAMPLES.glob("robot_*.wav"))
    capsys.readouterr()
    assert main(["calibrate", str(store), "--humans", *humans, "/no/such.wav", "--robots", *robots, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["humans"], out["robots"], out["others"]) == (len(humans), len(robots), 0)
    assert out["missing"] == ["/no/such.wav"]
    assert out["certified"]["threshold"] is None and out["point"]["humans_flagged"] == 0
    import sqlite3

    (stored,) = sqlite3.connect(store).execute("SELECT DISTINCT threshold FROM calls").fetchone()
    assert out["model"]["threshold"] == pytest.approx(stored)  # the scan's own threshold
    assert main(["calibrate", str(store), "--humans", str(SAMPLES)]) == 0  # a folder: every file is a "human"
    assert "9 known-human call(s)" in capsys.readouterr().out


def test_cli_failures_are_one_line(store, tmp_path, capsys):
    assert main(["calibrate", str(tmp_path / "none.db"), "--humans", str(SAMPLES)]) == 1
    assert main(["calibrate", str(store), "--humans", str(tmp_path / "x.wav")]) == 1
    err = capsys.readouterr().err
    assert "none.db" in err and "none of the 1 known-human" in err
    assert err.count("\n") == 2


def test_a_store_of_two_models_needs_a_version(store, tmp_path, capsys):
    import shutil

    db = tmp_path / "two.db"
    shutil.copy(store, db)
    assert main(["scan", str(SAMPLES), "--out", str(db), "--model", "robodetect-v6"]) == 0
    human = str(SAMPLES / "human_en_librispeech.wav")
    capsys.readouterr()
    assert main(["calibrate", str(db), "--humans", human]) == 1
    assert "--model-version" in capsys.readouterr().err
    version = next(v for v in json.loads(_versions(db)) if v.startswith("robodetect-v6"))
    assert main(["calibrate", str(db), "--humans", human, "--model-version", version, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["others"] == 8
    assert main(["calibrate", str(db), "--humans", human, "--model-version", "nope"]) == 1


def _versions(db) -> str:
    import sqlite3

    return json.dumps([v for (v,) in sqlite3.connect(db).execute("SELECT DISTINCT model_version FROM calls")])
