"""Decode audio files or arrays into float32 8 kHz signals, one row per channel.

Every path into the pipeline goes through :func:`load_audio` (files) or :func:`prepare_waveform`
(arrays). Both resample with the same streaming soxr resampler (an anti-aliased, high-quality
polyphase filter), so a file and its decoded array give identical samples. Long files are decoded
in blocks of :data:`BLOCK_FRAMES` frames: peak memory stays near the size of the 8 kHz result, not
the size of the decoded original.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 8000  # the pipeline's working rate: telephone band
MIN_INPUT_SAMPLE_RATE = 4000
MAX_INPUT_SAMPLE_RATE = 192000
BLOCK_FRAMES = 1 << 18  # frames decoded per block (about 5.5 s at 48 kHz)
CHANNEL_MODES = ("auto", "mix", "left", "right", "each")
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".au", ".opus")


class AudioError(ValueError):
    """A file or array that cannot be turned into audio; the message names the file and reason."""


@dataclass
class Audio:
    """Decoded audio at :data:`SAMPLE_RATE`.

    samples: float32 array of shape (channels, n_samples), values nominally in [-1, 1].
    channel_names: one name per row: ``mix``, ``left``, ``right`` or ``ch<i>``.
    orig_sample_rate / orig_channels: what the source had before resampling and channel selection.
    """

    samples: np.ndarray
    channel_names: list[str]
    orig_sample_rate: int
    orig_channels: int
    sample_rate: int = SAMPLE_RATE

    @property
    def duration_seconds(self) -> float:
        return self.samples.shape[-1] / self.sample_rate


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C-library chatter on file descriptor 2 (one clear error line is ours to print)."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def resolve_channel(channel: str, n_channels: int) -> str:
    """``auto``: a two-party recording (2 channels) is scored per channel (``each``), anything
    else as one mix; other modes are returned unchanged."""
    if channel != "auto":
        return channel
    return "each" if n_channels == 2 else "mix"


def _channel_name(index: int, n_channels: int) -> str:
    if n_channels == 2:
        return ("left", "right")[index]
    return f"ch{index}"


def _select_channels(block: np.ndarray, channel: str, where: str) -> np.ndarray:
    """block: (frames, channels) -> (frames, out_channels) per the ``channel`` mode."""
    n = block.shape[1]
    if channel == "mix":
        return block.mean(axis=1, keepdims=True, dtype=np.float32)
    if channel == "left":
        return block[:, :1]
    if channel == "right":
        if n < 2:
            raise AudioError(f"{where}: channel 'right' requested but the audio has 1 channel")
        return block[:, 1:2]
    if channel == "each":
        return block
    raise AudioError(f"{where}: unknown channel mode {channel!r} (use one of {CHANNEL_MODES})")


def _check_rate(sample_rate: int, where: str) -> None:
    if not MIN_INPUT_SAMPLE_RATE <= sample_rate <= MAX_INPUT_SAMPLE_RATE:
        raise AudioError(
            f"{where}: sample rate {sample_rate} Hz is outside the supported "
            f"{MIN_INPUT_SAMPLE_RATE}-{MAX_INPUT_SAMPLE_RATE} Hz range"
        )


class _Resampler:
    """Streaming resampler to SAMPLE_RATE for (frames, channels) float32 blocks."""

    def __init__(self, orig_sr: int, channels: int):
        self.passthrough = orig_sr == SAMPLE_RATE
        if not self.passthrough:
            self.stream = soxr.ResampleStream(orig_sr, SAMPLE_RATE, channels, dtype="float32", quality="HQ")
        self.parts: list[np.ndarray] = []

    def push(self, block: np.ndarray, last: bool = False) -> None:
        block = np.ascontiguousarray(block, dtype=np.float32)
        out = block if self.passthrough else self.stream.resample_chunk(block, last=last)
        if out.size:
            self.parts.append(out.copy() if out is block else out)

    def result(self, channels: int) -> np.ndarray:
        if not self.parts:
            return np.zeros((channels, 0), dtype=np.float32)
        out = np.concatenate(self.parts, axis=0)
        self.parts = []
        return np.ascontiguousarray(out.T)


def load_audio(path: str | os.PathLike, channel: str = "mix") -> Audio:
    """Decode a WAV/FLAC/OGG/MP3 (anything libsndfile reads) file to 8 kHz float32.

    channel: ``mix`` (average of all channels, default), ``left``, ``right``, ``each``
    (every channel kept as its own row) or ``auto`` (``each`` for 2 channels, else ``mix``). Raises :class:`AudioError` naming the file on any failure.
    """
    where = os.fspath(path)
    if channel not in CHANNEL_MODES:
        raise AudioError(f"{where}: unknown channel mode {channel!r} (use one of {CHANNEL_MODES})")
    if not os.path.exists(where):
        raise AudioError(f"{where}: file not found")
    if os.path.isdir(where):
        raise AudioError(f"{where}: is a directory, not an audio file")
    try:
        with _quiet_stderr():  # libmpg123 prints "Note: Illegal Audio-MPEG-Header" lines on junk
            handle = sf.SoundFile(where)
    except Exception as exc:  # libsndfile's messages are specific but multi-line at times
        reason = " ".join(str(exc).split()) or type(exc).__name__
        if "not a regular file" in reason or "Format not recognised" in reason:
            reason = "unrecognised format or corrupt data"  # libsndfile's wording misleads here
        raise AudioError(f"{where}: cannot decode audio ({reason})") from None
    with handle:
        orig_sr, n_channels = int(handle.samplerate), int(handle.channels)
        channel = resolve_channel(channel, n_channels)
        _check_rate(orig_sr, where)
        out_channels = 1 if channel in ("mix", "left", "right") else n_channels
        resampler = _Resampler(orig_sr, out_channels)
        try:
            while True:
                block = handle.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
                last = block.shape[0] < BLOCK_FRAMES
                resampler.push(_select_channels(block, channel, where), last=last)
                if last:
                    break
        except AudioError:
            raise
        except Exception as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise AudioError(f"{where}: decoding failed part-way ({reason})") from None
    samples = resampler.result(out_channels)
    if samples.shape[1] == 0:
        raise AudioError(f"{where}: file contains no audio samples")
    if not np.isfinite(samples).all():
        raise AudioError(f"{where}: audio contains NaN or infinite samples")
    return Audio(samples, _names(channel, n_channels), orig_sr, n_channels)


def _names(channel: str, n_channels: int) -> list[str]:
    if channel == "each":
        return [_channel_name(i, n_channels) for i in range(n_channels)]
    return [channel]


def to_float32(waveform: np.ndarray) -> np.ndarray:
    """Integer PCM is scaled to [-1, 1); float input is returned as float32 unchanged."""
    waveform = np.asarray(waveform)
    if waveform.dtype.kind == "i":
        return (waveform.astype(np.float32) / float(2 ** (8 * waveform.dtype.itemsize - 1))).astype(np.float32)
    if waveform.dtype.kind == "u":
        half = float(2 ** (8 * waveform.dtype.itemsize - 1))
        return ((waveform.astype(np.float32) - half) / half).astype(np.float32)
    if waveform.dtype.kind == "f":
        return waveform.astype(np.float32, copy=False)
    raise AudioError(f"<array>: unsupported sample dtype {waveform.dtype}")


def prepare_waveform(waveform: np.ndarray, sample_rate: int, channel: str = "mix", name: str = "<array>") -> Audio:
    """Turn an in-memory waveform into :class:`Audio` at 8 kHz.

    waveform: shape (n_samples,) for mono, or 2-D with channels on the shorter axis
    ((channels, n) as librosa or (n, channels) as soundfile). int16/int32/uint8 or float samples.
    """
    x = to_float32(waveform)
    _check_rate(int(sample_rate), name)
    if x.ndim == 1:
        x = x[:, None]
    elif x.ndim == 2:
        if x.shape[0] < x.shape[1]:
            x = x.T  # -> (frames, channels)
    else:
        raise AudioError(f"{name}: waveform must be 1-D or 2-D, got shape {x.shape}")
    if x.shape[0] == 0:
        raise AudioError(f"{name}: waveform contains no samples")
    if not np.isfinite(x).all():
        raise AudioError(f"{name}: waveform contains NaN or infinite samples")
    if channel not in CHANNEL_MODES:
        raise AudioError(f"{name}: unknown channel mode {channel!r} (use one of {CHANNEL_MODES})")
    n_channels = x.shape[1]
    channel = resolve_channel(channel, n_channels)
    selected = _select_channels(x, channel, name)
    resampler = _Resampler(int(sample_rate), selected.shape[1])
    for start in range(0, selected.shape[0], BLOCK_FRAMES):
        block = selected[start : start + BLOCK_FRAMES]
        resampler.push(block, last=start + BLOCK_FRAMES >= selected.shape[0])
    return Audio(resampler.result(selected.shape[1]), _names(channel, n_channels), int(sample_rate), n_channels)


def resample(x: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Resample a 1-D float signal with soxr (HQ). Convenience for scripts and tests."""
    if orig_sr == target_sr:
        return np.asarray(x, dtype=np.float32)
    return soxr.resample(np.asarray(x, dtype=np.float32), orig_sr, target_sr, quality="HQ").astype(np.float32)
