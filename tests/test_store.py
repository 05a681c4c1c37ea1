"""The scan result store: replace semantics, export round trip (csv/jsonl/parquet), summary."""

from __future__ import annotations

import csv
import json
import math
import sqlite3

import pytest

from robodetect.cli import main
from robodetect.store import FileMeta, ResultStore, error_reason, export_results, iter_rows, summarize


@pytest.fixture(scope="module")
def results(detector, speech_8k):
    """Two real results (speech and silence) from the seeded test detector."""
    import numpy as np

    return detector.score(speech_8k, 8000), detector.score(np.zeros(3 * 8000, np.float32), 8000)


@pytest.fixture
def db(tmp_path, results):
    speech, silence = results
    path = tmp_path / "r.db"
    with ResultStore(path) as store:
        for i in range(3):
            meta = FileMeta(size=1000 + i, mtime=1.5e9 + i, content_hash=f"h{i}", sample_rate=8000)
            store.write_file(f"/calls/c{i}.wav", "mix", "v1", meta, [speech], None)
        store.write_file("/calls/quiet.wav", "mix", "v1", FileMeta(10, 1.0, "hq", 8000), [silence], None)
        for name in ("bad1.wav", "bad2.wav"):
            reason = f"/calls/{name}: cannot decode audio (Error opening '/calls/{name}': Format not recognised.)"
            store.write_file(f"/calls/{name}", "mix", "v1", FileMeta(5, 1.0, "hb"), [], reason)
        store.write_file("/calls/gone.wav", "mix", "v1", FileMeta(), [], "/calls/gone.wav: cannot read (No such file)")
    return path


def test_write_replaces_rows_of_a_file(tmp_path, results):
    speech, _ = results
    path = tmp_path / "r.db"
    with ResultStore(path) as store:
        store.write_file("/a.wav", "mix", "v1", FileMeta(1, 1.0, "h1", 8000), [], "/a.wav: cannot read (x)")
        store.write_file("/a.wav", "mix", "v1", FileMeta(1, 1.0, "h1", 8000), [speech], None)
        assert store.scored_hash("/a.wav", "mix", "v1") == "h1"
        assert store.scored_hash("/a.wav", "mix", "v2") is None
        store.write_file("/a.wav", "mix", "v1", FileMeta(1, 1.0, "h2", 8000), [speech], None)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*), min(content_hash) FROM calls").fetchone() == (1, "h2")
    assert conn.execute("SELECT count(*) FROM windows").fetchone()[0] == len(speech.windows)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_uncommitted_rows_are_not_visible(tmp_path, results):
    path = tmp_path / "r.db"
    store = ResultStore(path)
    store.write_file("/a.wav", "mix", "v1", FileMeta(1, 1.0, "h1", 8000), [results[0]], None)
    reader = sqlite3.connect(path)
    assert reader.execute("SELECT count(*) FROM calls").fetchone()[0] == 0
    store.commit()
    assert reader.execute("SELECT count(*) FROM calls").fetchone()[0] == 1
    store.close()


def _same(a, b) -> bool:
    if a is None or b is None or a == "":
        return (a in (None, "")) and (b in (None, ""))
    if isinstance(b, float) or isinstance(a, float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return str(a) == str(b)


def test_export_round_trip(db, tmp_path, results):
    stored = list(iter_rows(sqlite3.connect(db), windows=True))
    assert len(stored) == 7

    n = export_results(db, "jsonl", tmp_path / "r.jsonl")
    back = [json.loads(line) for line in open(tmp_path / "r.jsonl")]
    assert n == 7 and back == [{**r, "campaign": None} for r in stored]  # no campaign in this store
    speech = next(r for r in back if r["path"] == "/calls/c0.wav")
    assert speech["timing"] == pytest.approx(results[0].timing)
    assert [w["robot_probability"] for w in speech["windows"]] == [w.robot_probability for w in results[0].windows]

    assert export_results(db, "csv", tmp_path / "r.csv") == 7
    flat = list(csv.DictReader(open(tmp_path / "r.csv")))
    assert len(flat) == 7
    for row, ref in zip(flat, stored, strict=True):
        for k in ("path", "channel", "label", "robot_probability", "duration_seconds", "size", "error", "content_hash"):
            assert _same(row[k], ref[k]), (k, row[k], ref[k])
        for k, v in (ref["timing"] or {}).items():
            assert _same(row[f"timing_{k}"], v), k

    pq = pytest.importorskip("pyarrow.parquet")
    assert export_results(db, "parquet", tmp_path / "r.parquet") == 7
    table = pq.read_table(tmp_path / "r.parquet").to_pylist()
    for row, ref in zip(table, stored, strict=True):
        for k in ("path", "label", "robot_probability", "size", "mtime", "error"):
            assert _same(row[k], ref[k]), k
        assert row["windows"] == ref["windows"]


def test_export_cli_and_errors(db, tmp_path, capsys):
    # (the documented `export DB --format csv OUT` order needs parse_intermixed_args in cli.main)
    assert main(["export", str(db), str(tmp_path / "o.csv"), "--format", "csv"]) == 0
    assert "wrote 7 rows" in capsys.readouterr().out
    assert main(["export", "--format", "jsonl", str(tmp_path / "nope.db"), str(tmp_path / "o.jsonl")]) == 1
    (tmp_path / "junk.db").write_text("not sqlite")
    assert main(["export", "--format", "jsonl", str(tmp_path / "junk.db"), str(tmp_path / "o.jsonl")]) == 1


def test_summary(db, capsys):
    s = summarize(db, top=2)
    counts = s["counts"]["v1"]
    assert list(s["counts"]) == ["v1"] and sum(counts.values()) == 7
    scored = sum(counts.get(k, 0) for k in ("robot", "human", "uncertain"))
    assert counts["error"] == 3 and counts["no_speech"] == 1 and scored == 3
    assert len(s["most_robotic"]) == 2
    assert s["errors"][0] == {
        "reason": "cannot decode audio (Error opening '<file>': Format not recognised.)",
        "count": 2,
        "example": "/calls/bad1.wav",
    }
    assert s["errors"][1]["reason"] == "cannot read (No such file)"
    assert main(["summary", str(db), "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "model v1: 7 calls" in out and "3 error" in out and "most robotic 3" in out
    assert "2  cannot decode audio" in out


def test_error_reason():
    assert error_reason("/x/a.wav", "/x/a.wav: file not found") == "file not found"
    assert error_reason("/x/a.wav", "other: text") == "other: text"
