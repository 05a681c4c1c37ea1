"""Voice activity detection: webrtcvad frames smoothed into speech segments.

The smoothing is a causal state machine (:class:`VadSegmenter`) with a bounded look-back, so the
batch function :func:`detect_speech` and the streaming detector produce identical segments.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import _webrtcvad  # webrtcvad's C module (see FrameVoicer.push)
import numpy as np
import webrtcvad

from .audio import SAMPLE_RATE

FRAME_SECONDS = 0.03
FRAME_SAMPLES = int(SAMPLE_RATE * FRAME_SECONDS)  # 240 samples at 8 kHz
AGGRESSIVENESS = 2  # webrtcvad mode 0 (permissive) .. 3 (strict)
MIN_SPEECH_SECONDS = 0.12  # segments with less voiced time than this are dropped
MIN_SILENCE_SECONDS = 0.3  # gaps shorter than this are bridged
HANGOVER_SECONDS = 0.09  # speech kept after the last voiced frame of a segment
BLOCK_FRAMES = 2000  # frames voiced per block (60 s), so temporaries stay small for long calls
ENERGY_FLOOR_DBFS = -80.0  # frames quieter than this are never speech (webrtcvad ignores level)
LEGACY_ENERGY_FLOOR_DBFS = -60.0  # the floor of models without level normalisation (v2, v3)
NOISE_FLOOR_SECONDS = 3.0  # the noise floor is the quietest frame of this trailing span
MIN_SNR_DB = 5.0  # a speech frame must be this far above that floor (rejects steady noise)
# level normalisation: each frame handed to webrtcvad is scaled so that the loudest frame of the
# trailing NOISE_FLOOR_SECONDS sits at this level; webrtcvad's decisions depend on the absolute
# level, and a recording's gain must not move the segmentation (nor, through it, the score)
VAD_REFERENCE_DBFS = -20.0
# frames at or below this are digital silence (exact zeros: -120 dBFS; 16-bit LSB noise is ~-101):
# with ``floor_ignores_silence`` they are left out of the noise floor
DIGITAL_SILENCE_DBFS = -100.0


@dataclass
class Segment:
    """A speech segment: [start_seconds, end_seconds) of the channel's 8 kHz signal."""

    start_seconds: float
    end_seconds: float

    @property
    def duration_seconds(self) -> float:
        return self.end_seconds - self.start_seconds


@dataclass
class VadConfig:
    """Every VAD setting a model was trained with (its JSON's ``vad``; the defaults are the constants
    above). ``frame_seconds`` is recorded but fixed: a model asking for another is refused.
    :meth:`legacy` gives, for a JSON's ``vad`` block, the value each setting had before it existed
    (a key missing from the JSON was not there when the model was trained)."""

    aggressiveness: int = AGGRESSIVENESS
    min_speech_seconds: float = MIN_SPEECH_SECONDS
    min_silence_seconds: float = MIN_SILENCE_SECONDS
    hangover_seconds: float = HANGOVER_SECONDS
    energy_floor_dbfs: float = ENERGY_FLOOR_DBFS
    noise_floor_seconds: float = NOISE_FLOOR_SECONDS
    min_snr_db: float = MIN_SNR_DB
    frame_seconds: float = FRAME_SECONDS
    # scale frames to a trailing reference level before webrtcvad (gain-invariant segmentation);
    # a model JSON without this key (robodetect-v2, -v3) was trained without it: False
    level_normalise: bool = True
    # the noise floor is the quietest frame *above DIGITAL_SILENCE_DBFS* of the trailing span:
    # digital zeros carry no information about the line's noise, and counted as the floor they let
    # any noise after them through the SNR gate, amplified by the level normalisation to speech
    # level (an absolute level, not energy_floor_dbfs, so that gain cannot move which frames count);
    # without this key (v2, v3, the first v4 run): False
    floor_ignores_silence: bool = True
    # ... and it is the (floor_skip_frames + 1)-th quietest such frame: a frame straddling digital
    # zeros and noise is a few dB under the noise and, as the floor, let that noise through (the
    # quietest of them where the span holds no more); without this key: 0 (the quietest)
    floor_skip_frames: int = 2
    # ... unless the span holds digital silence and its other frames show no noise of their own:
    # fewer than ``floor_noise_frames`` of them within ``floor_noise_db`` of that floor, and not all
    # of them (a span of zeros and speech only, e.g. a synthesiser's or a VoIP line's exact-zero
    # pauses). There the zeros *are* the line's floor and every audible frame passes the SNR gate,
    # as with frames counting zeros; a span of zeros then noise keeps the noise as its floor (the
    # noise is a cluster of frames at one level, speech is not). 0: off (without this key: 0)
    floor_noise_frames: int = 8
    floor_noise_db: float = 3.0

    def unsupported(self) -> list[str]:
        """Settings this code cannot honour, as ``name=value (reason)``; empty when all can be."""
        bad = []
        if self.frame_seconds != FRAME_SECONDS:
            bad.append(f"vad.frame_seconds={self.frame_seconds} (this code uses {FRAME_SECONDS})")
        if self.aggressiveness not in (0, 1, 2, 3):
            bad.append(f"vad.aggressiveness={self.aggressiveness} (webrtcvad modes are 0..3)")
        if self.floor_skip_frames < 0:
            bad.append(f"vad.floor_skip_frames={self.floor_skip_frames} (a count of frames)")
        if self.floor_noise_frames < 0:
            bad.append(f"vad.floor_noise_frames={self.floor_noise_frames} (a count of frames)")
        return bad

    def frames(self, seconds: float) -> int:
        return max(0, int(round(seconds / FRAME_SECONDS)))

    @classmethod
    def legacy(cls, **given) -> VadConfig:
        """What a model JSON's ``vad`` block means: the keys it records, and for every key it lacks
        the value that setting had before it was introduced (all of them: robodetect-v2's VAD)."""
        before = {
            "level_normalise": False,
            "energy_floor_dbfs": LEGACY_ENERGY_FLOOR_DBFS,
            "floor_ignores_silence": False,
            "floor_skip_frames": 0,
            "floor_noise_frames": 0,
        }
        return cls(**{**before, **given})


def _spans(x: np.ndarray, width: int) -> np.ndarray:
    """(len(x) - width + 1, width) view of every run of ``width`` consecutive values of a contiguous
    1-D array (``sliding_window_view`` without its argument checks: it runs per stream block)."""
    x = np.ascontiguousarray(x)
    step = x.strides[0]
    return np.ndarray((len(x) - width + 1, width), x.dtype, x, 0, (step, step))


def frame_energy_dbfs(frames: np.ndarray) -> np.ndarray:
    """frames: (n, FRAME_SAMPLES) float -> (n,) RMS level in dBFS."""
    power = np.mean(np.square(frames, dtype=np.float64), axis=1)
    return (10.0 * np.log10(power + 1e-12)).astype(np.float32)


class FrameVoicer:
    """Per-frame speech decisions: webrtcvad, gated by an absolute level floor and by the level above
    a trailing noise floor (webrtcvad alone calls loud stationary noise speech). With
    ``level_normalise`` each frame reaches webrtcvad scaled so that the loudest frame of the trailing
    span sits at VAD_REFERENCE_DBFS: a gain change of the whole recording then hands webrtcvad the
    same frames (up to 16-bit rounding) as long as the absolute floor does not bite. Causal, with
    bounded state, so streaming and batch decisions are identical."""

    def __init__(self, config: VadConfig | None = None) -> None:
        self.config = config or VadConfig()
        self.vad = webrtcvad.Vad(self.config.aggressiveness)
        self.span = max(1, self.config.frames(self.config.noise_floor_seconds))
        self.history = np.zeros(0, dtype=np.float32)  # levels of the last span - 1 frames

    def push(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """frames: (n, FRAME_SAMPLES) float32 -> (voiced (n,) bool, level (n,) dBFS)."""
        energy = frame_energy_dbfs(frames)
        out = np.zeros(len(frames), dtype=bool)
        if not len(frames):
            return out, energy
        # trailing span of each frame (itself included): the levels before it, padded so that
        # a span reaching back before the first frame covers only the frames there are
        levels = np.concatenate([np.full(self.span - 1 - len(self.history), np.nan, np.float32), self.history, energy])
        self.history = levels[len(levels) - (self.span - 1) :] if self.span > 1 else levels[:0]
        self.history = self.history[~np.isnan(self.history)]
        audible = energy > self.config.energy_floor_dbfs
        floor_levels = np.where(np.isnan(levels), np.inf, levels)
        if self.config.floor_ignores_silence:
            floor_levels[floor_levels <= DIGITAL_SILENCE_DBFS] = np.inf
        # each span holds its own frame, which is above digital silence wherever the floor matters
        spans = _spans(floor_levels, self.span)
        floor = spans.min(axis=1)
        skip = min(self.config.floor_skip_frames, self.span - 1)
        if skip > 0:
            ranked = np.partition(spans, skip, axis=1)[:, skip]
            floor = np.where(np.isfinite(ranked), ranked, floor)
        if (
            self.config.floor_ignores_silence
            and self.config.floor_noise_frames > 0
            and np.nanmin(levels) <= DIGITAL_SILENCE_DBFS
        ):
            floor = np.where(self._zeros_are_floor(levels, spans, floor), DIGITAL_SILENCE_DBFS - 20.0, floor)
        candidates = audible & (energy > floor + self.config.min_snr_db)
        if not candidates.any():
            return out, energy
        index = np.flatnonzero(candidates)
        if self.config.level_normalise:
            # loudest known level of each candidate's span (fmax skips the NaN padding; the span
            # holds the candidate itself, so it is never all padding)
            peak = np.fmax.reduce(_spans(levels, self.span)[index], axis=1)
            scale = 32767.0 * 10.0 ** ((VAD_REFERENCE_DBFS - peak.astype(np.float64)) / 20.0)
            pcm = np.clip(frames[index] * scale[:, None], -32767.0, 32767.0).astype("<i2")
        else:
            pcm = (np.clip(frames[index], -1.0, 1.0) * 32767.0).astype("<i2")
        # webrtcvad's C entry point on slices of one buffer: its Python wrapper and a bytes copy per
        # frame cost as much as the VAD itself; same calls in the same order, so the same decisions
        pcm_bytes = memoryview(pcm.tobytes())
        n_bytes, process, handle = 2 * FRAME_SAMPLES, _webrtcvad.process, self.vad._vad
        out[index] = [
            process(handle, SAMPLE_RATE, pcm_bytes[k : k + n_bytes], FRAME_SAMPLES)
            for k in range(0, len(pcm_bytes), n_bytes)
        ]
        return out, energy

    def _zeros_are_floor(self, levels: np.ndarray, spans: np.ndarray, floor: np.ndarray) -> np.ndarray:
        """(n,) bool: the frame's trailing span holds digital silence and its other frames no noise
        cluster (``spans``: those frames' levels, inf for zeros and before the signal)."""
        raw = _spans(levels, self.span)
        zeros = (raw <= DIGITAL_SILENCE_DBFS).any(axis=1)
        finite = np.isfinite(spans)
        near = (spans <= floor[:, None] + self.config.floor_noise_db).sum(axis=1)
        count = finite.sum(axis=1)
        return zeros & (near < self.config.floor_noise_frames) & ((near < count) | (count < 3))


@dataclass
class VadSegmenter:
    """Causal smoothing of per-frame voicing into segments (frame indices).

    Feed voicing decisions with :meth:`push`; closed segments are returned as they become final
    (at most ``min_silence`` frames late). :meth:`finish` closes the last one.
    """

    config: VadConfig = field(default_factory=VadConfig)
    frame_index: int = 0
    seg_start: int | None = None
    last_voiced: int = -1
    voiced_in_seg: int = 0
    final_end: int = 0  # push_final: frames before this were reported final

    def push(self, voiced: np.ndarray) -> list[tuple[int, int]]:
        min_sil = max(1, self.config.frames(self.config.min_silence_seconds))
        closed: list[tuple[int, int]] = []
        for v in voiced:
            seg = self._step(v, min_sil)
            if seg:
                closed.append(seg)
        return closed

    def _step(self, v, min_sil: int) -> tuple[int, int] | None:
        """One frame's voicing; returns the kept segment it closes, if any."""
        i = self.frame_index
        seg = None
        if v:
            if self.seg_start is None:
                self.seg_start = i
                self.voiced_in_seg = 0
            self.last_voiced = i
            self.voiced_in_seg += 1
        elif self.seg_start is not None and i - self.last_voiced >= min_sil:
            seg = self._close()
        self.frame_index = i + 1
        return seg

    def push_final(self, voiced: np.ndarray) -> list[tuple[int, int, int]]:
        """:meth:`push`, reporting speech as soon as it is *final* rather than when its segment
        closes: a segment is kept once it holds ``min_speech`` voiced frames, and from then on its
        end (last voiced frame + hangover, capped at the frames seen) only grows. Returns
        ``(frames_seen, start, end)`` each time frames ``[start, end)`` become final speech, at most
        once per frame, never overlapping an earlier entry; ``frames_seen`` is how many frames had
        been pushed when they did (a closed segment: before its closing frame; the open one: after
        the frame). Concatenated, the entries and :meth:`finish`'s rest give :meth:`push`'s spans."""
        out: list[tuple[int, int, int]] = []
        cfg = self.config
        min_sil = max(1, cfg.frames(cfg.min_silence_seconds))
        min_voiced = max(1, cfg.frames(cfg.min_speech_seconds))
        hangover = cfg.frames(cfg.hangover_seconds)
        done = self.final_end
        for v in voiced:
            i = self.frame_index
            seg = self._step(v, min_sil)
            if seg and seg[1] > done:
                out.append((i, max(seg[0], done), seg[1]))
                done = seg[1]
            if self.seg_start is not None and self.voiced_in_seg >= min_voiced:
                end = min(self.last_voiced + 1 + hangover, i + 1)
                if end > done:
                    out.append((i + 1, max(self.seg_start, done), end))
                    done = end
        self.final_end = done
        return out

    def _close(self) -> tuple[int, int] | None:
        start, end = self.seg_start, self.last_voiced + 1 + self.config.frames(self.config.hangover_seconds)
        end = min(end, self.frame_index)
        keep = self.voiced_in_seg >= max(1, self.config.frames(self.config.min_speech_seconds))
        self.seg_start = None
        return (start, end) if keep else None

    def finish(self) -> list[tuple[int, int]]:
        if self.seg_start is None:
            return []
        seg = self._close()
        return [seg] if seg else []


def frame_signal(x: np.ndarray) -> np.ndarray:
    """1-D signal -> (n_frames, FRAME_SAMPLES) non-overlapping frames (the tail is dropped)."""
    n = len(x) // FRAME_SAMPLES
    return np.asarray(x[: n * FRAME_SAMPLES], dtype=np.float32).reshape(n, FRAME_SAMPLES)


@dataclass
class VadResult:
    segments: list[Segment]
    speech_mask: np.ndarray  # (n_frames,) bool, smoothed: True inside a segment
    frame_energy_dbfs: np.ndarray  # (n_frames,) level of each 30 ms frame


def detect_speech(x: np.ndarray, config: VadConfig | None = None) -> VadResult:
    """Speech segments of a 1-D 8 kHz float signal.

    Returns segments in seconds, the smoothed per-frame speech mask and per-frame levels.
    """
    config = config or VadConfig()
    frames = frame_signal(x)
    voicer, seg = FrameVoicer(config), VadSegmenter(config)
    energy = np.empty(len(frames), dtype=np.float32)
    spans: list[tuple[int, int]] = []
    for i in range(0, len(frames), BLOCK_FRAMES):
        voiced, energy[i : i + BLOCK_FRAMES] = voicer.push(frames[i : i + BLOCK_FRAMES])
        spans += seg.push(voiced)
    spans += seg.finish()
    mask = np.zeros(len(frames), dtype=bool)
    for a, b in spans:
        mask[a:b] = True
    segments = [Segment(a * FRAME_SECONDS, b * FRAME_SECONDS) for a, b in spans]
    return VadResult(segments, mask, energy)


def speech_samples(x: np.ndarray, segments: list[Segment]) -> np.ndarray:
    """Concatenate the samples inside ``segments`` (the signal the spectral model sees)."""
    parts = [x[int(round(s.start_seconds * SAMPLE_RATE)) : int(round(s.end_seconds * SAMPLE_RATE))] for s in segments]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, dtype=np.float32)
