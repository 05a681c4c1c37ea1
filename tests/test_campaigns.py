"""Campaigns (replayed prompts): fingerprints survive the phone channel, planted replays are found,
unrelated calls are not merged, and the CLI reports them (or one line on a bad store)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from robodetect.batch import scan
from robodetect.campaigns import find_campaigns, fingerprint
from robodetect.cli import main
from robodetect.simulate import SimConfig, change_speed, g711, simulate_call
from robodetect.store import ResultStore, summarize

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
PROMPTS = ("robot_en_piper", "human_en_librispeech")  # a TTS prompt and a human-voiced one


def _sample(name: str) -> np.ndarray:
    return sf.read(SAMPLES / f"{name}.wav", dtype="float32")[0]


def _others() -> list[np.ndarray]:
    """Distinct 3 s utterances from the samples that are not prompts, at several speeds."""
    out = []
    for speed in (0.84, 0.93, 1.0, 1.1, 1.21):
        for p in sorted(SAMPLES.glob("*.wav")):
            if p.stem in PROMPTS:
                continue
            x = change_speed(_sample(p.stem), speed) if speed != 1.0 else _sample(p.stem)
            out += [x[i : i + 3 * 8000] for i in range(0, len(x) - 3 * 8000, 3 * 8000)]
    return out


def _best_offset_matches(a: np.ndarray, b: np.ndarray) -> int:
    fa, fb = fingerprint(a), fingerprint(b)
    where: dict[int, list[int]] = {}
    for h, t in fb.tolist():
        where.setdefault(h, []).append(t)
    votes = Counter(t2 - t for h, t in fa.tolist() for t2 in where.get(h, ()))
    return max((votes[d - 1] + votes[d] + votes[d + 1] for d in votes), default=0)


def test_fingerprint_survives_the_phone_channel():
    x = _sample("robot_en_piper")
    rng = np.random.default_rng(0)
    noisy = x + rng.normal(0, 0.05 * np.sqrt(np.mean(x**2)), len(x)).astype(np.float32)
    replay = np.r_[np.zeros(8000 + 37, np.float32), g711(0.3 * noisy, "alaw")]  # 1 s + 4.6 ms later, quieter
    assert _best_offset_matches(x, replay) >= 15
    for other in (_sample("human_en_speechocean"), _sample("robot_en_espeak"), change_speed(x, 1.1)):
        assert _best_offset_matches(x, other) <= 2
    assert fingerprint(np.zeros(8000, np.float32)).shape == (0, 2)
    hum = np.sin(2 * np.pi * 400 * np.arange(5 * 8000) / 8000).astype(np.float32)
    assert len(fingerprint(hum)) == 0  # a steady tone has no landmarks


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> tuple[Path, dict[str, str | None]]:
    """Each prompt replayed in 4 calls (different codecs, noise, gain, lead-in, callee speech around
    it) and 8 unrelated calls; returns (folder, {file name: prompt or None})."""
    root = tmp_path_factory.mktemp("campaigns")
    rng = np.random.default_rng(1)
    others = iter(_others())
    codecs = ["none", "mulaw", "alaw", "gsm" if shutil.which("sox") else "mulaw"]
    truth: dict[str, str | None] = {}
    jobs = [(p, codec) for p in PROMPTS for codec in codecs] + [(None, None)] * 8
    # "clean" calls without the simulator's noise floor: this tests the campaign logic (which reads
    # the model's verdicts), not the model's sensitivity to a noise floor, which
    # scripts/shortcut_checks.py measures ("noisy pauses")
    quiet = {"clean_floor_db": (-200.0, -200.0)}
    for n, (prompt, codec) in enumerate(jobs):
        if prompt is None:
            parts, config = [next(others), next(others)], SimConfig(**quiet)
        else:
            parts = [next(others), _sample(prompt)] + ([next(others)] if n % 2 else [])
            config = SimConfig(codec=codec, lead_max_seconds=3.0, **quiet)
        x, _ = simulate_call(parts, rng, config)
        name = f"call{n:02d}.wav"
        sf.write(root / name, x, 8000, subtype="PCM_16")
        truth[name] = prompt
    return root, truth


@pytest.fixture(scope="module")
def store(archive, tmp_path_factory) -> Path:
    import robodetect

    db = tmp_path_factory.mktemp("store") / "r.db"
    with ResultStore(db) as s:
        scan([str(archive[0])], s, robodetect.load(), workers=1)
    return db


def test_planted_replays_found_unrelated_not_merged(archive, store):
    _, truth = archive
    campaigns = find_campaigns(store, min_calls=2)
    groups = sorted(sorted(Path(c.path).name for c in camp.calls) for camp in campaigns)
    planted = sorted(sorted(name for name, p in truth.items() if p == prompt) for prompt in PROMPTS)
    assert groups == planted
    for camp in campaigns:
        assert camp.n_calls == 4 and camp.first_seen <= camp.last_seen
        for call in camp.calls:  # the shared span lies in the prompt (8.5-10 s of speech)
            assert 4.0 <= call.end_seconds - call.start_seconds <= 11.0
    by_prompt = {truth[Path(c.calls[0].path).name]: c for c in campaigns}
    assert not by_prompt["robot_en_piper"].human_voiced and by_prompt["human_en_librispeech"].human_voiced


def test_rescan_replaces_fingerprints(archive, store, tmp_path):
    import robodetect

    db = tmp_path / "copy.db"
    shutil.copy(store, db)
    count = "SELECT count(*), count(DISTINCT call_id) FROM fingerprints"
    before = sqlite3.connect(db).execute(count).fetchone()
    one = sorted(archive[0].glob("*.wav"))[:2]
    with ResultStore(db) as s:
        scan([str(p) for p in one], s, robodetect.load(), workers=1, rescore=True)
    conn = sqlite3.connect(db)
    assert conn.execute(count).fetchone() == before
    orphans = "SELECT count(*) FROM fingerprints WHERE call_id NOT IN (SELECT id FROM calls)"
    assert conn.execute(orphans).fetchone()[0] == 0
    conn.close()


def test_store_from_before_shared_hashes_is_backfilled(archive, store, tmp_path):
    """A store fingerprinted before ``shared_hashes`` existed: opened for writing (a new scan), its
    shared hashes are listed, so its old calls still form their campaigns."""
    db = tmp_path / "old.db"
    shutil.copy(store, db)
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE shared_hashes")
    conn.commit()
    conn.close()
    with ResultStore(db):
        pass
    conn = sqlite3.connect(db)
    n = conn.execute("SELECT count(*) FROM shared_hashes").fetchone()[0]
    assert n == sqlite3.connect(store).execute("SELECT count(*) FROM shared_hashes").fetchone()[0] > 0
    conn.close()
    assert [c.n_calls for c in find_campaigns(db, min_calls=2)] == [
        c.n_calls for c in find_campaigns(store, min_calls=2)
    ]


def test_cli_campaigns_and_summary(store, capsys):
    assert main(["campaigns", str(store), "--min-calls", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2 campaign(s)") and "human-voiced prompt" in out
    assert main(["campaigns", str(store), "--json", "--min-calls", "2"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert [c["n_calls"] for c in got] == [4, 4] and all(len(c["calls"]) == 4 for c in got)
    assert main(["campaigns", str(store), "--min-calls", "5"]) == 0
    assert "no campaigns found" in capsys.readouterr().out
    s = summarize(store, campaigns=1)
    assert [c["n_calls"] for c in s["campaigns"]] == [4] and "calls" not in s["campaigns"][0]  # top 1 asked
    assert main(["summary", str(store)]) == 0
    assert "biggest campaigns" in capsys.readouterr().out


def test_export_carries_campaign(archive, store, tmp_path):
    import csv

    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    _, truth = archive
    assert main(["export", str(store), "--format", "csv", str(tmp_path / "r.csv")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "r.csv")))
    got = {Path(r["path"]).name: r["campaign"] for r in rows}
    for name, prompt in truth.items():
        assert (got[name] != "") == (prompt is not None)
    assert len({got[n] for n, p in truth.items() if p == PROMPTS[0]}) == 1  # one number per campaign
    assert main(["export", str(store), "--format", "parquet", str(tmp_path / "r.parquet")]) == 0
    table = pq.read_table(tmp_path / "r.parquet").to_pydict()
    assert sorted(c for c in table["campaign"] if c is not None) == [1] * 4 + [2] * 4


def bad_stores(tmp_path: Path, good: Path) -> dict[str, Path]:
    """A missing, an empty, a foreign and a half-written result store, and a FIFO."""
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE songs (title TEXT)")
    conn.commit()
    conn.close()
    half = tmp_path / "half.db"
    data = good.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    fifo = tmp_path / "fifo.db"
    os.mkfifo(fifo)  # opening it would block: refused before SQLite opens it
    return {"missing": tmp_path / "missing.db", "empty": empty, "foreign": foreign, "half": half, "fifo": fifo}


@pytest.mark.parametrize("kind", ["missing", "empty", "foreign", "half", "fifo"])
@pytest.mark.parametrize("command", ["campaigns", "summary", "report"])
def test_bad_store_one_line(store, tmp_path, capsys, kind, command):
    path = bad_stores(tmp_path, store)[kind]
    extra = ["-o", str(tmp_path / "r.html")] if command == "report" else []
    assert main([command, str(path), *extra]) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and str(path) in err


def test_no_fingerprints_marks_files_and_a_later_scan_fills_them_in(archive, store, tmp_path, capsys):
    """``scan --no-fingerprints``: same verdicts, no fingerprint rows, ``fingerprinted = 0``; campaigns
    and summary say how many files they cannot search; a scan with fingerprints re-processes exactly
    those files (a fingerprinted file is done for a scan without them), after which the campaigns
    are those of a normal scan."""
    import robodetect
    from robodetect.campaigns import unfingerprinted_files
    from robodetect.cli import main
    from robodetect.store import summarize

    files = sorted(archive[0].glob("*.wav"))
    db = tmp_path / "nofp.db"
    with ResultStore(db) as s:
        stats = scan([str(archive[0])], s, robodetect.load(), workers=1, fingerprints=False)
    assert stats.files == len(files)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM fingerprints").fetchone()[0] == 0
    marks = conn.execute("SELECT DISTINCT fingerprinted FROM calls").fetchall()
    verdicts = "SELECT path, channel, robot_probability FROM calls ORDER BY path, channel"
    ref = sqlite3.connect(store)
    assert conn.execute(verdicts).fetchall() == ref.execute(verdicts).fetchall()
    assert ref.execute("SELECT DISTINCT fingerprinted FROM calls").fetchall() == [(1,)]
    conn.close()
    assert marks == [(0,)]
    assert find_campaigns(db, min_calls=2) == []
    assert unfingerprinted_files(db) == len(files) and summarize(db)["unfingerprinted_files"] == len(files)
    assert main(["campaigns", str(db)]) == 0
    assert f"{len(files)} file(s)" in capsys.readouterr().err
    with ResultStore(db) as s:  # fingerprinted under another channel mode: campaigns can search it
        scan([str(files[0])], s, robodetect.load(), workers=1, channel="mix")
    assert unfingerprinted_files(db) == len(files) - 1

    with ResultStore(db) as s:  # fingerprinted already: nothing to do without fingerprints
        assert scan([str(archive[0])], s, robodetect.load(), workers=1, fingerprints=False).skipped == len(files)
    half = files[: len(files) // 2]
    with ResultStore(db) as s:
        stats = scan([str(p) for p in half], s, robodetect.load(), workers=1)
    assert stats.skipped == 0 and stats.files == len(half)
    assert unfingerprinted_files(db) == len(files) - len(half)
    with ResultStore(db) as s:
        stats = scan([str(archive[0])], s, robodetect.load(), workers=1)
    assert stats.skipped == len(half) and unfingerprinted_files(db) == 0

    def names(db_path) -> list:  # (call00 is in db under two channel modes)
        return sorted(sorted({Path(c.path).name for c in camp.calls}) for camp in find_campaigns(db_path, min_calls=2))

    assert names(db) == names(store)
