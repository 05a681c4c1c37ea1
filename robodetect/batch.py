"""Score many files: a pool of CPU workers, windows packed across calls, results into a store.

:func:`scan` is the engine behind ``robodetect scan``. The work is split like
:meth:`Detector.score_file`, so scores are the same (test_scan checks it):

1. **workers** (``workers`` processes, one torch thread each; default: every usable CPU,
   :func:`available_cpus`): stat + content hash, decode/resample (:func:`load_audio`), VAD,
   speech extraction and timing features (:func:`analyze_speech`). On CPU (the default,
   ``model_in_workers``) the worker also scores its windows with the detector's fast model and
   sends back logits + prosody: the model stage then scales with the cores (docs/benchmarks.md).
   Otherwise it sends back the speech-only signal and the window spans, not the cut windows (half
   the bytes: windows overlap by half); very long speech (> :data:`SPILL_BYTES`) travels through
   a temporary ``.npy`` file that the main process memory-maps, so a 2-hour call is never pickled.
2. **main process, model stage** (CUDA, or ``model_in_workers=False``): windows from many calls
   are copied into one batch buffer (fixed-length windows, so packing is padding-free; pinned
   memory and non-blocking copies on CUDA, bf16 autocast for the CNN) and scored with
   :attr:`Detector.fast_model` (batch-norm folded, channels-last: the same fast path as
   ``Detector.score`` and the stream; logits within 1e-5 of the eager model).
3. **main process, finalize + store**: :meth:`Detector.finalize` per channel, then all rows of a
   file are written to the :class:`~robodetect.store.ResultStore` together; commits are grouped
   (every :data:`COMMIT_SECONDS`), so a crash loses at most the last uncommitted group.

Resume: a file is skipped when the store has an error-free row with the same
(path, channel mode, :attr:`Detector.model_key`, content hash); errors are retried; ``rescore`` forces.
The store's ``model_version`` column holds that key: the version, a hash of the weights and the
full model JSON, and the threshold/band when overridden.

Supervision (:mod:`robodetect.workers`): a worker that dies (OOM killer, decoder crash) turns the
file it was decoding into an error row naming the signal; a fresh worker takes over its queue.
Signals: workers ignore SIGINT; on SIGINT/SIGTERM the main process stops taking files, drops work
in progress, commits the files already written (each file is all-or-nothing), removes its temp
folder and raises :class:`ScanInterrupted` (the CLI exits 130 / 143).
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from .audio import AUDIO_EXTENSIONS, AudioError, check_regular_file, display_path, load_audio
from .campaigns import fingerprint_channels
from .detector import CPU_BATCH_WINDOWS, CUDA_BATCH_WINDOWS, Analysis, Detector, analyze_speech, call_verdict
from .features import HOP_SAMPLES, WINDOW_SAMPLES
from .longaudio import SignalFile, analyze_file, is_long
from .scoring import Span, cut_window, cut_windows
from .store import FileMeta, ResultStore
from .vad import (
    VadConfig,
)
from .workers import WorkerDied, WorkerPool, pid_alive

HASH_EDGE_BYTES = 64 * 1024  # content hash = blake2b(size, first and last 64 KiB)
SPILL_BYTES = 32 * 1024 * 1024  # speech larger than this (~17 min) goes through a temp file
# group commits: at most this much finished work is lost in a crash; longer groups write each page
# of the fingerprint hash index once per group instead of once per few files (1 s: the store
# stage's fingerprint cost -30 % against 0.25 s, scripts/bench_campaigns.py)
COMMIT_SECONDS = 1.0
POLL_SECONDS = 0.25  # the main loop's longest wait for a worker (Ctrl-C, progress)
SPILL_PREFIX = "robodetect-scan-"  # temp folder: robodetect-scan-<pid>-<random>


class ScanInterrupted(Exception):
    """SIGINT / SIGTERM stopped a scan; every file written before it is committed."""

    def __init__(self, signum: int, stats: ScanStats):
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum, self.stats = signum, stats


# ---- inputs ---------------------------------------------------------------------------------
def iter_inputs(paths: Iterable[str]) -> Iterator[str]:
    """Expand folders (recursively, sorted, audio extensions only), ``@list.txt`` files (one path
    per line, ``#`` comments) and plain files into absolute paths, each once."""
    seen: set[str] = set()
    for item in _expand(paths):
        p = os.path.abspath(item)
        if p not in seen:
            seen.add(p)
            yield p


def _expand(paths: Iterable[str]) -> Iterator[str]:
    for p in paths:
        if p.startswith("@"):
            # a listed name that is not UTF-8 is the file's raw bytes (os.fsdecode's surrogateescape)
            with open(p[1:], encoding="utf-8", errors="surrogateescape") as fh:
                lines = [line.strip() for line in fh]
            yield from _expand(line for line in lines if line and not line.startswith("#"))
        elif os.path.isdir(p):
            # a folder os.walk cannot list (permissions, a path over PATH_MAX) is yielded itself:
            # the worker turns it into an error row with the reason instead of a silent skip
            unreadable: list[str] = []
            for root, dirs, files in os.walk(p, onerror=lambda exc, out=unreadable: out.append(exc.filename)):
                yield from unreadable
                unreadable.clear()
                dirs.sort()
                for name in sorted(files):
                    if name.lower().endswith(AUDIO_EXTENSIONS):
                        yield os.path.join(root, name)
            yield from unreadable
        else:
            yield p  # named explicitly: scored whatever its extension; a missing file is an error row


def content_hash(path: str, size: int) -> str:
    """blake2b-128 of the size and the first and last 64 KiB: two small reads per file, so
    re-checking a million-file archive is cheap; any change of length or of the header/tail
    (where encoders and editors write) is detected. A same-size edit confined to the middle
    of a large file is not: use ``rescore`` after such edits."""
    h = hashlib.blake2b(str(size).encode(), digest_size=16)
    with open(path, "rb") as fh:
        h.update(fh.read(HASH_EDGE_BYTES))
        if size > 2 * HASH_EDGE_BYTES:
            fh.seek(size - HASH_EDGE_BYTES)
        h.update(fh.read(HASH_EDGE_BYTES))
    return h.hexdigest()


# ---- stage 1 (workers) ----------------------------------------------------------------------
@dataclass
class _Task:
    path: str
    channel_mode: str
    known_hash: str | None  # skip when the content hash equals this
    vad_config: VadConfig
    spill_dir: str
    max_seconds: float | None = None
    score: bool = False  # run the model here too (CPU scans): send back logits, not speech
    hop: int = HOP_SAMPLES  # the model's window hop (scoring.window_spans)
    fingerprint: bool = True  # False: no campaign fingerprint (the store marks the file)


#: the fast model in a worker process that scores its own windows (set by _worker_init)
_WORKER_MODEL: torch.nn.Module | None = None


@torch.inference_mode()
def _score_in_worker(speech: np.ndarray, spans: list[Span]) -> tuple[np.ndarray, np.ndarray]:
    """(logits, prosody) of the windows ``spans`` of ``speech``, CPU_BATCH_WINDOWS at a time (one
    thread: the process is one of ``workers`` running side by side)."""
    logits, prosody = np.empty(len(spans), np.float32), np.empty((len(spans), 6), np.float32)
    for i in range(0, len(spans), CPU_BATCH_WINDOWS):
        wav = torch.from_numpy(cut_windows(speech, spans[i : i + CPU_BATCH_WINDOWS]))
        feats, pros = _WORKER_MODEL.features(wav)
        logits[i : i + len(wav)] = _WORKER_MODEL.head(feats, pros).numpy()
        prosody[i : i + len(wav)] = pros.numpy()
    return logits, prosody


def _error(path: str, exc: BaseException) -> str:
    """One line: the file's (display) name and the reason."""
    if isinstance(exc, AudioError):
        return " ".join(str(exc).splitlines())
    if isinstance(exc, OSError):
        return f"{display_path(path)}: cannot read ({exc.strerror or type(exc).__name__})"
    return f"{display_path(path)}: {type(exc).__name__}: {' '.join(str(exc).split())}"


def _check_input(path: str) -> os.stat_result:
    """stat of a regular file, or AudioError; a folder here is one os.walk could not list."""
    try:
        return check_regular_file(path)
    except AudioError:
        if os.path.isdir(path):
            try:
                os.scandir(path).close()
            except OSError as exc:
                raise AudioError(f"{display_path(path)}: cannot read folder ({exc.strerror})") from None
        raise


def _work(task: _Task) -> dict:
    """Stage 1 for one file; never raises (a failure is an ``error`` message)."""
    t0 = time.perf_counter()
    msg: dict = {"path": task.path, "meta": FileMeta(), "timing": {}}
    try:
        st = _check_input(task.path)
        msg["meta"] = FileMeta(size=st.st_size, mtime=st.st_mtime)
        msg["meta"].content_hash = content_hash(task.path, st.st_size)
        t1 = time.perf_counter()
        msg["timing"]["hash"] = t1 - t0
        if task.known_hash is not None and task.known_hash == msg["meta"].content_hash:
            msg["kind"] = "skip"
            return msg
        channels = []
        model_seconds = 0.0
        if is_long(task.path):  # file-backed stage 1: memory flat in recording length
            stream, parts, head = analyze_file(
                task.path,
                task.channel_mode,
                task.vad_config,
                hop=task.hop,
                max_seconds=task.max_seconds,
                tmp_dir=task.spill_dir,
                keep_names=not task.score,
            )
            t2 = time.perf_counter()
            msg["timing"]["decode"] = 0.0
            rate, named = stream.orig_sample_rate, parts
        else:
            audio = load_audio(task.path, task.channel_mode, max_seconds=task.max_seconds)
            t2 = time.perf_counter()
            msg["timing"]["decode"] = t2 - t1
            rate, head, named = audio.orig_sample_rate, audio.samples, None
        msg["meta"].sample_rate = rate
        t_fp = time.perf_counter()
        if task.fingerprint:  # for campaigns (a long call: its first minutes)
            msg["meta"].fingerprint = fingerprint_channels(head)
        t_vad = time.perf_counter()
        msg["timing"]["fingerprint"] = t_vad - t_fp
        if named is None:
            named = [
                analyze_speech(row, name, task.vad_config, task.hop)
                for row, name in zip(audio.samples, audio.channel_names)
            ]
            del audio
        del head
        for analysis, speech, spans in named:
            analysis.path, analysis.sample_rate = task.path, rate
            if task.score:
                t = time.perf_counter()
                channels.append((analysis, *_score_in_worker(speech, spans)))
                model_seconds += time.perf_counter() - t
                if isinstance(speech, SignalFile):
                    speech.close()
                continue
            if isinstance(speech, SignalFile):  # the main process opens it by name
                speech.close(unlink=False)
                speech = (speech.path, len(speech))
            elif speech.nbytes > SPILL_BYTES:  # never pickled: through a temp file
                spill = SignalFile.create(task.spill_dir, keep_name=True)
                spill.append(speech)
                spill.close(unlink=False)
                speech = (spill.path, len(spill))
            channels.append((analysis, speech, spans))
        msg["timing"]["vad_features"] = time.perf_counter() - t_vad - model_seconds
        if task.score:
            msg["timing"]["model"] = model_seconds
        msg["kind"], msg["channels"] = ("scored" if task.score else "ok"), channels
    except Exception as exc:  # one bad file never stops the scan
        msg["kind"], msg["error"] = "error", _error(task.path, exc)
    return msg


def _worker_init(parent_pid: int, model: torch.nn.Module | None = None) -> None:
    """One torch thread per worker; ``model``: score windows here. Workers exit on their own when
    the main process dies (even by SIGKILL)."""
    global _WORKER_MODEL
    torch.set_num_threads(1)
    _WORKER_MODEL = model

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


# ---- stage 2 (main process) -----------------------------------------------------------------
class _ModelRunner:
    """Packs windows into a (pinned) buffer and scores them with the detector's fast model.

    On CUDA one batch is in flight while the CPU packs the next: :meth:`submit` first collects the
    previous batch (its device->host copies were queued right after its kernels, into pinned memory,
    and an event marks them done), then launches the new one and returns at once. Two input buffers
    alternate so packing never overwrites rows whose host->device copy may still be running.
    """

    def __init__(self, detector: Detector, batch_windows: int, autocast: bool):
        self.device = detector.device
        self.cuda = self.device.type == "cuda"
        self.model = detector.fast_model
        self.batch = batch_windows
        self.amp_dtype = torch.bfloat16 if self.cuda and torch.cuda.is_bf16_supported() else torch.float16
        self.autocast = autocast and self.cuda
        self.buffers = [torch.empty((batch_windows, WINDOW_SAMPLES), pin_memory=self.cuda) for _ in range(2)]
        self.which = 0
        self.in_flight: tuple | None = None

    @torch.inference_mode()
    def submit(self, n: int, owners: list) -> list:
        """Score rows [:n] of the current buffer; returns the results that are now complete, as
        (owner, logits, prosody): on CPU this batch's, on CUDA the previous batch's."""
        done = self.collect()  # before launching: waits only for the previous batch, not this one
        wav = self.buffers[self.which][:n].to(self.device, non_blocking=True)
        feats, pros = self.model.features(wav)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.autocast):
            logits = self.model.head(feats, pros)
        logits, pros = logits.float(), pros.float()
        event = None
        if self.cuda:
            host = [torch.empty(t.shape, dtype=t.dtype, pin_memory=True) for t in (logits, pros)]
            host[0].copy_(logits, non_blocking=True)
            host[1].copy_(pros, non_blocking=True)
            logits, pros = host
            event = torch.cuda.Event()
            event.record()
        self.in_flight = (logits, pros, owners, event)
        self.which = 1 - self.which if self.cuda else 0
        return done if self.cuda else self.collect()

    def collect(self) -> list:
        """The batch in flight, once its results are on the host (waits for it)."""
        if self.in_flight is None:
            return []
        logits, pros, owners, event = self.in_flight
        self.in_flight = None
        if event is not None:
            event.synchronize()
        logits, pros = logits.numpy(), pros.numpy()
        return [(owner, logits, pros) for owner in owners]

    @property
    def buffer(self) -> np.ndarray:
        return self.buffers[self.which].numpy()


def file_results(results: list, channel: str) -> list:
    """A file's per-channel results in channel order; one call verdict unless ``channel`` is
    "each" (auto: a two-party call gets its own verdict, :func:`call_verdict`)."""
    results = sorted(results, key=lambda r: r.channel)
    return results if channel == "each" or not results else [call_verdict(results)]


@dataclass
class _Channel:
    file: _File
    analysis: Analysis
    speech: np.ndarray
    spans: list[Span]
    logits: np.ndarray
    prosody: np.ndarray
    next: int = 0  # next window to put in a batch
    scored: int = 0


@dataclass
class _File:
    path: str
    meta: FileMeta
    results: list = field(default_factory=list)
    open_channels: int = 0


@dataclass
class ScanStats:
    """What a scan did; ``stage_seconds`` sums worker CPU stages and main-process stages."""

    files: int = 0
    skipped: int = 0
    errors: int = 0
    rows: int = 0
    labels: dict[str, int] = field(default_factory=dict)
    audio_seconds: float = 0.0
    windows: int = 0
    wall_seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def count_file(self, results: list, error: str | None) -> None:
        """One file written to the store: its rows (or its error row)."""
        self.files += 1
        if error is None:
            self.audio_seconds += results[0].duration_seconds if results else 0.0
            for r in results:
                self.labels[r.label] = self.labels.get(r.label, 0) + 1
            self.rows += len(results)
        else:
            self.errors += 1
            self.rows += 1

    @property
    def realtime_factor(self) -> float:
        return self.audio_seconds / max(self.wall_seconds, 1e-9)

    def line(self) -> str:
        labels = ", ".join(f"{v} {k}" for k, v in sorted(self.labels.items())) or "nothing scored"
        errors = f"{self.errors} error{'s' if self.errors != 1 else ''}"
        return (
            f"scanned {self.files} files in {self.wall_seconds:.1f} s: {labels}; {errors}, "
            f"{self.skipped} skipped (already scored); {self.audio_seconds / 3600:.2f} h of audio, "
            f"{self.realtime_factor:.0f}x real time"
        )


class _Progress:
    def __init__(self, total: int | None, enabled: bool):
        self.total, self.enabled, self.t0, self.last = total, enabled, time.perf_counter(), 0.0

    def update(self, stats: ScanStats, force: bool = False) -> None:
        now = time.perf_counter()
        if not self.enabled or (now - self.last < 0.5 and not force):
            return
        self.last = now
        elapsed = max(now - self.t0, 1e-9)
        done = stats.files + stats.skipped
        rate = done / elapsed
        eta = ""
        if self.total and rate > 0:
            eta = f" ETA {max(self.total - done, 0) / rate:.0f} s"
        of = f"/{self.total}" if self.total else ""
        sys.stderr.write(
            f"\r{done}{of} files  {rate:.1f} files/s  {stats.audio_seconds / 3600 / elapsed:.3f} audio h/s "
            f"({stats.audio_seconds / elapsed:.0f}x)  {stats.errors} errors{eta}   "
        )
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def scan(
    paths: Iterable[str],
    store: ResultStore,
    detector: Detector,
    *,
    channel: str = "auto",
    workers: int | None = None,
    rescore: bool = False,
    batch_windows: int | None = None,
    autocast: bool = True,
    progress: bool = False,
    on_file: Callable[[str, list, str | None], None] | None = None,
    commit_seconds: float = COMMIT_SECONDS,
    max_seconds: float | None = None,
    handle_signals: bool = True,
    model_in_workers: bool | None = None,
    fingerprints: bool = True,
) -> ScanStats:
    """Score every input file once into ``store``; returns :class:`ScanStats`.

    paths: folders, files or ``@list.txt`` (see :func:`iter_inputs`); any iterable, a generator
    included. workers: CPU worker processes (default: all cores). The detector's device is used
    for the model stage. commit_seconds: finished rows are committed at least this often (0: after
    every file). max_seconds: recordings longer than this become error rows. handle_signals: on
    SIGINT/SIGTERM (main thread only) stop cleanly and raise :class:`ScanInterrupted`.
    model_in_workers: each worker also scores its file's windows on one thread, and the main
    process only finalizes and stores (default on CPU: it scales with the cores, see
    docs/benchmarks.md); False: one model stage in the main process (always on CUDA).
    fingerprints: take each file's campaign fingerprint (False: a fifth less CPU, but ``campaigns``
    cannot link these files; their rows say ``fingerprinted = 0``, and a later scan with
    fingerprints re-processes them).
    """
    cpus = available_cpus()
    workers = max(1, workers or cpus)
    cuda = detector.device.type == "cuda"
    in_workers = not cuda and (model_in_workers is None or model_in_workers)
    batch_windows = batch_windows or (CUDA_BATCH_WINDOWS if cuda else CPU_BATCH_WINDOWS)
    total = None
    if progress:
        paths = list(paths)  # counted and then expanded again: a generator would be used up
        total = sum(1 for _ in iter_inputs(paths))
    inputs = iter_inputs(paths)
    version = detector.model_key  # weights + config hash: rows of two models never mix
    stats = ScanStats()
    stage = stats.stage_seconds
    bar = _Progress(total, progress)
    t_start = time.perf_counter()
    threads = torch.get_num_threads()
    if not cuda and not in_workers:
        # the model gets the cores the workers leave; never oversubscribe (intra-op threads that
        # compete with the workers or other jobs spin and make the model stage several times slower)
        torch.set_num_threads(max(1, cpus - workers))
    _remove_stale_spill_dirs()
    spill_dir = tempfile.mkdtemp(prefix=f"{SPILL_PREFIX}{os.getpid()}-")
    stop: list[int] = []  # the signal that asked us to stop
    old_handlers = _install_handlers(stop) if handle_signals else {}
    pool = None
    max_in_flight = 2 * workers + 2
    pending: deque[_Channel] = deque()  # channels with windows not yet in a batch
    pending_windows = 0
    last_commit = time.perf_counter()

    def add(name: str, seconds: float) -> None:
        stage[name] = stage.get(name, 0.0) + seconds

    def finish_file(f: _File, error: str | None = None) -> None:
        t = time.perf_counter()
        store.write_file(f.path, channel, version, f.meta, f.results, error)
        stats.count_file(f.results, error)
        if on_file:
            on_file(f.path, f.results, error)
        add("store", time.perf_counter() - t)

    def finalize(ch: _Channel) -> None:
        t = time.perf_counter()
        result = detector.finalize(ch.analysis, ch.logits, ch.prosody)
        ch.file.results.append(result)
        ch.file.open_channels -= 1
        add("finalize", time.perf_counter() - t)
        if ch.file.open_channels == 0:
            ch.file.results = file_results(ch.file.results, channel)
            finish_file(ch.file)

    def handle(path: str, msg: dict | WorkerDied) -> None:
        nonlocal pending_windows
        if isinstance(msg, WorkerDied):
            finish_file(_File(path, FileMeta()), f"{display_path(path)}: {msg.reason}")
            return
        for k, v in msg["timing"].items():
            add(f"worker_{k}", v)
        if msg["kind"] == "skip":
            stats.skipped += 1
            return
        f = _File(msg["path"], msg["meta"])
        if msg["kind"] == "error":
            finish_file(f, msg["error"])
            return
        if msg["kind"] == "scored":  # the worker ran the model too
            f.open_channels = len(msg["channels"])
            for analysis, logits, prosody in msg["channels"]:
                stats.windows += len(logits)
                finalize(_Channel(f, analysis, None, [], logits, prosody))
            return
        channels = []
        for analysis, speech, spans in msg["channels"]:
            if isinstance(speech, tuple):  # through a temp file: read back window by window
                speech = SignalFile.open(*speech)
            n = len(spans)
            channels.append(_Channel(f, analysis, speech, spans, np.empty(n, np.float32), np.empty((n, 6), np.float32)))
        f.open_channels = len(channels)
        for ch in channels:
            if ch.spans:
                pending.append(ch)
                pending_windows += len(ch.spans)
            else:
                finalize(ch)

    def run_batch() -> None:
        nonlocal pending_windows
        t = time.perf_counter()
        buf, n, owners = runner.buffer, 0, []
        while pending and n < batch_windows:
            ch = pending[0]
            k = min(len(ch.spans) - ch.next, batch_windows - n)
            for j in range(k):
                cut_window(ch.speech, ch.spans[ch.next + j], buf[n + j])
            owners.append((ch, ch.next, n, k))
            ch.next += k
            n += k
            if ch.next == len(ch.spans):
                pending.popleft()
        pending_windows -= n
        stats.windows += n
        t1 = time.perf_counter()
        add("pack", t1 - t)
        done = runner.submit(n, owners) if n else runner.collect()
        add("model", time.perf_counter() - t1)
        complete(done)

    def complete(done: list) -> None:
        for (ch, first, row, k), logits, pros in done:
            ch.logits[first : first + k] = logits[row : row + k]
            ch.prosody[first : first + k] = pros[row : row + k]
            ch.scored += k
            if ch.scored == len(ch.spans):
                if isinstance(ch.speech, SignalFile):
                    ch.speech.close()
                ch.speech = None
                finalize(ch)

    exhausted = False

    def submit_more() -> None:
        nonlocal exhausted
        while not exhausted and not stop and pool.in_flight < max_in_flight and pool.free > 0:
            path = next(inputs, None)
            if path is None:
                exhausted = True
                break
            known = None if rescore else store.scored_hash(path, channel, version, fingerprinted=fingerprints)
            task = _Task(
                path,
                channel,
                known,
                detector.vad_config,
                spill_dir,
                max_seconds,
                in_workers,
                detector.hop_samples,
                fingerprints,
            )
            pool.submit(path, task)

    try:
        model = detector.fast_model if in_workers else None
        pool = WorkerPool(_work, workers, initializer=_worker_init, initargs=(os.getpid(), model), depth=2)
        runner = _ModelRunner(detector, batch_windows, autocast)
        while not stop:
            submit_more()
            if exhausted and pool.in_flight == 0 and not pending:
                complete(runner.collect())
                break
            if pending_windows >= batch_windows or (pending and pool.in_flight == 0):
                run_batch()
            else:
                wait = POLL_SECONDS if not pending else (0.02 if cuda else 0.0)
                t = time.perf_counter()
                done = pool.poll(wait)
                add("wait_workers", time.perf_counter() - t)
                if not done and pending:
                    run_batch()
                for path, msg in done:
                    handle(path, msg)
            if time.perf_counter() - last_commit >= commit_seconds:
                t = time.perf_counter()
                store.commit()
                add("store", time.perf_counter() - t)
                last_commit = time.perf_counter()
            bar.update(_with_wall(stats, t_start))
        store.commit()  # every file written so far is whole (one SAVEPOINT each)
    finally:
        if pool is not None:
            pool.close()
        _restore_handlers(old_handlers)
        torch.set_num_threads(threads)
        shutil.rmtree(spill_dir, ignore_errors=True)
        _with_wall(stats, t_start)
        bar.update(stats, force=True)
        bar.close()
    if stop:
        raise ScanInterrupted(stop[0], stats)
    return stats


def _install_handlers(stop: list[int]) -> dict:
    """SIGINT/SIGTERM append their number to ``stop`` (the scan loop checks it); a second Ctrl-C
    raises KeyboardInterrupt at once. Only in the main thread (signal handlers live there)."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def on_signal(signum: int, frame) -> None:
        if stop and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.append(signum)

    return {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}


def _restore_handlers(old: dict) -> None:
    for sig, handler in old.items():
        signal.signal(sig, handler)


def _remove_stale_spill_dirs() -> None:
    """Temp folders left by scans that were killed (SIGKILL leaves no chance to clean up)."""
    root = tempfile.gettempdir()
    try:
        names = os.listdir(root)
    except OSError:
        return
    for name in names:
        if not name.startswith(SPILL_PREFIX):
            continue
        pid = name[len(SPILL_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask (``taskset``, batch schedulers), capped by a
    cgroup CPU quota (containers: ``docker --cpus``), never ``os.cpu_count()``'s whole machine."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    for quota_file, period_file in (
        ("/sys/fs/cgroup/cpu.max", None),  # cgroup v2: "quota period" or "max period"
        ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"),  # v1
    ):
        try:
            with open(quota_file) as fh:
                fields = fh.read().split()
            if period_file is not None:
                with open(period_file) as fh:
                    fields.append(fh.read().strip())
            quota, period = fields[0], fields[1]
            if quota not in ("max", "-1"):
                n = min(n, max(1, math.ceil(int(quota) / int(period))))
            break
        except (OSError, ValueError, IndexError):
            continue
    return max(1, n)


def _with_wall(stats: ScanStats, t_start: float) -> ScanStats:
    stats.wall_seconds = time.perf_counter() - t_start
    return stats


__all__ = ["scan", "ScanStats", "ScanInterrupted", "iter_inputs", "content_hash", "available_cpus"]
