"""Store misuse: foreign files untouched, concurrent writers, I/O errors, failed rescans, odd paths."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLES

from robodetect.cli import main
from robodetect.store import (
    APPLICATION_ID,
    FileMeta,
    ResultStore,
    StoreError,
    export_results,
    summarize,
)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def result(detector, speech_8k):
    return detector.score(speech_8k, 8000)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _foreign(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE contacts (name TEXT, phone TEXT)")
    conn.execute("INSERT INTO contacts VALUES ('Ada', '555-0100')")
    conn.execute("PRAGMA user_version=42")
    conn.commit()
    conn.close()
    return path


def test_foreign_sqlite_file_is_refused_and_untouched(tmp_path, model_stem, capsys):
    db = _foreign(tmp_path / "contacts.db")
    before = _digest(db)
    with pytest.raises(StoreError, match="not a robodetect result store"):
        ResultStore(db)
    code = main(["scan", str(SAMPLES / "robot_en_piper.wav"), "--out", str(db), "--model", str(model_stem)])
    err = capsys.readouterr().err
    assert code == 1 and "refusing to modify it" in err and len(err.strip().splitlines()) == 2  # banner + error
    assert _digest(db) == before and not Path(f"{db}-wal").exists()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 42
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


@pytest.mark.parametrize("content", [b"just some text\n", b"SQLite format 3\x00" + b"\x07" * 200])
def test_non_database_file_is_refused_and_untouched(tmp_path, content):
    path = tmp_path / "notes.db"
    path.write_bytes(content)
    with pytest.raises(StoreError):
        ResultStore(path)
    with pytest.raises(StoreError):
        summarize(path)
    assert path.read_bytes() == content


def test_new_store_carries_the_application_id(tmp_path):
    ResultStore(tmp_path / "r.db").close()
    conn = sqlite3.connect(tmp_path / "r.db")
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID


def test_store_from_a_newer_robodetect_is_refused(tmp_path):
    ResultStore(tmp_path / "r.db").close()
    conn = sqlite3.connect(tmp_path / "r.db")
    conn.execute("PRAGMA user_version=99")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        ResultStore(tmp_path / "r.db")


def test_two_writers_share_a_store(tmp_path, result):
    """The second writer waits for the first one's write group instead of failing with 'locked'."""
    db = tmp_path / "r.db"
    a = ResultStore(db)
    a.write_file("/a.wav", "mix", "v1", FileMeta(1, 1.0, "ha", 8000), [result], None)  # a holds the write lock
    done = threading.Event()

    def write_b() -> None:
        b = ResultStore(db)
        b.write_file("/b.wav", "mix", "v1", FileMeta(1, 1.0, "hb", 8000), [result], None)
        b.close()
        done.set()

    t = threading.Thread(target=write_b)
    t.start()
    assert not done.wait(0.5)  # b waits...
    a.commit()
    t.join(10)
    assert done.is_set()  # ...and goes on once a's group is committed
    a.close()
    paths = {r[0] for r in sqlite3.connect(db).execute("SELECT path FROM calls")}
    assert paths == {"/a.wav", "/b.wav"}


def test_two_concurrent_scans_into_one_store(tmp_path, model_stem):
    db = tmp_path / "r.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    groups = [sorted(SAMPLES.glob("human_*.wav")), sorted(SAMPLES.glob("robot_*.wav"))]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "robodetect", "scan", *map(str, g), "--out", str(db), "--model", str(model_stem)]
            + ["--workers", "1", "--device", "cpu", "--quiet", "--commit-seconds", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for g in groups
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    got = [r[0] for r in sqlite3.connect(db).execute("SELECT path FROM calls")]
    assert sorted(got) == sorted(str(p) for g in groups for p in g)


def test_disk_full_ends_the_scan_with_one_line_and_an_intact_store(tmp_path, model_stem, monkeypatch, capsys):
    """A full disk (injected: sqlite3 raises 'database or disk is full' on the third file)."""
    from robodetect import store as store_mod

    real = store_mod.ResultStore._insert
    calls = {"n": 0}

    def insert(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise sqlite3.OperationalError("database or disk is full")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(store_mod.ResultStore, "_insert", insert)
    db = tmp_path / "r.db"
    files = sorted(map(str, SAMPLES.glob("*.wav")))
    args = ["scan", *files, "--out", str(db), "--model", str(model_stem), "--workers", "1", "--quiet"]
    assert main([*args, "--commit-seconds", "0"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("database or disk is full") == 1
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM calls").fetchone()[0] == 2  # the committed files
    conn.close()
    monkeypatch.setattr(store_mod.ResultStore, "_insert", real)
    assert main(args) == 0  # space again: the rerun finishes the job
    assert sqlite3.connect(db).execute("SELECT count(*) FROM calls").fetchone()[0] == len(files)


def test_error_on_rescan_never_replaces_a_good_row(tmp_path, result):
    db = tmp_path / "r.db"
    with ResultStore(db) as store:
        assert store.write_file("/a.wav", "mix", "v1", FileMeta(1, 1.0, "h1", 8000), [result], None)
        assert not store.write_file("/a.wav", "mix", "v1", FileMeta(), [], "/a.wav: cannot read (Input/output error)")
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT label, robot_probability FROM calls").fetchall() == [
        (result.label, result.robot_probability)
    ]
    assert conn.execute("SELECT error FROM failed_retries").fetchall() == [
        ("/a.wav: cannot read (Input/output error)",)
    ]
    assert conn.execute("SELECT count(*) FROM windows").fetchone()[0] == len(result.windows)
    assert summarize(db)["failed_retries"] == 1


def test_a_file_is_never_half_written(tmp_path, result, monkeypatch):
    """An error between a file's calls and windows inserts rolls that file back (SAVEPOINT)."""
    db = tmp_path / "r.db"
    store = ResultStore(db)
    store.write_file("/a.wav", "mix", "v1", FileMeta(1, 1.0, "h1", 8000), [result], None)
    broken = [result, "not a result"]  # the second row fails after the first row's inserts
    with pytest.raises(AttributeError):
        store.write_file("/b.wav", "mix", "v1", FileMeta(1, 1.0, "h2", 8000), broken, None)
    store.close()
    conn = sqlite3.connect(db)
    assert [r[0] for r in conn.execute("SELECT path FROM calls")] == ["/a.wav"]
    assert conn.execute("SELECT count(*) FROM windows").fetchone()[0] == len(result.windows)


@pytest.mark.parametrize("name", ["a#b.db", "what?.db", "100%.db"])
def test_store_paths_with_uri_characters(tmp_path, result, name):
    db = tmp_path / name
    with ResultStore(db) as store:
        store.write_file("/a.wav", "mix", "v1", FileMeta(1, 1.0, "h1", 8000), [result], None)
    assert summarize(db)["counts"] == {"v1": {result.label: 1}}
    assert export_results(db, "csv", tmp_path / "out.csv") == 1


def test_summary_of_a_foreign_file_is_one_line(tmp_path, capsys):
    db = _foreign(tmp_path / "contacts.db")
    assert main(["summary", str(db)]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "not a robodetect result store" in err
    assert err.count("contacts.db") == 1  # named once, not "contacts.db: contacts.db: ..."


def test_nan_never_reaches_the_store_as_invalid_json(tmp_path, result):
    odd = type(result)(**{**result.__dict__, "timing": {**result.timing, "speech_ratio": float("nan")}})
    db = tmp_path / "r.db"
    with ResultStore(db) as store:
        store.write_file("/a.wav", "mix", "v1", FileMeta(), [odd], None)
    (timing,) = sqlite3.connect(db).execute("SELECT timing FROM calls").fetchone()
    assert "NaN" not in timing and '"speech_ratio": null' in timing
    export_results(db, "jsonl", tmp_path / "o.jsonl")
    assert "NaN" not in (tmp_path / "o.jsonl").read_text()
    assert np.isnan(np.nan)  # sanity: the input really held a NaN
