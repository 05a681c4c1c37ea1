"""Flat memory in recording length: stage 1 of a long recording through temporary files.

A 10-hour call is 1.1 GB of 8 kHz float32 and its overlapping windows twice that again. For
recordings over :data:`LONG_SECONDS`, :func:`analyze_file` instead streams the file through

1. block-wise decoding and resampling (:func:`robodetect.audio.open_audio`) into one raw float32
   temp file per channel (:class:`SignalFile`),
2. the VAD, frame by frame over blocks read back from that file (the VAD is causal, so the
   segments are those of :func:`robodetect.vad.detect_speech` on the whole signal),
3. the speech-only signal, copied segment by segment into a second temp file,

and returns, per channel, the :class:`~robodetect.detector.Analysis` (window times, timing
features; small), the speech file and the window spans. Windows are then read back a batch at a
time (:func:`iter_window_batches`). Every number equals the in-memory path's (tests check it).
Memory: a few blocks, plus per-frame VAD levels (4 bytes per 30 ms) and per-window results.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import numpy as np

from .audio import SAMPLE_RATE, AudioError, display_path, open_audio
from .features import HOP_SAMPLES, WINDOW_SAMPLES, timing_features
from .scoring import Span, cut_windows, window_spans
from .vad import BLOCK_FRAMES, FRAME_SAMPLES, FRAME_SECONDS, FrameVoicer, Segment, VadConfig, VadResult, VadSegmenter

LONG_SECONDS = 20 * 60.0  # recordings longer than this (by their header) take the file-backed path
HEAD_SECONDS = LONG_SECONDS  # how much of a long recording analyze_file also returns in memory
READ_SAMPLES = BLOCK_FRAMES * FRAME_SAMPLES  # samples per block read back (60 s)
WINDOW_BATCH = 256  # windows cut and scored at a time


class SignalFile:
    """A float32 signal in a temp file: append blocks, read ranges back (``os.pread``; nothing is
    memory-mapped, so reading never grows the resident set)."""

    def __init__(self, fd: int, path: str, n: int = 0) -> None:
        self.fd, self.path, self.n = fd, path, n

    @classmethod
    def create(cls, directory: str | None = None, *, keep_name: bool = False) -> SignalFile:
        """A new empty file; without ``keep_name`` its name is removed at once, so nothing is left
        behind even if the process is killed (another process can then not open it)."""
        fd, path = tempfile.mkstemp(prefix="robodetect-", suffix=".f32", dir=directory)
        if not keep_name:
            os.unlink(path)
        return cls(fd, path)

    @classmethod
    def open(cls, path: str, n: int, *, unlink: bool = True) -> SignalFile:
        """Open a file another process wrote; ``unlink``: remove its name at once (the data lives
        until closed)."""
        fd = os.open(path, os.O_RDONLY)
        if unlink:
            os.unlink(path)
        return cls(fd, path, n)

    def append(self, x: np.ndarray) -> None:
        data = memoryview(np.ascontiguousarray(x, dtype="<f4")).cast("B")
        while len(data):
            data = data[os.write(self.fd, data) :]
        self.n += len(x)

    def __len__(self) -> int:
        return self.n

    def read(self, start: int, stop: int) -> np.ndarray:
        start, stop = max(0, start), min(stop, self.n)
        if stop <= start:
            return np.zeros(0, np.float32)
        want = (stop - start) * 4
        buf = bytearray()
        while len(buf) < want:
            chunk = os.pread(self.fd, want - len(buf), start * 4 + len(buf))
            if not chunk:
                raise OSError(f"{self.path}: temp file shorter than expected")
            buf += chunk
        return np.frombuffer(buf, dtype="<f4").astype(np.float32, copy=False)

    def __getitem__(self, index: slice) -> np.ndarray:
        start, stop, step = index.indices(self.n)
        if step != 1:
            raise IndexError("SignalFile supports contiguous slices only")
        return self.read(start, stop)

    def blocks(self, size: int = READ_SAMPLES) -> Iterator[np.ndarray]:
        for a in range(0, self.n, size):
            yield self.read(a, a + size)

    def close(self, *, unlink: bool = True) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if unlink:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> SignalFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def detect_speech_blocks(blocks: Iterator[np.ndarray], config: VadConfig | None = None) -> VadResult:
    """:func:`robodetect.vad.detect_speech` over a signal given as consecutive 1-D blocks."""
    config = config or VadConfig()
    voicer, seg = FrameVoicer(config), VadSegmenter(config)
    energies: list[np.ndarray] = []
    spans: list[tuple[int, int]] = []
    carry = np.zeros(0, np.float32)
    for block in blocks:
        x = np.concatenate([carry, block]) if len(carry) else block
        n = len(x) // FRAME_SAMPLES
        frames = np.asarray(x[: n * FRAME_SAMPLES], dtype=np.float32).reshape(n, FRAME_SAMPLES)
        for i in range(0, n, BLOCK_FRAMES):
            voiced, energy = voicer.push(frames[i : i + BLOCK_FRAMES])
            energies.append(energy)
            spans += seg.push(voiced)
        carry = x[n * FRAME_SAMPLES :].copy()
    spans += seg.finish()
    energy = np.concatenate(energies) if energies else np.zeros(0, np.float32)
    mask = np.zeros(len(energy), dtype=bool)
    for a, b in spans:
        mask[a:b] = True
    return VadResult([Segment(a * FRAME_SECONDS, b * FRAME_SECONDS) for a, b in spans], mask, energy)


def call_times(segments: list[Segment], offsets: np.ndarray, *, end: bool = False) -> list[float]:
    """:func:`robodetect.features.speech_to_call_time` for many offsets at once (O(log n) each)."""
    if not segments:
        return [0.0] * len(offsets)
    bounds = [(int(round(s.start_seconds * SAMPLE_RATE)), int(round(s.end_seconds * SAMPLE_RATE))) for s in segments]
    cum_end = np.cumsum([b - a for a, b in bounds])
    idx = np.searchsorted(cum_end, offsets, side="left" if end else "right")
    out = []
    for off, i in zip(np.asarray(offsets).tolist(), idx.tolist()):
        if i >= len(segments):
            out.append(segments[-1].end_seconds)
        else:
            before = int(cum_end[i - 1]) if i else 0
            out.append(segments[i].start_seconds + (off - before) / SAMPLE_RATE)
    return out


def analyze_file(
    path: str | os.PathLike,
    channel: str = "mix",
    vad_config: VadConfig | None = None,
    *,
    hop: int = HOP_SAMPLES,
    max_seconds: float | None = None,
    tmp_dir: str | None = None,
    keep_names: bool = False,
):
    """Stage 1 of a file through temp files. Returns (audio stream metadata, [(Analysis, speech
    :class:`SignalFile`, window spans) per channel], the first :data:`HEAD_SECONDS` of the 8 kHz
    signal as a (channels, n) array, for fingerprints); the caller closes the speech files.
    hop: the model's window hop in samples. keep_names: keep the speech files' names (for another process to open them)."""
    from .detector import Analysis

    stream = open_audio(path, channel, max_seconds=max_seconds)
    signals = [SignalFile.create(tmp_dir) for _ in stream.channel_names]
    out = []
    try:
        for block in stream.blocks:
            for sig, row in zip(signals, block):
                sig.append(row)
        if not len(signals[0]):
            raise AudioError(f"{display_path(path)}: file contains no audio samples")
        head = np.stack([sig.read(0, int(HEAD_SECONDS * SAMPLE_RATE)) for sig in signals])
        for sig, name in zip(signals, stream.channel_names):
            vad = detect_speech_blocks(sig.blocks(), vad_config)
            speech = SignalFile.create(tmp_dir, keep_name=keep_names)
            out.append(speech)
            for s in vad.segments:
                a, b = int(round(s.start_seconds * SAMPLE_RATE)), int(round(s.end_seconds * SAMPLE_RATE))
                for c in range(a, b, READ_SAMPLES):
                    speech.append(sig.read(c, min(b, c + READ_SAMPLES)))
            sig.close()
            spans = window_spans(len(speech), hop)
            starts = np.array([a for a, _ in spans], dtype=np.int64)
            ends = np.array([b for _, b in spans], dtype=np.int64)
            times = list(zip(call_times(vad.segments, starts), call_times(vad.segments, ends, end=True)))
            duration = len(sig) / SAMPLE_RATE
            timing = timing_features(vad.segments, duration, vad.frame_energy_dbfs, vad.speech_mask)
            empty = np.zeros((0, WINDOW_SAMPLES), dtype=np.float32)
            analysis = Analysis(name, duration, len(speech) / SAMPLE_RATE, empty, times, timing)
            out[-1] = (analysis, speech, spans)
    except BaseException:
        for sig in signals:
            sig.close()
        for item in out:
            (item[1] if isinstance(item, tuple) else item).close()
        raise
    return stream, out, head


def iter_window_batches(speech: SignalFile, spans: list[Span], batch: int = WINDOW_BATCH) -> Iterator[np.ndarray]:
    """The model input for ``spans``, ``batch`` windows at a time, read from ``speech``."""
    for i in range(0, len(spans), batch):
        part = spans[i : i + batch]
        lo, hi = part[0][0], max(b for _, b in part)
        block = speech.read(lo, hi)
        yield cut_windows(block, [(a - lo, b - lo) for a, b in part])


def is_long(path: str | os.PathLike, limit_seconds: float | None = None) -> bool:
    """True when ``path`` is a regular file whose header says it lasts over ``limit_seconds``
    (default :data:`LONG_SECONDS`). Anything unreadable is False: the in-memory path reports it."""
    import stat

    import soundfile as sf

    from .audio import _quiet_stderr

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with _quiet_stderr():
            info = sf.info(os.fsencode(path))
        return info.frames > (LONG_SECONDS if limit_seconds is None else limit_seconds) * info.samplerate
    except Exception:
        return False


def score_long_file(detector, path: str | os.PathLike, channel: str = "mix", *, max_seconds: float | None = None):
    """:meth:`Detector.score_audio` for a file on the file-backed path: one result per channel."""
    stream, parts, _ = analyze_file(
        path, channel, detector.vad_config, hop=detector.hop_samples, max_seconds=max_seconds
    )
    results = []
    try:
        for analysis, speech, spans in parts:
            analysis.path, analysis.sample_rate = os.fspath(path), stream.orig_sample_rate
            logits, prosody = [], []
            for windows in iter_window_batches(speech, spans, detector.batch_windows):
                z, p = detector.window_logits(windows)
                logits.append(z)
                prosody.append(p)
            if logits:
                z, p = np.concatenate(logits), np.concatenate(prosody)
            else:
                z, p = detector.window_logits(np.zeros((0, WINDOW_SAMPLES), np.float32))
            results.append(detector.finalize(analysis, z, p))
    finally:
        for _, speech, _ in parts:
            speech.close()
    return results
