"""``robodetect scan --engine ray``: the local scan's stages on Ray Data (optional extra ``[ray]``).

Ray's batch-inference pattern, with the functions the local scan calls (no copy):

* **driver**: walks the inputs (:func:`robodetect.batch.iter_inputs`: folders, files, ``@list``)
  in chunks of :data:`CHUNK_FILES`; for each path it looks up the store (resume: a file already
  scored with this model and unchanged content is skipped by its worker after the 128 KiB content
  hash, before it is decoded, exactly as locally); writes every finished file into the same
  SQLite :class:`~robodetect.store.ResultStore` (one SAVEPOINT per file, grouped commits) or,
  with a Parquet dataset (:class:`~robodetect.parquetstore.ParquetStore`), only counts the files
  the workers wrote: the last stage writes each batch as one Parquet part.
* **stage 1** (CPU): :func:`robodetect.batch._work`: stat, content hash, decode + resample
  (µ-law, GSM, MP3 decode on the worker exactly as locally), VAD, timing features, campaign
  fingerprint.
* **stage 2** (model): the detector's fast model, loaded once per actor, windows of many files
  per batch, then :meth:`Detector.finalize` and :func:`robodetect.batch.file_results`.

Two layouts (``docs/scale-out.md`` has the measurements behind the default):

* ``fused`` (the CPU default): one actor pool (:class:`ray.data.ActorPoolStrategy`, one CPU per
  actor) runs stage 1 *and* scores its own windows on one thread, the split the local CPU scan
  measured fastest: no speech crosses the object store.
* ``split`` (``--device cuda``, or ``model_actors`` on CPU): stage 1 as Ray tasks
  (:class:`ray.data.TaskPoolStrategy`), stage 2 a pool of model actors (``num_gpus=1`` each on
  CUDA). Recordings longer than :data:`robodetect.longaudio.LONG_SECONDS` are scored inside
  stage 1 on CPU (file-backed, memory flat in recording length) instead of shipping hours of
  speech to an actor.

Failures: a file that cannot be read is an error row, as locally. A worker or actor that dies is
retried by Ray (:data:`RAY_RETRIES` times); a chunk that still fails is split in halves and run
again until the file that kills its worker is alone, which then becomes an error row. The store
replaces rows by (path, channel mode, model key), and the driver writes each path once per run,
so a retried task never leaves a duplicate row.
"""

from __future__ import annotations

import copy
import logging
import os
import pickle
import signal
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from . import batch as _batch
from .audio import display_path
from .batch import (
    COMMIT_SECONDS,
    SPILL_PREFIX,
    ScanInterrupted,
    ScanStats,
    _Progress,
    _Task,
    _with_wall,
    _work,
    available_cpus,
    file_results,
    iter_inputs,
)
from .detector import Detector
from .longaudio import SignalFile, is_long
from .parquetstore import file_records, part_name, write_part
from .scoring import cut_windows
from .store import FileMeta, ResultStore

RAY_HINT = "the Ray engine needs the [ray] extra: pip install 'robodetect[ray]' (Ray Data 2.x)"
CHUNK_FILES = 1000  # paths per Ray dataset: bounds the driver's and the object store's memory
FILES_PER_BLOCK = 4  # files per Ray block (one task): small, so work spreads over the pool
ACTOR_BATCH_FILES = 4  # files per stage-2 call: their windows are scored together
RAY_RETRIES = 2  # Ray retries of a failed task / restarts of a dead actor before giving up


def ray_missing() -> str | None:
    """None when Ray Data imports, else the one-line install hint."""
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except Exception:  # ImportError, or a broken install
        return RAY_HINT
    return None


# ---- the remote side --------------------------------------------------------------------------
@dataclass
class _Stage1:
    """What a stage-1 call needs (pickled into the Ray tasks / actors)."""

    channel: str
    max_seconds: float | None
    detector: Detector  # CPU copy: its VAD for every file; scores long recordings in place (and
    # everything in the fused layout)
    fused: bool
    hook: Callable[[str], None] | None = None  # fault injection for tests
    out_dir: str | None = None  # a Parquet result dataset: the last stage writes its files there
    version: str = ""  # the model key the rows carry (Parquet)
    run_id: str = ""  # this scan's id in part names (Parquet)
    fingerprint: bool = True  # False: scan --no-fingerprints (the rows say so)

    def run(self, path_b: bytes, known: str) -> dict:
        path = os.fsdecode(path_b)
        if self.hook is not None:
            self.hook(path)
        score = self.fused or is_long(path)
        if score and _batch._WORKER_MODEL is None:  # once per worker process
            torch.set_num_threads(1)
            _batch._WORKER_MODEL = self.detector.fast_model
        vad = self.detector.vad_config
        task = _Task(
            path,
            self.channel,
            known or None,
            vad,
            _spill_dir(),
            self.max_seconds,
            score,
            self.detector.hop_samples,
            self.fingerprint,
        )
        msg = _work(task)
        if msg.get("kind") == "ok":  # speech spilled to a node-local temp file travels inline
            msg["channels"] = [(a, _inline(s), spans) for a, s, spans in msg["channels"]]
        elif msg.get("kind") == "scored":
            msg = _finish(self.detector, self.channel, msg)
        return msg


_SPILL_DIR: str | None = None


def _spill_dir() -> str:
    global _SPILL_DIR
    if _SPILL_DIR is None or not os.path.isdir(_SPILL_DIR):
        _SPILL_DIR = tempfile.mkdtemp(prefix=f"{SPILL_PREFIX}ray-{os.getpid()}-")
    return _SPILL_DIR


def _inline(speech):
    if isinstance(speech, tuple):
        f = SignalFile.open(*speech)
        try:
            return np.array(f.read(0, len(f)), np.float32)
        finally:
            f.close()
    return speech


def _on_device(detector: Detector, device: str) -> Detector:
    """``detector`` on ``device`` (a copy of its model: the caller's detector is left as it is),
    with the same threshold and uncertain band."""
    if detector.device.type == device:
        return detector
    moved = Detector(copy.deepcopy(detector.model), device=device, vad_config=detector.vad_config)
    moved.decision = detector.decision
    return moved


def _finish(detector: Detector, channel: str, msg: dict) -> dict:
    """A stage-1 message whose ``channels`` hold (analysis, logits, prosody) -> the file's result
    rows ("done")."""
    channels = msg.pop("channels")
    t = time.perf_counter()
    results = [detector.finalize(a, logits, pros) for a, logits, pros in channels]
    msg["results"] = file_results(results, channel)
    msg["windows"] = int(sum(len(logits) for _, logits, _ in channels))
    msg["timing"]["finalize"] = time.perf_counter() - t
    msg["kind"] = "done"
    return msg


def _stage1_batch(rows: dict, stage: _Stage1) -> dict:
    """Ray task (split layout): stage 1 for each row of a block."""
    return _pickled([stage.run(p, k) for p, k in zip(rows["path"], rows["known"])])


def _pickled(msgs: list[dict]) -> dict:
    return {"msg": np.array([pickle.dumps(m, protocol=5) for m in msgs], dtype=object)}


def _emit(stage: _Stage1, msgs: list[dict]) -> dict:
    """The last stage's output. With a Parquet dataset the batch's finished files are written here,
    as one part named by its files (a retried batch replaces it); the driver only counts them."""
    if stage.out_dir:
        records, names = [], []
        for m in msgs:
            if m["kind"] in ("done", "error"):
                error = m.get("error") if m["kind"] == "error" else None
                records += file_records(m["path"], stage.channel, stage.version, m["meta"], m.get("results", []), error)
                names.append(os.fsencode(m["path"]))
                m["meta"] = FileMeta()  # the fingerprint stays in the part
        write_part(stage.out_dir, records, part_name(stage.run_id, names))
    return _pickled(msgs)


class _FusedActor:
    """Actor (fused layout): stage 1 and the model, one thread, the model loaded once."""

    def __init__(self, stage_ref: list):
        import ray

        torch.set_num_threads(1)
        self.stage = ray.get(stage_ref[0])

    def __call__(self, rows: dict) -> dict:
        return _emit(self.stage, [self.stage.run(p, k) for p, k in zip(rows["path"], rows["known"])])


class _ModelActor:
    """Actor (split layout): the fast model on ``device``, loaded once; scores the windows of
    every file in a batch together, then finalizes them."""

    def __init__(self, stage_ref: list, device: str):
        import ray

        stage = ray.get(stage_ref[0])
        if device == "cpu":
            torch.set_num_threads(1)
        self.detector, self.channel, self.stage = _on_device(stage.detector, device), stage.channel, stage

    def __call__(self, rows: dict) -> dict:
        msgs = [pickle.loads(m) for m in rows["msg"]]
        todo = [m for m in msgs if m.get("kind") == "ok"]
        t = time.perf_counter()
        spans = [(a, s, sp) for m in todo for a, s, sp in m["channels"]]
        windows = [cut_windows(s, sp) for _, s, sp in spans]
        logits, pros = self.detector.window_logits(np.concatenate(windows) if windows else np.zeros((0, 1)))
        model_seconds = time.perf_counter() - t
        at = 0
        for m in todo:
            scored = []
            for a, _, sp in m["channels"]:
                scored.append((a, logits[at : at + len(sp)], pros[at : at + len(sp)]))
                at += len(sp)
            m["channels"] = scored
            m["timing"]["model"] = model_seconds / len(todo)
            _finish(self.detector, self.channel, m)
        return _emit(self.stage, msgs)


# ---- the driver -------------------------------------------------------------------------------
class _Stop(Exception):
    def __init__(self, signum: int):
        self.signum = signum


def _chunks(paths: Iterator[str], n: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for p in paths:
        chunk.append(p)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _quiet_ray_data() -> None:
    import ray.data

    ctx = ray.data.DataContext.get_current()
    for name, value in (
        ("enable_progress_bars", False),
        ("enable_operator_progress_bars", False),
        ("print_on_execution_start", False),
        ("enable_auto_log_stats", False),
        ("verbose_stats_logs", False),
    ):
        if hasattr(ctx, name):
            setattr(ctx, name, value)
    logging.getLogger("ray").setLevel(logging.ERROR)
    logging.getLogger("ray.data").setLevel(logging.ERROR)


def init_ray(address: str | None, cpus: int | None = None) -> bool:
    """Connect to (``address``: "auto" or HOST:PORT) or start (None: ``cpus`` CPUs) Ray; returns
    True when this call started it (the caller shuts it down)."""
    import ray

    if ray.is_initialized():
        return False
    common = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    if address:
        ray.init(address=address, **common)
    else:
        # Ray starts its workers at nice 15: on a machine with any other load they starve (a
        # 10-file scan took 140 s beside a training job); ours do the scan's work, so nice 0
        os.environ.setdefault("RAY_worker_niceness", "0")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine
        ray.init(num_cpus=cpus or available_cpus(), **common)
    return True


def scan_ray(
    paths: Iterable[str],
    store: ResultStore,
    detector: Detector,
    *,
    channel: str = "auto",
    device: str = "cpu",
    address: str | None = None,
    workers: int | None = None,
    model_actors: int | None = None,
    rescore: bool = False,
    max_seconds: float | None = None,
    progress: bool = False,
    on_file: Callable[[str, list, str | None], None] | None = None,
    commit_seconds: float = COMMIT_SECONDS,
    chunk_files: int = CHUNK_FILES,
    handle_signals: bool = True,
    fingerprints: bool = True,
    _hook: Callable[[str], None] | None = None,
) -> ScanStats:
    """:func:`robodetect.batch.scan` on Ray: the same rows in the same store.

    address: None starts a local Ray with ``workers`` CPUs (default: this machine's usable CPUs);
    "auto" or HOST:PORT joins a running cluster (``ray start``). workers: stage-1 actors/tasks
    (default: the cluster's CPUs, less the model actors on CPU). model_actors: None on CPU = the
    fused layout; N = the split layout with N model actors (on CUDA default: the cluster's GPUs,
    one each). fingerprints: as in :func:`robodetect.batch.scan`. On SIGINT/SIGTERM: committed
    files stay, :class:`ScanInterrupted` is raised.
    """
    missing = ray_missing()
    if missing:
        raise RuntimeError(missing)
    import ray
    import ray.data
    from ray.data import ActorPoolStrategy, TaskPoolStrategy

    started = init_ray(address, workers)
    _quiet_ray_data()
    cpu_detector = _on_device(detector, "cpu")
    cluster = ray.cluster_resources()
    cpus = max(1, int(cluster.get("CPU", 1)))
    if device == "auto":
        device = "cuda" if cluster.get("GPU") else "cpu"
    cuda = device.startswith("cuda")
    device = "cuda" if cuda else "cpu"  # each GPU actor sees its own GPU as cuda:0
    if cuda and not cluster.get("GPU"):
        raise RuntimeError("--device cuda: the Ray cluster has no GPU")
    split = cuda or bool(model_actors)
    n_model = (model_actors or max(1, int(cluster.get("GPU", 0)))) if split else 0
    n_stage1 = workers or max(1, cpus - (0 if cuda else n_model))
    version = detector.model_key
    out_dir = os.path.abspath(store.path) if getattr(store, "workers_write", False) else None
    run_id = getattr(store, "run_id", "")
    stage = _Stage1(channel, max_seconds, cpu_detector, not split, _hook, out_dir, version, run_id, fingerprints)
    # actors get the model through a reference the driver keeps alive (a restarted actor finds it
    # again); passed by value, Ray would put it in the object store per actor and warn about restarts
    stage_ref = ray.put(stage)
    stats = ScanStats()
    total = None
    if progress:
        paths = list(paths)
        total = sum(1 for _ in iter_inputs(paths))
    bar = _Progress(total, progress)
    t_start = time.perf_counter()
    last_commit = [time.perf_counter()]
    # bounded retries (Ray Data's default is to retry forever: a file that kills its worker would hang
    # the scan); a file still failing after them is isolated and becomes an error row (run)
    actor_retry = {"ray_remote_args_fn": lambda: {"max_restarts": RAY_RETRIES, "max_task_retries": RAY_RETRIES}}
    task_retry = {"ray_remote_args_fn": lambda: {"max_retries": RAY_RETRIES}}

    def pipeline(items: list[dict]):
        with warnings.catch_warnings():
            # Ray Data 2.60 deprecates ray_remote_args_fn (removal announced for 2.64, hence the
            # extra's pin) but offers no other way to bound retries: without it a file that kills
            # its worker is retried forever
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
            return _pipeline(items)

    def _pipeline(items: list[dict]):
        blocks = max(1, -(-len(items) // FILES_PER_BLOCK))
        ds = ray.data.from_items(items, override_num_blocks=blocks)
        if not split:
            return ds.map_batches(
                _FusedActor,
                fn_constructor_kwargs={"stage_ref": [stage_ref]},
                compute=ActorPoolStrategy(size=min(n_stage1, blocks)),  # no idle actors on a small chunk
                batch_size=FILES_PER_BLOCK,
                batch_format="numpy",
                num_cpus=1,
                **actor_retry,
            )
        ds = ds.map_batches(
            _stage1_batch,
            fn_kwargs={"stage": stage},
            compute=TaskPoolStrategy(size=n_stage1),
            batch_size=FILES_PER_BLOCK,
            batch_format="numpy",
            num_cpus=1,
            **task_retry,
        )
        return ds.map_batches(
            _ModelActor,
            fn_constructor_kwargs={"stage_ref": [stage_ref], "device": device},
            compute=ActorPoolStrategy(size=min(n_model, blocks)),
            batch_size=ACTOR_BATCH_FILES,
            batch_format="numpy",
            num_cpus=0 if cuda else 1,
            num_gpus=1 if cuda else 0,
            **actor_retry,
        )

    def write(path: str, msg: dict) -> None:
        for k, v in msg.get("timing", {}).items():
            name = k if k in ("model", "finalize") else f"worker_{k}"
            stats.stage_seconds[name] = stats.stage_seconds.get(name, 0.0) + v
        if msg["kind"] == "skip":
            stats.skipped += 1
            return
        error = msg.get("error") if msg["kind"] == "error" else None
        results = msg.get("results", [])
        t = time.perf_counter()
        if out_dir is None:  # a Parquet dataset: the worker wrote the file
            store.write_file(path, channel, version, msg["meta"], results, error)
        stats.count_file(results, error)
        stats.windows += msg.get("windows", 0)
        if on_file:
            on_file(path, results, error)
        if time.perf_counter() - last_commit[0] >= commit_seconds:
            store.commit()
            last_commit[0] = time.perf_counter()
        stats.stage_seconds["store"] = stats.stage_seconds.get("store", 0.0) + time.perf_counter() - t
        bar.update(_with_wall(stats, t_start))

    def run(items: list[dict], done: set[bytes]) -> None:
        """Score ``items``; on a failure Ray could not retry away, halve what is left and retry."""
        batches = iter(pipeline(items).iter_batches(batch_size=None, batch_format="numpy"))
        while True:
            try:  # only Ray's side is caught here: a store error stops the scan as locally
                out = next(batches, None)
            except (KeyboardInterrupt, _Stop):
                raise
            except Exception as exc:
                failed = exc
                break
            if out is None:
                return
            for raw in out["msg"]:
                msg = pickle.loads(raw)
                key = os.fsencode(msg["path"])
                if key not in done:  # a retried task never writes a file twice
                    done.add(key)
                    write(msg["path"], msg)
        left = [it for it in items if it["path"] not in done]
        if len(left) == 1:  # alone and still failing: this file kills its worker
            path = os.fsdecode(left[0]["path"])
            done.add(left[0]["path"])
            reason = " ".join(str(failed).split())[:200]
            msg = {
                "kind": "error",
                "path": path,
                "meta": FileMeta(),
                "error": f"{display_path(path)}: worker died: {reason}",
            }
            if out_dir is not None:
                _emit(stage, [msg])
            write(path, msg)
        elif left:
            half = len(left) // 2
            run(left[:half], done)
            run(left[half:], done)

    old = {}
    if handle_signals and threading.current_thread() is threading.main_thread():

        def on_term(signum, frame):
            raise _Stop(signum)

        old = {signal.SIGTERM: signal.signal(signal.SIGTERM, on_term)}
    try:
        for chunk in _chunks(iter_inputs(paths), chunk_files):
            items = []
            for p in chunk:
                known = None if rescore else store.scored_hash(p, channel, version, fingerprinted=fingerprints)
                items.append({"path": os.fsencode(p), "known": known or ""})
            run(items, set())
        store.commit()
    except (KeyboardInterrupt, _Stop) as exc:
        store.commit()
        raise ScanInterrupted(getattr(exc, "signum", signal.SIGINT), _with_wall(stats, t_start)) from None
    finally:
        for signum, handler in old.items():
            signal.signal(signum, handler)
        if started:
            ray.shutdown()
        _with_wall(stats, t_start)
        bar.update(stats, force=True)
        bar.close()
    return stats


__all__ = ["scan_ray", "ray_missing", "init_ray", "RAY_HINT"]
