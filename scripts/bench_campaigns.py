"""Benchmark campaign detection (replayed prompts) on a synthetic call archive.

    python scripts/bench_campaigns.py                          # 20 prompts x 5-50 replays + 500 unrelated
    python scripts/bench_campaigns.py --prompts 6 --unrelated 100 --max-replays 12   # quick look
    python scripts/bench_campaigns.py --scale-calls 20000      # also time clustering at 20k calls

Archive (seeded): each prompt is 3-4 utterances joined with short pauses; each of its replays is a
separate call built by robodetect.simulate (lead-in silence, callee speech before and/or after the
prompt, noise, gain, clipping, band-limiting, a G.711 / GSM / AMR-NB codec, packet loss). Unrelated
calls are 2-3 other utterances through the same simulator. No utterance is used twice, so the only
audio two calls share is a prompt. Utterances come from ../shared/corpora when present, else from
samples/ (crops at several speeds: fewer distinct voices). File mtimes spread over 30 days.

Prints pair precision / recall (pairs of calls put in one campaign vs. truly sharing a prompt), the
fingerprint's share of scan time (worker fingerprint seconds over all stage seconds), and clustering
time. ``--scale-calls N`` times clustering on a store of N calls: the archive's calls plus fake
unrelated calls modelled on its unrelated ones (see :func:`scaled_store`), at N/2 and N, and
extrapolates to 100k calls. ``--keep DIR`` reuses an archive and store already built there.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
CORPORA = Path(os.environ.get("ROBODETECT_SHARED", REPO.parent / "shared")) / "corpora"
SR = 8000
DAY = 86400.0


def utterance_pool(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """n distinct 8 kHz utterances: the shared corpus (1-8 s files), else crops of samples/."""
    import soxr

    if (CORPORA / "manifest.csv").exists():
        rows = [r for r in csv.DictReader(open(CORPORA / "manifest.csv")) if 1.0 <= float(r["duration_s"]) <= 8.0]
        pool = []
        for i in rng.permutation(len(rows))[:n]:
            x, sr = sf.read(CORPORA / rows[i]["path"], dtype="float32")
            pool.append(soxr.resample(x, sr, SR).astype(np.float32) if sr != SR else x)
        if len(pool) >= n:
            return pool
    return sample_crops(n)


def sample_crops(n: int) -> list[np.ndarray]:
    """n distinct utterances from samples/: 2.5 s crops of each sample, at speeds 0.80, 0.86, ... ."""
    from robodetect.simulate import change_speed

    sources = [sf.read(p, dtype="float32")[0] for p in sorted((REPO / "samples").glob("*.wav"))]
    pool = []
    for speed in np.arange(0.80, 1.40, 0.06):
        for x in sources:
            y = change_speed(x, float(speed)) if abs(speed - 1.0) > 1e-3 else x
            for start in range(0, len(y) - int(2.5 * SR), int(2.5 * SR)):
                pool.append(y[start : start + int(2.5 * SR)])
                if len(pool) == n:
                    return pool
    raise ValueError(f"samples/ give only {len(pool)} distinct utterances, {n} asked")


def build_archive(
    root: Path, *, prompts: int, min_replays: int, max_replays: int, unrelated: int, seed: int = 0
) -> dict[str, int | None]:
    """Write the archive into root; returns {file path: prompt index or None}."""
    from robodetect.simulate import SimConfig, simulate_call

    rng = np.random.default_rng(seed)
    replays = rng.integers(min_replays, max_replays + 1, size=prompts)
    n_utt = 4 * prompts + 2 * int(replays.sum()) + 3 * unrelated
    pool = iter(utterance_pool(rng, n_utt))
    prompt_audio = []
    for _ in range(prompts):
        parts = [next(pool) for _ in range(int(rng.integers(3, 5)))]
        gaps = [np.zeros(int(rng.uniform(0.2, 0.6) * SR), np.float32) for _ in parts]
        prompt_audio.append(np.concatenate([x for pair in zip(parts, gaps, strict=True) for x in pair]))
    jobs: list[tuple[int | None, list[np.ndarray]]] = []
    for k, n in enumerate(replays):
        for _ in range(int(n)):
            before = [next(pool)] if rng.random() < 0.6 else []
            after = [next(pool)] if rng.random() < 0.6 else []
            jobs.append((k, [*before, prompt_audio[k], *after]))
    jobs += [(None, [next(pool) for _ in range(int(rng.integers(2, 4)))]) for _ in range(unrelated)]
    order = rng.permutation(len(jobs))
    truth: dict[str, int | None] = {}
    t0 = time.time() - 30 * DAY
    config = SimConfig(lead_max_seconds=3.0)
    for n, j in enumerate(order):
        k, utterances = jobs[j]
        x, _ = simulate_call(utterances, rng, config)
        day = int(rng.integers(0, 30)) if k is None else int(k % 10 + rng.integers(0, 5))
        path = root / f"day{day:02d}" / f"call{n:05d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, x, SR, subtype="PCM_16")
        mtime = t0 + day * DAY + float(rng.uniform(0, DAY))
        os.utime(path, (mtime, mtime))
        truth[str(path.resolve())] = k
    return truth


def pair_scores(truth: dict[str, int | None], campaigns) -> dict[str, float]:
    """Pair precision / recall: call pairs predicted in one campaign vs. truly sharing a prompt."""
    true_pairs = set()
    by_prompt: dict[int, list[str]] = {}
    for path, k in truth.items():
        if k is not None:
            by_prompt.setdefault(k, []).append(path)
    for paths in by_prompt.values():
        true_pairs.update(itertools.combinations(sorted(paths), 2))
    predicted = set()
    for c in campaigns:
        predicted.update(itertools.combinations(sorted(call.path for call in c.calls), 2))
    hit = len(true_pairs & predicted)
    return {
        "true_pairs": len(true_pairs),
        "predicted_pairs": len(predicted),
        "precision": hit / len(predicted) if predicted else 1.0,
        "recall": hit / len(true_pairs) if true_pairs else 1.0,
    }


def scaled_store(src: Path, dst: Path, calls: int, unrelated: set[str], seed: int = 0) -> int:
    """A store of ``calls`` calls: the source's calls, plus fake unrelated calls modelled on the
    source's unrelated ones. A fake call copies a random unrelated call's fingerprint rows; a hash
    value that occurs in two or more unrelated source calls (a common landmark of speech) is kept,
    so it keeps its measured rate per call and its bucket grows with the archive; every other hash
    becomes a fresh random value; times are random (unrelated calls share no offset). The hash index
    is built after the rows are in. Returns the fingerprint rows written."""
    from robodetect.campaigns import HASH_BITS
    from robodetect.store import SCHEMA

    rng = np.random.default_rng(seed)
    out = sqlite3.connect(dst)
    out.executescript(
        "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
        + SCHEMA.replace("CREATE INDEX IF NOT EXISTS fingerprints_hash ON fingerprints (hash, call_id, t);", "")
    )
    out.execute(f"ATTACH DATABASE '{src}' AS src")
    out.execute("INSERT INTO calls SELECT * FROM src.calls")
    out.execute("INSERT INTO fingerprints SELECT * FROM src.fingerprints")  # (shared_hashes: rebuilt below)
    ids = {p: i for p, i in out.execute("SELECT path, id FROM calls WHERE role = 'call'")}
    keep = np.array(sorted(ids[p] for p in unrelated if p in ids))
    fp = np.array(out.execute("SELECT call_id, t, hash FROM fingerprints").fetchall(), dtype=np.int64)
    fp = fp[np.isin(fp[:, 0], keep)]
    pairs = np.unique(fp[:, [2, 0]], axis=0)
    values, n_calls = np.unique(pairs[:, 0], return_counts=True)
    common = np.isin(fp[:, 2], values[n_calls >= 2])
    by_call = {int(c): np.flatnonzero(fp[:, 0] == c) for c in keep}
    templates = list(by_call.values())
    rows = int(out.execute("SELECT count(*) FROM fingerprints").fetchone()[0])
    next_id = int(out.execute("SELECT max(id) FROM calls").fetchone()[0]) + 1
    fake = range(next_id, next_id + calls - len(ids))
    cols = "(id, path, channel_mode, channel, role, model_version, label, robot_probability, mtime, scored_at)"
    for start in range(0, len(fake), 5000):
        chunk = fake[start : start + 5000]
        out.executemany(
            f"INSERT INTO calls {cols} VALUES (?, ?, 'auto', 'mix', 'call', 'bench', 'human', 0.1, 0, 0)",
            [(i, f"fake/{i}.wav") for i in chunk],
        )
        picks = [templates[k] for k in rng.integers(0, len(templates), size=len(chunk))]
        owner = np.repeat(np.array(chunk), [len(p) for p in picks])
        idx = np.concatenate(picks)
        hashes = np.where(common[idx], fp[idx, 2], rng.integers(0, 1 << HASH_BITS, size=len(idx)))
        times = rng.integers(0, 7500, size=len(idx))
        out.executemany("INSERT OR IGNORE INTO fingerprints (call_id, t, hash) VALUES (?, ?, ?)", zip(
            owner.tolist(), times.tolist(), hashes.tolist(), strict=True))  # fmt: skip
        rows += len(idx)
    out.execute("CREATE INDEX fingerprints_hash ON fingerprints (hash, call_id, t)")
    # what scan maintains file by file (store.SHARE_HASHES), in one go
    out.execute(
        "INSERT INTO main.shared_hashes SELECT hash FROM main.fingerprints GROUP BY hash HAVING min(call_id) < max(call_id)"
    )
    out.execute("PRAGMA application_id=" + str(out.execute("PRAGMA src.application_id").fetchone()[0]))
    out.execute("PRAGMA user_version=" + str(out.execute("PRAGMA src.user_version").fetchone()[0]))
    out.commit()
    out.execute("DETACH DATABASE src")
    out.close()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=20)
    ap.add_argument("--min-replays", type=int, default=5)
    ap.add_argument("--max-replays", type=int, default=50)
    ap.add_argument("--unrelated", type=int, default=500)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scale-calls", type=int, default=0, help="also time clustering on a store of this many calls")
    ap.add_argument("--keep", type=Path, default=None, help="build the archive and store here (kept, reused)")
    ap.add_argument("--reuse-store", action="store_true", help="with --keep: skip the scan, reuse its store")
    args = ap.parse_args()

    import robodetect
    from robodetect.batch import scan
    from robodetect.store import ResultStore

    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-campaigns-"))
    root.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    spec = {k: getattr(args, k) for k in ("prompts", "min_replays", "max_replays", "unrelated", "seed")}
    stamp = root / "truth.json"
    if stamp.exists() and json.loads(stamp.read_text())["spec"] == spec:
        truth = json.loads(stamp.read_text())["truth"]
    else:
        truth = build_archive(root / "archive", **spec)
        stamp.write_text(json.dumps({"spec": spec, "truth": truth}))
    n_replays = sum(k is not None for k in truth.values())
    print(
        f"archive: {args.prompts} prompts replayed in {n_replays} calls + {args.unrelated} unrelated calls "
        f"= {len(truth)} files ({'shared corpus' if (CORPORA / 'manifest.csv').exists() else 'samples/'}), "
        f"built in {time.perf_counter() - t:.0f} s"
    )
    db = root / "results.db"
    if args.reuse_store and db.exists():
        print(f"store: reusing {db}")
    else:
        for old in root.glob("results.db*"):
            old.unlink()
        with ResultStore(db) as store:
            stats = scan([str(root / "archive")], store, robodetect.load(), workers=args.workers)
        report_scan(stats, index_cost(db, stats))
    report_clustering(db, truth, args)
    return 0


def index_cost(db: Path, stats) -> float:
    """Seconds the store spends on fingerprint rows (and their hash index and ``shared_hashes``):
    the scan's files written again into fresh stores, with and without their fingerprints, in
    write groups as large as the scan's (files per ``COMMIT_SECONDS`` of its wall time)."""
    from robodetect.batch import COMMIT_SECONDS
    from robodetect.detector import Result, WindowScore
    from robodetect.store import FileMeta, ResultStore

    src = sqlite3.connect(db)
    calls = src.execute("SELECT id, path FROM calls WHERE role = 'call' AND error IS NULL ORDER BY id").fetchall()
    prints: dict[int, list] = {}
    for cid, t, h in src.execute("SELECT call_id, t, hash FROM fingerprints"):
        prints.setdefault(cid, []).append((h, t))
    windows: dict[int, list] = {}
    for cid, a, b, p in src.execute("SELECT call_id, start_seconds, end_seconds, robot_probability FROM windows"):
        windows.setdefault(cid, []).append(WindowScore(a, b, p))
    src.close()
    group = max(1, round(stats.files / max(stats.wall_seconds, 1e-9) * COMMIT_SECONDS))
    seconds = {}
    for with_fp in (False, True):
        out = Path(tempfile.mkdtemp(prefix="bench-index-")) / "r.db"
        t = time.perf_counter()
        with ResultStore(out) as store:
            for k, (cid, path) in enumerate(calls):
                r = Result("human", 0.1, 0.9, 10.0, 20.0, "mix", windows.get(cid, []), {}, [], "bench")
                fp = np.array(prints.get(cid, []), np.int64).reshape(-1, 2) if with_fp else None
                store.write_file(path, "auto", "bench", FileMeta(1, 1.0, "h", 8000, fp), [r], None)
                if (k + 1) % group == 0:
                    store.commit()
        seconds[with_fp] = time.perf_counter() - t
        for f in out.parent.iterdir():
            f.unlink()
        out.parent.rmdir()
    return max(0.0, seconds[True] - seconds[False])


def report_scan(stats, index_s: float) -> None:
    stages = {k: v for k, v in stats.stage_seconds.items() if k != "wait_workers"}  # idle, not work
    total = sum(stages.values())
    print("scan stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(stages.items())))
    fp_s = stages.get("worker_fingerprint", 0.0)
    print(
        f"scan: {stats.files} files, {stats.audio_seconds / 3600:.2f} h audio in {stats.wall_seconds:.1f} s wall; "
        f"fingerprint {fp_s:.1f} s of {total:.1f} stage-seconds = {100 * fp_s / max(total, 1e-9):.1f} % "
        f"(store stage incl. fingerprint rows: {stages.get('store', 0.0):.1f} s)"
    )
    print(
        f"fingerprint + index: {fp_s:.1f} s + {index_s:.1f} s (the store's extra time for the fingerprint rows, "
        f"measured by writing the results again with and without them) = "
        f"{100 * (fp_s + index_s) / max(total, 1e-9):.1f} % of stage-seconds"
    )


def report_clustering(db: Path, truth: dict, args: argparse.Namespace) -> None:
    from robodetect.campaigns import find_campaigns

    root = db.parent
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT count(*) FROM fingerprints").fetchone()[0]
    conn.close()
    print(
        f"fingerprints: {rows} rows, {rows / max(len(truth), 1):.0f} per call, {db.stat().st_size / 2**20:.1f} MiB store"
    )
    t = time.perf_counter()
    campaigns = find_campaigns(db, min_calls=2)
    cluster_s = time.perf_counter() - t
    s = pair_scores(truth, campaigns)
    print(
        f"campaigns: {len(campaigns)} found (truth {args.prompts}); pair precision {s['precision']:.4f}, "
        f"recall {s['recall']:.4f} ({s['predicted_pairs']} predicted / {s['true_pairs']} true pairs); "
        f"clustering {cluster_s:.2f} s for {len(truth)} calls"
    )
    if args.scale_calls:
        times = {}
        unrelated = {p for p, k in truth.items() if k is None}
        for n in (args.scale_calls // 2, args.scale_calls):
            big = root / f"scaled-{n}.db"
            if big.exists():
                big.unlink()
            t = time.perf_counter()
            fp_rows = scaled_store(db, big, n, unrelated, seed=args.seed)
            build_s = time.perf_counter() - t
            t = time.perf_counter()
            found = find_campaigns(big, min_calls=2)
            times[n] = time.perf_counter() - t
            s = pair_scores(truth, found)
            print(
                f"scaled store: {n} calls, {fp_rows} fingerprint rows (built in {build_s:.0f} s): clustering "
                f"{times[n]:.1f} s; planted campaigns still precision {s['precision']:.4f} recall {s['recall']:.4f}"
            )
        (n1, t1), (n2, t2) = times.items()
        exponent = np.log(max(t2, 1e-9) / max(t1, 1e-9)) / np.log(n2 / n1)
        print(
            f"clustering growth exponent {exponent:.2f} between {n1} and {n2} calls; extrapolated to 100k calls: "
            f"{t2 * (100_000 / n2) ** max(exponent, 1.0):.0f} s"
        )


if __name__ == "__main__":
    sys.exit(main())
