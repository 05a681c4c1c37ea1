"""Incremental scoring for screening apps: feed a live call chunk by chunk, get a decision early.

>>> stream = StreamingDetector(detector)            # or StreamingDetector(): the default model, ONNX engine
>>> for chunk in pcm_chunks:                       # int16 / float32 arrays (or int16 bytes), any size
...     update = stream.push(chunk)
...     if update.decision != "undecided": break   # ring / warn / hang up
>>> final = stream.finish()                        # final.robot_probability == detector.score(...)
                                                   # (the ONNX default: the torch score within float32 rounding)

How it reproduces the batch score with bounded state
----------------------------------------------------
The batch path (:func:`robodetect.detector.analyze`) runs webrtcvad on 30 ms frames, smooths them
with the causal :class:`~robodetect.vad.VadSegmenter`, concatenates the speech segments and cuts
2 s windows every hop (the model's ``frontend.hop_seconds``, 1 s for v2 and v3) from that speech-only signal. The stream runs the same VAD frame by frame and
hands each speech sample on as soon as it is certain to belong to a kept segment (a segment is kept
once it has ``min_speech`` voiced frames; its end only grows). Speech samples feed a 2 s buffer;
each time the speech length reaches ``2 s + k * hop`` the window ending there is scored and its
logit added to a running sum. At :meth:`finish` the end-aligned (tail >= 0.5 s) or tiled (< 2 s of
speech) window is added exactly as :func:`~robodetect.scoring.window_spans` plans it, so the final
probability is ``Detector.score``'s. State: the last 2 s of speech, at most ~1.5 s of undecided call
audio inside an open VAD segment, the VAD and resampler state, and two numbers.

Decision rule
-------------
The probability is re-evaluated at *checkpoints*: when the speech heard reaches ``min_speech_seconds``
and then every hop of speech (and at the budget). At a checkpoint the running probability is the
score ``Detector.score`` would give if the call ended there (same windows, same calibration), so
decisions do not depend on how the audio was chunked and match ``scripts/accuracy_vs_seconds.py``.

- ``robot`` if p >= ``confidence``, ``human`` if p <= 1 - ``confidence`` (only once speech >=
  ``min_speech_seconds``): the calibrated probability says the verdict is wrong at most
  1 - confidence of the time;
- otherwise, when the speech budget is spent (speech >= ``speech_budget_seconds``), decide by the
  detector's threshold (``robot`` if p >= threshold), the same rule ``robodetect score`` applies;
- a call that ends before either happens is decided by its final score (or stays ``undecided``
  when it had too little speech: label ``no_speech``).

A decision, once taken, is never revised; ``robot_probability`` keeps updating until the end.
"""

from __future__ import annotations

import bisect
import importlib.util
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import soxr

from . import scoring
from .audio import CHANNEL_MODES, SAMPLE_RATE, AudioError, _check_rate, _select_channels, to_float32, validate_block
from .features import HOP_SAMPLES, MIN_SPEECH_SAMPLES, WINDOW_SAMPLES
from .vad import FRAME_SAMPLES, FrameVoicer, VadConfig, VadSegmenter

UNDECIDED, ROBOT, HUMAN = "undecided", "robot", "human"
DECISIONS = (UNDECIDED, ROBOT, HUMAN)
DEFAULT_CONFIDENCE = 0.95
DEFAULT_MIN_SPEECH_SECONDS = 1.0
DEFAULT_SPEECH_BUDGET_SECONDS = 4.0
BLOCK_FRAMES = int(SAMPLE_RATE // FRAME_SAMPLES)  # VAD frames processed per block (~1 s)

#: windows (n, WINDOW_SAMPLES) float32 -> calibrated logits (n,): calib_scale * raw + calib_bias
WindowLogits = Callable[[np.ndarray], np.ndarray]


@dataclass
class StreamUpdate:
    """State of a call after a :meth:`StreamingDetector.push` or :meth:`~StreamingDetector.finish`.

    robot_probability: calibrated score of the speech heard up to the last checkpoint (None before
        ``min_speech_seconds`` of speech); after ``finish()`` the call's final score.
    speech_seconds: speech heard so far (VAD-confirmed); audio_seconds: call audio consumed (8 kHz);
        probability_speech_seconds: the speech robot_probability was computed from (its checkpoint).
    decision: ``undecided``, ``robot`` or ``human``; decision_reason: ``confident``, ``budget`` or
        ``call_end``; decided_at_seconds / decided_at_speech_seconds: when it was taken (call time /
        speech heard); new_decision: True only on the update during which it was taken.
    final / label: set by ``finish()``; label is ``robot``, ``human``, ``uncertain`` or ``no_speech`` exactly as
        ``Detector.score`` labels the whole call.
    """

    robot_probability: float | None
    speech_seconds: float
    probability_speech_seconds: float | None
    audio_seconds: float
    decision: str
    threshold: float
    windows: int
    decision_reason: str | None = None
    decided_at_seconds: float | None = None
    decided_at_speech_seconds: float | None = None
    new_decision: bool = False
    final: bool = False
    label: str | None = None


def detector_window_logits(detector) -> WindowLogits:
    """The default scorer: the detector's torch model, calibrated."""
    scale, bias = float(detector.config.calib_scale), float(detector.config.calib_bias)

    def score(windows: np.ndarray) -> np.ndarray:
        raw, _ = detector.window_logits(windows)
        return scoring.calibrated_logit(raw.astype(np.float64), scale=scale, bias=bias)

    return score


def default_stream_detector(name_or_path=None):
    """The detector a stream gets when given none: the model's ONNX engine on one thread when
    onnxruntime is installed (a window at batch 1 costs a third of the torch fast path's: docs/
    streaming.md; logits equal within float32 rounding, ``tests/test_onnx_engine.py``), else torch."""
    from .engines import load
    from .onnxengine import EngineUnavailable

    try:
        return load(name_or_path, engine="onnx", threads=1)
    except EngineUnavailable as exc:
        if importlib.util.find_spec("onnxruntime") is not None:  # installed, yet refused: say why
            warnings.warn(f"robodetect stream: ONNX engine unavailable ({exc}); streaming on torch", stacklevel=2)
        return load(name_or_path)


class StreamingDetector:
    """Score one live call incrementally; memory does not grow with the call's length.

    detector: a :class:`robodetect.Detector` or ONNX-engine detector (None: the default model on
        :func:`default_stream_detector`'s engine, unless ``window_logits`` is given).
    sample_rate: rate of the pushed PCM (resampled to 8 kHz with a streaming soxr HQ resampler).
    channels: interleaved channels in the pushed PCM; ``channel`` picks ``mix`` / ``left`` / ``right``.
    confidence, min_speech_seconds, speech_budget_seconds: the decision rule (module docstring).
    threshold: robot threshold on the calibrated probability (default: the detector's).
    window_logits: optional scorer replacing the torch model, e.g.
        :func:`robodetect.export.load_exported` over an ONNX / TorchScript export.
    """

    def __init__(
        self,
        detector=None,
        sample_rate: int = SAMPLE_RATE,
        channels: int = 1,
        channel: str = "mix",
        confidence: float = DEFAULT_CONFIDENCE,
        min_speech_seconds: float = DEFAULT_MIN_SPEECH_SECONDS,
        speech_budget_seconds: float = DEFAULT_SPEECH_BUDGET_SECONDS,
        threshold: float | None = None,
        window_logits: WindowLogits | None = None,
        vad_config: VadConfig | None = None,
    ) -> None:
        if detector is None and window_logits is None:
            detector = default_stream_detector()
        _check_rate(int(sample_rate), "<stream>")
        if channel not in CHANNEL_MODES or channel in ("each", "auto"):
            raise ValueError(f"channel must be one of mix, left, right (one stream per channel), got {channel!r}")
        if channels < 1 or (channel == "right" and channels < 2):
            raise ValueError(f"channel {channel!r} needs 2 channels, stream has {channels}")
        if not 0.5 < confidence <= 1.0:
            raise ValueError(f"confidence must be in (0.5, 1], got {confidence}")
        self.detector = detector
        self.sample_rate, self.channels, self.channel = int(sample_rate), int(channels), channel
        self.confidence = float(confidence)
        self.min_speech_samples = max(MIN_SPEECH_SAMPLES, int(round(min_speech_seconds * SAMPLE_RATE)))
        self.budget_samples = max(self.min_speech_samples, int(round(speech_budget_seconds * SAMPLE_RATE)))
        if threshold is not None:
            self.decision = scoring.Decision.make(float(threshold))
        elif detector is not None:
            self.decision = detector.decision
        else:  # an export carries its model's threshold and band
            self.decision = getattr(window_logits, "decision", None) or scoring.Decision.make(0.5)
        self.threshold = self.decision.threshold
        self._score = window_logits or detector_window_logits(detector)
        # windows are cut as the model was trained: its VAD and window hop (an export's metadata)
        source = detector if detector is not None else window_logits
        if vad_config is None:
            vad_config = getattr(source, "vad_config", None) or VadConfig()
        self.vad_config = vad_config
        self.hop = scoring.check_hop(getattr(source, "hop_samples", HOP_SAMPLES))
        self.reset()

    # ---- state ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the current call (the detector and settings are kept)."""
        self._resampler = (
            None
            if self.sample_rate == SAMPLE_RATE
            else soxr.ResampleStream(self.sample_rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        )
        self._voicer = FrameVoicer(self.vad_config)
        self._segmenter = VadSegmenter(self.vad_config)
        self._partial = np.zeros(0, np.float32)  # < one VAD frame of 8 kHz audio
        self._pending = np.zeros(0, np.float32)  # call audio from frame _pending_frame0 on
        self._pending_frame0 = 0
        self._emitted_frame = 0  # call frames before this are already speech (or dropped)
        self._n_frames = 0  # VAD frames processed
        # speech samples [_n_speech - _fill, _n_speech) in _ring[:_fill]; when the ring is full its
        # last WINDOW_SAMPLES move to the front (one copy per WINDOW_SAMPLES samples, not per frame)
        self._ring = np.zeros(2 * WINDOW_SAMPLES, np.float32)
        self._fill = 0
        self._n_speech = 0
        self._next_window_end = scoring.next_regular_end(0, self.hop)
        self._logit_sum = 0.0
        self._n_windows = 0
        self._extra_cache: tuple[int, float | None] | None = None  # (n_speech, tail/tiled logit)
        self._next_check = self._checkpoint_after(0)
        self._probability: float | None = None
        self._probability_speech: float | None = None
        self._decision, self._reason = UNDECIDED, None
        self._decided_at: float | None = None
        self._decided_at_speech: float | None = None
        self._new_decision = False
        self._finished = False

    def warmup(self) -> None:
        """Score one silent window so the runtime's lazy initialisation (hundreds of ms for torch's
        first call) happens before the call, not at its first window. Does not touch call state."""
        self._score(np.zeros((1, WINDOW_SAMPLES), np.float32))

    @property
    def buffered_samples(self) -> int:
        """Samples held in buffers (bounded: about 2 s of speech + 1.5 s of call audio)."""
        return len(self._partial) + len(self._pending) + len(self._speech)

    @property
    def _speech(self) -> np.ndarray:
        """The last <= WINDOW_SAMPLES speech samples (a view)."""
        return self._ring[max(0, self._fill - WINDOW_SAMPLES) : self._fill]

    @property
    def speech_seconds(self) -> float:
        return self._n_speech / SAMPLE_RATE

    @property
    def audio_seconds(self) -> float:
        return (self._n_frames * FRAME_SAMPLES + len(self._partial)) / SAMPLE_RATE

    # ---- input ------------------------------------------------------------------------------
    def push(self, chunk: np.ndarray | bytes) -> StreamUpdate:
        """Feed PCM: int16/int32/float32 array, (n,) or (n, channels) or interleaved (n*channels,);
        bytes are read as little-endian int16. Returns the running :class:`StreamUpdate`."""
        if self._finished:
            raise RuntimeError("push() after finish(); call reset() to start a new call")
        self._new_decision = False
        x = self._to_mono(chunk)
        if self._resampler is not None:
            x = self._resampler.resample_chunk(x)
        self._feed(x)
        return self._update()

    def finish(self) -> StreamUpdate:
        """Close the call: flush the resampler and VAD, add the final window, label the call."""
        if self._finished:
            return self._update()
        self._new_decision = False
        if self._resampler is not None:
            self._feed(self._resampler.resample_chunk(np.zeros(0, np.float32), last=True))
        self._partial = np.zeros(0, np.float32)  # batch VAD drops the incomplete last frame too
        for span in self._segmenter.finish():
            self._emit(*span)
        self._pending = np.zeros(0, np.float32)
        self._finished = True
        self._probability = self._current_probability()
        self._probability_speech = round(self.speech_seconds, 3)
        if self._decision == UNDECIDED and self._probability is not None:
            self._decide(self.decision.forced(self._probability), "call_end")
        return self._update()

    def _to_mono(self, chunk: np.ndarray | bytes) -> np.ndarray:
        if isinstance(chunk, (bytes, bytearray, memoryview)):
            chunk = np.frombuffer(chunk, dtype="<i2")
        x = to_float32(np.asarray(chunk))
        if x.ndim == 1:
            if len(x) % self.channels:
                raise AudioError(f"<stream>: chunk of {len(x)} samples is not a multiple of {self.channels} channels")
            x = x.reshape(-1, self.channels)
        elif x.ndim != 2 or x.shape[1] != self.channels:
            raise AudioError(f"<stream>: chunk shape {x.shape} does not match (n, {self.channels})")
        validate_block(x, "<stream>")
        return np.ascontiguousarray(_select_channels(x, self.channel, "<stream>")[:, 0], dtype=np.float32)

    # ---- VAD -> speech ----------------------------------------------------------------------
    def _feed(self, x: np.ndarray) -> None:
        """8 kHz mono samples -> VAD frames, in blocks of ~1 s so one big push stays bounded."""
        if len(self._partial):
            x = np.concatenate([self._partial, x])
            self._partial = np.zeros(0, np.float32)  # now in x: audio_seconds must not count it twice
        n_frames = len(x) // FRAME_SAMPLES
        # blocks of BLOCK_FRAMES to 2 * BLOCK_FRAMES - 1 frames: a 1 s chunk with the previous one's
        # partial frame is one block, not 33 frames + a 1-frame block with its fixed cost
        n_blocks = max(1, n_frames // BLOCK_FRAMES)
        edges = [n_frames * k // n_blocks for k in range(n_blocks + 1)]
        for a, b in zip(edges[:-1], edges[1:]):
            if b > a:
                self._vad_block(x[a * FRAME_SAMPLES : b * FRAME_SAMPLES].reshape(b - a, FRAME_SAMPLES))
        self._partial = x[n_frames * FRAME_SAMPLES :].copy()

    def _vad_block(self, frames: np.ndarray) -> None:
        voiced, _ = self._voicer.push(frames)
        self._pending = np.concatenate([self._pending, frames.reshape(-1)])
        frames_after = self._n_frames + len(voiced)
        final = self._segmenter.push_final(voiced)
        if final:
            self._add_final(final)  # moves _n_frames to each piece's frame while it adds it
        self._n_frames = frames_after
        seg = self._segmenter
        keep_from = self._n_frames if seg.seg_start is None else max(seg.seg_start, self._emitted_frame)
        drop = (keep_from - self._pending_frame0) * FRAME_SAMPLES
        if drop > 0:
            self._pending = self._pending[drop:]
            self._pending_frame0 = keep_from

    def _add_final(self, final: list[tuple[int, int, int]]) -> None:
        """Append the speech a block made final (``VadSegmenter.push_final``'s entries) in as few
        pieces as the windows and checkpoints allow: each piece ends with the entry that reaches the
        next window end or checkpoint, and is added with the call time (frames seen) of that entry,
        so windows, probabilities and decision times are those of a frame-by-frame walk."""
        base, parts, ends, seen, total = self._pending_frame0, [], [], [], 0
        for n_seen, a, b in final:
            if parts and parts[-1][1] == a:  # contiguous with the previous entry: one slice
                parts[-1][1] = b
            else:
                parts.append([a, b])
            total += (b - a) * FRAME_SAMPLES
            ends.append(total)
            seen.append(n_seen)
        self._emitted_frame = final[-1][2]
        pieces = [self._pending[(a - base) * FRAME_SAMPLES : (b - base) * FRAME_SAMPLES] for a, b in parts]
        speech = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
        done, j = 0, 0
        while done < total:
            boundary = done + min(self._next_window_end, self._next_check) - self._n_speech
            j = min(bisect.bisect_left(ends, boundary, j), len(ends) - 1)
            self._n_frames = seen[j]
            self._add_speech(speech[done : ends[j]])
            done, j = ends[j], j + 1

    def _emit(self, start_frame: int, end_frame: int) -> None:
        """Call frames [start, end) are speech: append those not yet emitted to the speech signal."""
        start_frame = max(start_frame, self._emitted_frame)
        if end_frame <= start_frame:
            return
        a = (start_frame - self._pending_frame0) * FRAME_SAMPLES
        b = (end_frame - self._pending_frame0) * FRAME_SAMPLES
        self._emitted_frame = end_frame
        self._add_speech(self._pending[a:b])

    # ---- speech -> windows -> probability ---------------------------------------------------
    def _checkpoint_after(self, n: int) -> int:
        """The first checkpoint (in speech samples) after ``n``."""
        candidates = [(n // self.hop + 1) * self.hop]
        candidates += [c for c in (self.min_speech_samples, self.budget_samples) if c > n]
        return min(c for c in candidates if c >= self.min_speech_samples)

    def _add_speech(self, x: np.ndarray) -> None:
        while len(x):
            boundary = min(self._next_window_end, self._next_check)
            take = min(len(x), boundary - self._n_speech)
            self._append_speech(x[:take])
            self._n_speech += take
            x = x[take:]
            if self._n_speech == self._next_window_end:  # a regular window [n - 2 s, n) is complete
                self._logit_sum += float(self._score(self._speech[None])[0])
                self._n_windows += 1
                self._next_window_end = scoring.next_regular_end(self._n_speech, self.hop)
            if self._n_speech == self._next_check:
                self._checkpoint()
                self._next_check = self._checkpoint_after(self._n_speech)

    def _append_speech(self, x: np.ndarray) -> None:
        if len(x) >= WINDOW_SAMPLES:
            x = x[-WINDOW_SAMPLES:]
        if self._fill + len(x) > len(self._ring):
            keep = min(self._fill, WINDOW_SAMPLES - len(x))
            self._ring[:keep] = self._ring[self._fill - keep : self._fill]
            self._fill = keep
        self._ring[self._fill : self._fill + len(x)] = x
        self._fill += len(x)

    def _extra_logit(self) -> float | None:
        """Logit of the window :func:`robodetect.scoring.extra_span` adds for the speech so far beyond
        the regular ones (the tiled or the end-aligned tail window); None if neither."""
        n = self._n_speech
        if self._extra_cache is not None and self._extra_cache[0] == n:
            return self._extra_cache[1]
        logit = None
        span = scoring.extra_span(n, self.hop)
        if span is not None:  # it ends at n; the buffer holds the last len(self._speech) samples
            offset = n - len(self._speech)
            window = scoring.cut_windows(self._speech, [(span[0] - offset, span[1] - offset)])
            logit = float(self._score(window)[0])
        self._extra_cache = (n, logit)
        return logit

    def _current_probability(self) -> float | None:
        """Calibrated score of all speech so far, as ``Detector.score`` would give it."""
        if self._n_speech < MIN_SPEECH_SAMPLES:
            return None
        total, count = self._logit_sum, self._n_windows
        extra = self._extra_logit()
        if extra is not None:
            total, count = total + extra, count + 1
        return float(scoring.sigmoid(scoring.mean_logit(total, count)))

    def _checkpoint(self) -> None:
        p = self._probability = self._current_probability()
        self._probability_speech = round(self.speech_seconds, 3)
        if self._decision != UNDECIDED or p is None:
            return
        if self._n_speech >= self.min_speech_samples and p >= self.confidence:
            self._decide(ROBOT, "confident")
        elif self._n_speech >= self.min_speech_samples and p <= 1.0 - self.confidence:
            self._decide(HUMAN, "confident")
        elif self._n_speech >= self.budget_samples:
            self._decide(self.decision.forced(p), "budget")

    def _decide(self, decision: str, reason: str) -> None:
        self._decision, self._reason, self._new_decision = decision, reason, True
        self._decided_at = round(self.audio_seconds, 3)
        self._decided_at_speech = round(self.speech_seconds, 3)

    def _update(self) -> StreamUpdate:
        label = self.decision.label(self._probability) if self._finished else None
        return StreamUpdate(
            robot_probability=self._probability,
            speech_seconds=round(self.speech_seconds, 3),
            probability_speech_seconds=self._probability_speech,
            audio_seconds=round(self.audio_seconds, 3),
            decision=self._decision,
            threshold=self.threshold,
            windows=self._n_windows + (1 if self._finished and self._extra_logit() is not None else 0),
            decision_reason=self._reason,
            decided_at_seconds=self._decided_at,
            decided_at_speech_seconds=self._decided_at_speech,
            new_decision=self._new_decision,
            final=self._finished,
            label=label,
        )


def stream_file(path, detector=None, chunk_seconds: float = 1.0, **kwargs) -> list[StreamUpdate]:
    """Feed a file to a :class:`StreamingDetector` in ``chunk_seconds`` chunks (at its native rate,
    channels mixed); returns every update, the last one final. For tests, demos and evaluation."""
    import soundfile as sf

    with sf.SoundFile(str(path)) as f:
        stream = StreamingDetector(detector, sample_rate=f.samplerate, channels=f.channels, **kwargs)
        block = max(1, int(round(chunk_seconds * f.samplerate)))
        updates = [stream.push(b) for b in f.blocks(blocksize=block, dtype="float32", always_2d=True)]
    updates.append(stream.finish())
    return updates


__all__ = ["StreamingDetector", "StreamUpdate", "stream_file", "DECISIONS", "UNDECIDED", "ROBOT", "HUMAN"]
