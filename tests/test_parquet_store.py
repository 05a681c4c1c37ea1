"""``--out DIR.parquet``: a Parquet result dataset gives the rows of the SQLite store, and
``summary``/``export``/``report``/``campaigns`` read it alike; resume, rescoring, duplicate and
damaged parts, foreign folders."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pytest
import soundfile as sf
from test_scan import _call, assert_same_rows, make_mixed_archive, store_rows

from robodetect.batch import scan
from robodetect.cli import main
from robodetect.report import write_report
from robodetect.store import ResultStore, StoreError, export_results, summarize

pa = pytest.importorskip("pyarrow", reason="Parquet results need pyarrow (extra [parquet])")
import pyarrow.dataset as pads  # noqa: E402

from robodetect import parquetstore  # noqa: E402
from robodetect.parquetstore import ParquetStore  # noqa: E402


@pytest.fixture(scope="module")
def archive(tmp_path_factory, speech_8k):
    return make_mixed_archive(tmp_path_factory.mktemp("pq-archive"), speech_8k, n=3, seconds=8.0, ulaw=False)


@pytest.fixture(scope="module")
def local_db(tmp_path_factory, archive, detector):
    db = tmp_path_factory.mktemp("pq-local") / "local.db"
    with ResultStore(db) as store:
        scan([str(archive)], store, detector, workers=1)
    return db


def _scan_pq(paths, out: Path, detector, **kw):
    with ParquetStore(out) as store:
        return scan([str(p) for p in paths], store, detector, workers=1, **kw)


def test_parquet_results_are_the_sqlite_rows(tmp_path, archive, detector, local_db):
    out = tmp_path / "r.parquet"
    stats = _scan_pq([archive], out, detector)
    assert (stats.files, stats.errors) == (6, 1)
    assert_same_rows(local_db, out)
    # a plain Parquet reader sees exactly the result rows (the index and marker are skipped)
    table = pads.dataset(out, format="parquet").to_table()
    assert table.num_rows == len(store_rows(local_db))
    assert b"caf\xe9.flac" in {os.path.basename(p) for p in table.column("path_bytes").to_pylist()}
    first = [r for r in table.to_pylist() if r["role"] == "call" and r["label"] != "error"]
    assert all(r["windows"] for r in first if r["speech_seconds"])
    # second run: every good file skipped before it is decoded; the corrupt one tried again
    again = _scan_pq([archive], out, detector)
    assert (again.skipped, again.files, again.errors) == (5, 1, 1)
    assert_same_rows(local_db, out)  # its new error row replaced the old one: no duplicate


def test_summary_export_report_campaigns_read_parquet_as_sqlite(tmp_path, archive, detector, local_db, model_stem):
    out = tmp_path / "r.parquet"
    _scan_pq([archive], out, detector)
    assert summarize(out) == summarize(local_db)
    for fmt in ("csv", "jsonl"):
        a, b = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt}"
        assert export_results(local_db, fmt, a) == export_results(out, fmt, b) > 0
        if fmt == "csv":
            ra = [
                {k: v for k, v in r.items() if k != "scored_at"}
                for r in csv.DictReader(open(a, newline="", errors="surrogateescape"))
            ]
            rb = [
                {k: v for k, v in r.items() if k != "scored_at"}
                for r in csv.DictReader(open(b, newline="", errors="surrogateescape"))
            ]
            assert ra == rb
    assert write_report(out, tmp_path / "b.html") == write_report(local_db, tmp_path / "a.html")
    assert main(["report", str(out), "--out", str(tmp_path / "r.html")]) == 0
    assert main(["campaigns", str(out)]) == 0
    assert main(["summary", str(out)]) == 0


def test_changed_file_and_failed_rescan_keep_one_set_of_rows(tmp_path, speech_8k, detector):
    root = tmp_path / "calls"
    root.mkdir()
    f = root / "a.wav"
    sf.write(f, _call(speech_8k, 8.0, seed=1), 8000)
    out = tmp_path / "r.parquet"
    _scan_pq([f], out, detector)
    first = store_rows(out)
    sf.write(f, _call(speech_8k, 9.0, seed=2), 8000)  # new content: scored again
    assert _scan_pq([f], out, detector).files == 1
    second = store_rows(out)
    assert len(second) == len(first) and second[0]["content_hash"] != first[0]["content_hash"]
    f.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")  # now unreadable: the good rows stay
    assert _scan_pq([f], out, detector).errors == 1
    assert store_rows(out) == second
    assert summarize(out)["failed_retries"] == 1
    assert len(list(out.glob("part-*.parquet"))) == 3  # every run's rows stay in the dataset


def test_duplicate_removed_and_damaged_parts(tmp_path, archive, detector, local_db, capsys):
    out = tmp_path / "r.parquet"
    _scan_pq([archive], out, detector)
    (part,) = out.glob("part-*.parquet")
    shutil.copy(part, out / "part-copy-0000.parquet")  # the same files written twice (a retried task)
    assert_same_rows(local_db, out)
    (out / "part-copy-0000.parquet").unlink()
    part.unlink()  # a removed part: its rows leave the index too
    assert store_rows(out) == []
    (out / "part-bad-0000.parquet").write_bytes(b"PAR1" + os.urandom(500))
    _scan_pq([archive], out, detector)
    assert_same_rows(local_db, out)  # the damaged part is skipped and said, the rest read
    err = capsys.readouterr().err
    assert "part-bad-0000.parquet: unreadable Parquet part skipped" in err


def test_foreign_folder_and_file_are_refused(tmp_path, archive, model_stem, capsys):
    foreign = tmp_path / "photos.parquet"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(StoreError):
        ParquetStore(foreign)
    code = main(["scan", str(archive), "--out", str(foreign), "--model", str(model_stem), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "not a robodetect result dataset" in err and "Traceback" not in err
    assert sorted(os.listdir(foreign)) == ["holiday.jpg"]
    plain = tmp_path / "x.parquet"
    plain.write_bytes(b"not a folder")
    with pytest.raises(StoreError):
        ParquetStore(plain)
    assert main(["summary", str(foreign)]) == 1
    assert "not a robodetect result dataset" in capsys.readouterr().err


def test_cli_scan_to_parquet(tmp_path, archive, model_stem, capsys):
    out = tmp_path / "calls.parquet"
    code = main(["scan", str(archive), "--out", str(out), "--model", str(model_stem), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "corrupt.wav" in err and "Traceback" not in err  # as with a SQLite store
    assert parquetstore.is_dataset(out)
    assert main(["summary", str(out), "--json"]) == 0
    assert '"error": 1' in capsys.readouterr().out


def test_without_pyarrow_scan_to_parquet_says_how_to_install(tmp_path, archive, model_stem, monkeypatch, capsys):
    monkeypatch.setattr(parquetstore, "parquet_missing", lambda: parquetstore.PARQUET_HINT)
    out = tmp_path / "r.parquet"
    assert main(["scan", str(archive), "--out", str(out), "--model", str(model_stem), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'robodetect[parquet]'" in err[0]
    assert not out.exists()
