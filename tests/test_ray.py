"""``robodetect scan --engine ray`` on a local Ray (2 CPUs, no cluster): the same rows as the local
scan, error rows included; resume; a killed worker retried without duplicates; a file that always
kills its worker isolated as an error row; the one-line hint without the extra."""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_scan import _call, make_archive

from robodetect.batch import ScanInterrupted, scan
from robodetect.cli import main
from robodetect.store import ResultStore

COMPARED = (
    "path", "channel_mode", "channel", "role", "party", "model_version", "size", "content_hash", "sample_rate",
    "duration_seconds", "speech_seconds", "label", "threshold", "reason", "timing", "cues", "error",
)  # fmt: skip


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
    root = tmp_path_factory.mktemp("ray-archive")
    make_archive(root, speech_8k, n=4, seconds=10.0)
    x = _call(speech_8k, 12.0, seed=9)
    sf.write(root / "stereo.wav", np.stack([x, np.roll(x, 8000) * 0.3], 1), 8000, subtype="PCM_16")
    sf.write(root / "ulaw.wav", _call(speech_8k, 8.0, seed=11), 8000, subtype="ULAW")
    (root / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + os.urandom(3000))
    sf.write(root / "tmp.flac", _call(speech_8k, 6.0, seed=5), 8000)
    os.rename(os.fsencode(root / "tmp.flac"), os.fsencode(root) + b"/caf\xe9.flac")
    return root


def _rows(db: Path) -> list[dict]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    out = [dict(r) for r in conn.execute("SELECT * FROM calls ORDER BY path, channel, role, party")]
    for r in out:
        r["windows"] = [
            w[0]
            for w in conn.execute("SELECT robot_probability FROM windows WHERE call_id = ? ORDER BY idx", (r["id"],))
        ]
        r["fingerprints"] = conn.execute("SELECT count(*) FROM fingerprints WHERE call_id = ?", (r["id"],)).fetchone()[
            0
        ]
    conn.close()
    return out


def assert_same_rows(a: Path, b: Path) -> None:
    ra, rb = _rows(a), _rows(b)
    assert [r["path"] for r in ra] == [r["path"] for r in rb]
    for x, y in zip(ra, rb):
        for col in COMPARED:
            assert x[col] == y[col], (x["path"], col, x[col], y[col])
        if x["robot_probability"] is None:
            assert y["robot_probability"] is None
        else:
            assert abs(x["robot_probability"] - y["robot_probability"]) <= 1e-5
        assert len(x["windows"]) == len(y["windows"])
        assert np.allclose(x["windows"], y["windows"], atol=1e-5, rtol=0)
        assert x["fingerprints"] == y["fingerprints"]


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
