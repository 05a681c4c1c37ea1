"""Benchmark ``robodetect scan``: a synthetic call archive, CPU with 1 and N workers, CUDA if present.

    python scripts/bench_scan.py                       # 500 calls of 30-120 s + 4 corrupt files
    python scripts/bench_scan.py --calls 100 --long    # smaller archive, plus one 2-hour call

Calls are assembled (seeded) from ../shared/corpora utterances: speech bursts at varying gain with
pauses and a noise floor, written as 8 kHz FLAC, 16 kHz WAV and 8 kHz stereo WAV. Each
configuration runs in a child process (fresh result store); the parent samples the child's process
tree every 50 ms for peak memory: RSS summed over processes (counts pages the forked workers share
with the main process once per process, an over-estimate) and PSS (shared pages split: the real
footprint). Prints audio seconds per wall second (x real time) and the time per stage (worker
stages are summed over workers, so they can exceed the wall time).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
CORPORA = REPO.parent / "shared" / "corpora"
SR = 8000


def _utterances(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    rows = list(csv.DictReader(open(CORPORA / "manifest.csv")))
    rows = [r for r in rows if float(r["duration_s"]) >= 1.5]
    pick = rng.choice(len(rows), size=min(n, len(rows)), replace=False)
    return [sf.read(CORPORA / rows[i]["path"], dtype="float32")[0] for i in pick]


def _call(rng: np.random.Generator, pool: list[np.ndarray], seconds: float) -> np.ndarray:
    parts, total, target = [], 0, int(seconds * SR)
    while total < target:
        u = pool[int(rng.integers(len(pool)))] * rng.uniform(0.3, 1.5)
        pause = np.zeros(int(rng.uniform(0.2, 2.5) * SR), np.float32)
        parts += [u, pause]
        total += len(u) + len(pause)
    x = np.concatenate(parts)[:target]
    x = x + rng.normal(0, rng.uniform(3e-4, 3e-3), len(x)).astype(np.float32)
    return np.clip(x, -1, 1).astype(np.float32)


def build_archive(root: Path, calls: int, seed: int = 0) -> float:
    """Write the archive (reused when its manifest matches); returns its audio seconds."""
    stamp = root / "archive.json"
    if stamp.exists() and json.loads(stamp.read_text()) == {"calls": calls, "seed": seed, "done": True}:
        calls = [p for p in root.rglob("call*.*") if p.suffix in (".flac", ".wav")]
        return float(sum(sf.info(p).duration for p in calls))
    import soxr

    rng = np.random.default_rng(seed)
    pool = _utterances(rng, 600)
    total = 0.0
    for i in range(calls):
        x = _call(rng, pool, rng.uniform(30, 120))
        sub = root / f"{i // 100:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        kind = i % 4
        if kind == 1:
            sf.write(sub / f"call{i:05d}.wav", soxr.resample(x, SR, 16000), 16000, subtype="PCM_16")
        elif kind == 3:
            sf.write(sub / f"call{i:05d}.wav", np.stack([x, 0.5 * x[::-1]], 1), SR, subtype="PCM_16")
        else:
            sf.write(sub / f"call{i:05d}.flac", x, SR, subtype="PCM_16")
        total += len(x) / SR
    bad = root / "corrupt"
    bad.mkdir(exist_ok=True)
    (bad / "garbage.wav").write_bytes(os.urandom(50_000))
    (bad / "empty.flac").write_bytes(b"")
    good = next(root.rglob("*.flac")).read_bytes()
    (bad / "truncated.flac").write_bytes(good[: len(good) // 3])
    (bad / "header_only.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt ")
    stamp.write_text(json.dumps({"calls": calls, "seed": seed, "done": True}))
    return total


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (from /proc)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as fh:
                    todo += [int(c) for c in fh.read().split()]
        except OSError:
            pass
    return out


def _mem_kb(pid: int) -> tuple[int, int]:
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def run_config(
    args: argparse.Namespace,
    paths: list[str],
    device: str,
    workers: int,
    label: str,
    engine: str = "local",
    fingerprints: bool = True,
) -> dict:
    db = Path(tempfile.mkdtemp(prefix="bench-scan-")) / ("r.parquet" if engine == "ray-parquet" else "r.db")
    cmd = [sys.executable, __file__, "--child", "--device", device, "--workers", str(workers), "--db", str(db)]
    cmd += ["--model-in-main"] if args.model_in_main else []
    cmd += [] if fingerprints else ["--no-fingerprints"]
    if engine != "local":  # "ray" (fused), "ray-split", or "ray-parquet" (fused, the workers write Parquet)
        cmd += ["--engine", "ray", "--model-actors", "1" if engine == "ray-split" else "0"]
    cmd += ["--model", args.model or ""] + ["--paths", *paths]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    peak = {"rss": 0, "pss": 0, "main_rss": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            mems = [_mem_kb(p) for p in process_tree(proc.pid)]
            peak["rss"] = max(peak["rss"], sum(m[0] for m in mems))
            peak["pss"] = max(peak["pss"], sum(m[1] for m in mems))
            peak["main_rss"] = max(peak["main_rss"], mems[0][0] if mems else 0)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    stop.set()
    sampler.join()
    stats = json.loads(out.strip().splitlines()[-1])
    stats.update(label=label, peak_rss_mb=peak["rss"] / 1024, peak_pss_mb=peak["pss"] / 1024)
    stats["peak_main_rss_mb"] = peak["main_rss"] / 1024
    shutil.rmtree(db.parent, ignore_errors=True)
    return stats


def child(args: argparse.Namespace) -> None:
    import torch

    import robodetect
    from robodetect.batch import scan
    from robodetect.model import ModelConfig, RobotNet, save_model
    from robodetect.parquetstore import ParquetStore
    from robodetect.store import ResultStore

    if args.model:
        detector = robodetect.load(args.model, device=args.device)
    else:  # same architecture and cost as the shipped model, seeded random weights
        torch.manual_seed(0)
        stem = Path(tempfile.mkdtemp()) / "bench-model"
        save_model(RobotNet(ModelConfig(version="bench-random")), stem)
        detector = robodetect.load(stem, device=args.device)
    ray_init = None
    with (ParquetStore if args.db.endswith(".parquet") else ResultStore)(args.db) as store:
        if args.engine == "ray":  # a local Ray on the same CPUs; its start-up is timed apart
            from robodetect.rayscan import init_ray, scan_ray

            t = time.perf_counter()
            init_ray(None, args.workers)
            ray_init = time.perf_counter() - t
            stats = scan_ray(
                args.paths,
                store,
                detector,
                model_actors=args.model_actors or None,
                fingerprints=not args.no_fingerprints,
            )
        else:
            stats = scan(
                args.paths,
                store,
                detector,
                workers=args.workers,
                model_in_workers=not args.model_in_main,
                fingerprints=not args.no_fingerprints,
            )
    d = {k: getattr(stats, k) for k in ("files", "errors", "rows", "windows", "audio_seconds", "wall_seconds")}
    d["ray_init_seconds"] = ray_init
    if args.db.endswith(".parquet"):  # what the first summary/export/report pays: the reading index
        from robodetect.parquetstore import index

        t = time.perf_counter()
        index(args.db)
        d["index_seconds"] = time.perf_counter() - t
    d.update(stage_seconds=stats.stage_seconds, realtime=stats.realtime_factor, device=str(detector.device))
    d["model"] = detector.model_version
    print(json.dumps(d))


def report(s: dict) -> str:
    stages = ", ".join(f"{k} {v:.1f}" for k, v in sorted(s["stage_seconds"].items(), key=lambda kv: -kv[1]))
    return (
        f"{s['label']:<22} {s['realtime']:7.0f}x real time  {s['audio_seconds'] / 3600:6.2f} h audio in "
        f"{s['wall_seconds']:6.1f} s  files {s['files']} (errors {s['errors']})  windows {s['windows']}  "
        f"peak RSS {s['peak_rss_mb']:.0f} MB (PSS {s['peak_pss_mb']:.0f} MB, main {s['peak_main_rss_mb']:.0f} MB)\n"
        f"{'':<22} stage seconds: {stages}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / "robodetect-bench-archive"))
    ap.add_argument("--model", default=None, help="model name or stem (default: the shipped model)")
    ap.add_argument("--workers", type=int, default=None, help="N for the multi-worker run (default: usable CPUs)")
    ap.add_argument(
        "--model-in-main", action="store_true", help="one model stage in the main process (not in the CPU workers)"
    )
    ap.add_argument("--long", action="store_true", help="also score one 2-hour recording")
    ap.add_argument("--skip-single", action="store_true", help="skip the 1-worker CPU run")
    ap.add_argument(
        "--ray", action="store_true", help="also scan with --engine ray on a local Ray (fused and split layouts)"
    )
    ap.add_argument(
        "--no-fingerprints",
        action="store_true",
        help="also run the N-worker CPU scan with scan --no-fingerprints (no campaign fingerprints)",
    )
    ap.add_argument("--engine", default="local", help=argparse.SUPPRESS)
    ap.add_argument("--model-actors", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--paths", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    from robodetect.batch import available_cpus
    from robodetect.model import DEFAULT_MODEL

    args.model = args.model or DEFAULT_MODEL  # shipped inside the package
    args.workers = args.workers or available_cpus()
    root = Path(args.dir) / f"calls{args.calls}"
    t = time.perf_counter()
    seconds = build_archive(root, args.calls)
    print(f"archive: {root}: {args.calls} calls + 4 corrupt files, {seconds / 3600:.2f} h of audio "
          f"(built/checked in {time.perf_counter() - t:.0f} s)")  # fmt: skip
    print(
        f"machine: {os.cpu_count()} CPU cores, {args.workers} usable; load average {os.getloadavg()[0]:.1f} at start; "
        f"model stage {'in the main process' if args.model_in_main else 'in the workers (CPU)'}"
    )
    configs = [] if args.skip_single else [("cpu", 1, "cpu, 1 worker", True)]
    configs.append(("cpu", args.workers, f"cpu, {args.workers} workers", True))
    if args.no_fingerprints:
        configs.append(("cpu", args.workers, f"cpu, {args.workers} w, no fp", False))
    import torch

    if torch.cuda.is_available():
        configs.append(("cuda", args.workers, f"cuda, {args.workers} workers", True))
    for device, workers, label, fingerprints in configs:
        run = run_config(args, [str(root)], device, workers, label, fingerprints=fingerprints)
        print(report(run), flush=True)
    if args.ray:
        for engine, label in (
            ("ray", "ray, fused actors"),
            ("ray-split", "ray, tasks + 1 model actor"),
            ("ray-parquet", "ray, fused, Parquet out"),
        ):
            s = run_config(args, [str(root)], "cpu", args.workers, label, engine)
            print(
                report(s)
                + f"\n{'':<22} Ray start-up {s['ray_init_seconds']:.1f} s (not in the wall time)"
                + (f"; reading index built in {s['index_seconds']:.1f} s" if "index_seconds" in s else ""),
                flush=True,
            )
    if args.long:
        long_path = Path(args.dir) / "long_2h.flac"
        if not long_path.exists():
            rng = np.random.default_rng(1)
            pool = _utterances(rng, 300)
            with sf.SoundFile(long_path, "w", SR, 1, subtype="PCM_16") as fh:
                for _ in range(24):  # 24 x 5 min, written in parts
                    fh.write(_call(rng, pool, 300.0))
        s = run_config(args, [str(long_path)], "cpu", 1, "one 2-hour call")
        print(report(s), flush=True)


if __name__ == "__main__":
    main()
