"""``robodetect scan --engine ray`` on a local Ray (2 CPUs, no cluster): the same rows as the local
scan, error rows included; resume; a killed worker retried without duplicates; a file that always
kills its worker isolated as an error row; the one-line hint without the extra."""

from __future__ import annotations

import os
import signal
import sys

import pytest
import soundfile as sf
from test_scan import assert_same_rows, make_mixed_archive
from test_scan import store_rows as _rows

from robodetect.batch import ScanInterrupted, scan
from robodetect.cli import main
from robodetect.parquetstore import ParquetStore
from robodetect.store import ResultStore


def test_engine_ray_without_the_extra_says_how_to_install(tmp_path, speech_8k, model_stem, monkeypatch, capsys):
    import robodetect.rayscan as rayscan

    monkeypatch.setattr(rayscan, "ray_missing", lambda: rayscan.RAY_HINT)
    f = tmp_path / "a.wav"
    sf.write(f, speech_8k, 8000)
    code = main(["scan", str(f), "--out", str(tmp_path / "r.db"), "--engine", "ray", "--model", str(model_stem)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "pip install 'robodetect[ray]'" in err[0]
    assert not (tmp_path / "r.db").exists()


ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
pytest.importorskip("ray.data", reason="the [ray] extra is not installed")
from robodetect.rayscan import scan_ray  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    from robodetect.rayscan import init_ray

    started = init_ray(None, 2)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the fault-injection hooks below
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def archive(tmp_path_factory, speech_8k):
    """Mono FLAC 8 kHz and WAV 16 kHz calls, a stereo two-party call, a mu-law WAV, a corrupt
    file and a name that is not UTF-8."""
    return make_mixed_archive(tmp_path_factory.mktemp("ray-archive"), speech_8k, n=4, seconds=10.0)


@pytest.fixture(scope="module")
def local_db(tmp_path_factory, archive, detector):
    db = tmp_path_factory.mktemp("local") / "local.db"
    with ResultStore(db) as store:
        stats = scan([str(archive)], store, detector, workers=1)
    assert stats.errors == 1 and stats.files == 8
    return db


@pytest.mark.parametrize("model_actors", [None, 1], ids=["fused", "split"])
def test_ray_scan_gives_the_local_rows(tmp_path, archive, detector, local_db, local_ray, model_actors):
    db = tmp_path / "ray.db"
    with ResultStore(db) as store:
        stats = scan_ray([str(archive)], store, detector, model_actors=model_actors)
    assert (stats.files, stats.errors, stats.skipped) == (8, 1, 0)
    assert_same_rows(local_db, db)
    errors = [r for r in _rows(db) if r["error"]]
    assert len(errors) == 1 and "corrupt.wav" in errors[0]["error"]
    assert any(isinstance(r["path"], bytes) for r in _rows(db))  # the non-UTF-8 name kept its bytes
    with ResultStore(db) as store:  # a second run reads nothing again: every good file skipped
        again = scan_ray([str(archive)], store, detector, model_actors=model_actors)
    assert (again.skipped, again.files, again.errors) == (7, 1, 1)  # the corrupt file is retried
    assert_same_rows(local_db, db)


def test_interrupted_ray_scan_resumes_to_the_same_rows(tmp_path, archive, detector, local_db, local_ray):
    db = tmp_path / "ray.db"
    seen = []

    def stop_after_three(path, results, error):
        seen.append(path)
        if len(seen) == 3:
            raise KeyboardInterrupt  # Ctrl-C while the driver writes

    with ResultStore(db) as store:
        with pytest.raises(ScanInterrupted) as info:
            scan_ray([str(archive)], store, detector, on_file=stop_after_three, chunk_files=3)
    assert info.value.signum == signal.SIGINT
    kept = len(_rows(db))
    assert 3 <= kept < 8
    with ResultStore(db) as store:
        stats = scan_ray([str(archive)], store, detector)
    assert stats.skipped >= 2 and stats.files + stats.skipped == 8
    assert_same_rows(local_db, db)


def _kill_worker(marker_dir: str, once: bool):
    def hook(path: str) -> None:
        if "call002" not in path:
            return
        marker = os.path.join(marker_dir, "killed")
        if once and os.path.exists(marker):
            return
        open(marker, "a").close()
        os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would

    return hook


def test_killed_worker_is_retried_and_leaves_no_duplicate(tmp_path, archive, detector, local_db, local_ray):
    db = tmp_path / "ray.db"
    with ResultStore(db) as store:
        stats = scan_ray([str(archive)], store, detector, _hook=_kill_worker(str(tmp_path), once=True))
    assert (tmp_path / "killed").exists()  # the worker did die
    assert (stats.files, stats.errors) == (8, 1)
    assert_same_rows(local_db, db)  # one row per file: the retried file is not written twice


def test_file_that_always_kills_its_worker_becomes_an_error_row(tmp_path, archive, detector, local_db, local_ray):
    db = tmp_path / "ray.db"
    with ResultStore(db) as store:
        stats = scan_ray([str(archive)], store, detector, _hook=_kill_worker(str(tmp_path), once=False))
    assert (stats.files, stats.errors) == (8, 2)
    rows = _rows(db)
    bad = [r for r in rows if b"call002" in os.fsencode(r["path"])]
    assert len(bad) == 1 and bad[0]["label"] == "error" and "worker died" in bad[0]["error"]
    good = {r["path"] for r in _rows(local_db) if b"call002" not in os.fsencode(r["path"])}
    assert {r["path"] for r in rows if b"call002" not in os.fsencode(r["path"])} == good


@pytest.mark.parametrize("model_actors", [None, 1], ids=["fused", "split"])
def test_ray_workers_write_parquet_with_the_local_rows(tmp_path, archive, detector, local_db, local_ray, model_actors):
    out = tmp_path / "ray.parquet"
    hook = _kill_worker(str(tmp_path), once=True) if model_actors else None  # split: a stage-1 task dies once
    with ParquetStore(out) as store:
        stats = scan_ray([str(archive)], store, detector, model_actors=model_actors, _hook=hook)
    assert (stats.files, stats.errors) == (8, 1)
    assert (tmp_path / "killed").exists() == bool(model_actors)
    assert len(list(out.glob("part-*.parquet"))) >= 2  # one part per worker batch (the driver writes none)
    assert_same_rows(local_db, out)  # no duplicate after the retry, error row included
    with ParquetStore(out) as store:  # resume: every good file skipped before it is decoded
        again = scan_ray([str(archive)], store, detector, model_actors=model_actors)
    assert (again.skipped, again.files, again.errors) == (7, 1, 1)
    assert_same_rows(local_db, out)


def test_cli_engine_ray_writes_the_local_rows(tmp_path, archive, model_stem, local_ray, capsys):
    local, viaray = tmp_path / "local.db", tmp_path / "ray.db"
    assert main(["scan", str(archive), "--out", str(local), "--model", str(model_stem), "--quiet"]) == 1
    code = main(["scan", str(archive), "--out", str(viaray), "--model", str(model_stem), "--engine", "ray", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1  # the corrupt file: exit 1 as locally, every other file scored
    assert "corrupt.wav" in err and "Traceback" not in err
    assert_same_rows(local, viaray)
    code = main(["scan", str(archive), "--out", str(tmp_path / "x.db"), "--ray-address", "auto"])
    assert code == 2  # --ray-address without --engine ray is a usage error
