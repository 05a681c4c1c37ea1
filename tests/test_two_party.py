"""Two-party calls (one party per channel) under the default ``--channel auto``: a verdict per party
and one for the call, the same in score_file, the CLI, scan and the store. Uses the shipped model
and the shipped samples (a piper robot and a speechocean762 human), so it runs on a clean clone."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import robodetect
from robodetect.cli import main
from robodetect.detector import call_verdict
from robodetect.store import summarize

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def _sample(name: str) -> np.ndarray:
    x, sr = sf.read(SAMPLES / f"{name}.wav", dtype="float32")
    assert sr == 8000
    return x


@pytest.fixture(scope="module")
def calls(tmp_path_factory) -> dict[str, Path]:
    """robot_left.wav (robot caller left, human callee right), robot_right.wav (the reverse),
    humans.wav (human on both sides) and mono.wav (the robot alone)."""
    root = tmp_path_factory.mktemp("two_party")
    robot, human = _sample("robot_en_piper"), _sample("human_en_speechocean")
    n = max(len(robot), len(human))
    robot, human = np.pad(robot, (0, n - len(robot))), np.pad(human, (0, n - len(human)))
    out = {}
    for name, pair in {
        "robot_left": (robot, human),
        "robot_right": (human, robot),
        "humans": (human, human[::-1].copy()),
    }.items():
        out[name] = root / f"{name}.wav"
        sf.write(out[name], np.stack(pair, 1), 8000, subtype="PCM_16")
    out["mono"] = root / "mono.wav"
    sf.write(out["mono"], robot, 8000, subtype="PCM_16")
    return out


@pytest.fixture(scope="module")
def shipped():
    return robodetect.load()


@pytest.mark.parametrize("name,party", [("robot_left", "left"), ("robot_right", "right")])
def test_default_calls_robot_and_names_party(calls, shipped, name, party):
    r = shipped.score_file(calls[name])  # default options
    assert r.label == "robot" and r.channel == "call" and r.party == party
    labels = {p.channel: p.label for p in r.parties}
    assert labels == {party: "robot", ("right" if party == "left" else "left"): "human"}
    assert r.robot_probability == max(p.robot_probability for p in r.parties)
    assert r.cues[0].startswith(f"{party} channel decides the call")


def test_mono_is_one_verdict(calls, shipped):
    r = shipped.score_file(calls["mono"])
    assert r.channel == "mix" and r.parties == [] and r.party is None and r.label == "robot"


def test_call_verdict_rule(calls, shipped):
    humans = shipped.score_file(calls["humans"])
    assert humans.label == "human" and humans.party in ("left", "right") and len(humans.parties) == 2
    each = shipped.score_file(calls["robot_left"], channel="each")
    assert [p.channel for p in each] == ["left", "right"]
    silent = [
        robodetect.Result("no_speech", None, 0.5, 0.0, 3.0, ch, [], {}, [], "v", reason="silence")
        for ch in ("left", "right")
    ]
    quiet = call_verdict(silent)
    assert quiet.label == "no_speech" and quiet.party is None and quiet.reason == "no speech on any channel"
    uncertain = [
        robodetect.Result("human", 0.2, 0.5, 3.0, 3.0, "left", [], {}, [], "v"),
        robodetect.Result("uncertain", 0.45, 0.5, 3.0, 3.0, "right", [], {}, [], "v"),
    ]
    assert call_verdict(uncertain).label == "uncertain" and call_verdict(uncertain).party == "right"


def test_cli_json_carries_parties(calls, capsys):
    assert main(["score", "--json", str(calls["robot_right"]), str(calls["mono"])]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["label"] for r in rows] == ["robot", "robot"]
    assert rows[0]["party"] == "right" and [p["channel"] for p in rows[0]["parties"]] == ["left", "right"]
    assert rows[1]["parties"] == [] and rows[1]["channel"] == "mix"


def test_scan_store_and_summary(calls, tmp_path, capsys):
    db = tmp_path / "r.db"
    paths = [str(calls[k]) for k in ("robot_left", "robot_right", "humans", "mono")]
    assert main(["scan", *paths, "--out", str(db), "--workers", "1", "--quiet"]) == 0
    conn = sqlite3.connect(db)
    got = {
        (Path(p).stem, ch): (role, party, label)
        for p, ch, role, party, label in conn.execute("SELECT path, channel, role, party, label FROM calls")
    }
    conn.close()
    assert got[("robot_left", "call")] == ("call", "left", "robot")
    assert got[("robot_left", "left")] == ("party", None, "robot")
    assert got[("robot_left", "right")] == ("party", None, "human")
    assert got[("robot_right", "call")] == ("call", "right", "robot")
    assert got[("mono", "mix")] == ("call", None, "robot")
    assert len(got) == 3 * 3 + 1
    s = summarize(db)
    (counts,) = s["counts"].values()
    assert counts == {"robot": 3, "human": 1}  # calls, not channels
    assert s["two_party"] == {"calls": 3, "robot": 2, "robot_party": {"left": 1, "right": 1}}
    assert main(["summary", str(db)]) == 0
    assert "two-party calls: 3, 2 with a robot (1 on the left channel, 1 on the right channel)" in (
        capsys.readouterr().out
    )


def test_store_from_schema_v1_is_upgraded(tmp_path):
    from robodetect import store

    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    v1 = store.SCHEMA.replace("    role TEXT NOT NULL DEFAULT 'call',\n    party TEXT,\n", "")
    assert "role" not in v1
    conn.executescript(v1)
    conn.execute("PRAGMA user_version=1")  # as every schema-1 store was written
    conn.execute(
        "INSERT INTO calls (path, channel_mode, channel, model_version, label, robot_probability, duration_seconds, "
        "scored_at) VALUES ('a.wav', 'mix', 'mix', 'v1', 'robot', 0.9, 3.0, 0)"
    )
    conn.commit()
    conn.close()
    assert summarize(db)["counts"] == {"v1": {"robot": 1}}  # read-only: the old layout still reads
    assert store.export_results(db, "csv", tmp_path / "old.csv") == 1  # and exports, new columns empty
    with open(tmp_path / "old.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    assert (row["role"], row["fingerprinted"], row["robot_probability"]) == ("call", "", "0.9")
    store.ResultStore(db).close()  # a writer adds the new columns
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT role, party, fingerprinted FROM calls").fetchall() == [("call", None, None)]
    conn.close()
