"""Decode audio files or arrays into float32 8 kHz signals, one row per channel.

Every path into the pipeline goes through :func:`load_audio` (files) or :func:`prepare_waveform`
(arrays). Both resample with the same streaming soxr resampler (an anti-aliased, high-quality
polyphase filter), so a file and its decoded array give identical samples. Long files are decoded
in blocks of :data:`BLOCK_FRAMES` frames: peak memory stays near the size of the 8 kHz result, not
the size of the decoded original.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 8000  # the pipeline's working rate: telephone band
MIN_INPUT_SAMPLE_RATE = 4000
MAX_INPUT_SAMPLE_RATE = 192000
BLOCK_FRAMES = 1 << 18  # frames decoded per block (about 5.5 s at 48 kHz)
CHANNEL_MODES = ("auto", "mix", "left", "right", "each")
MAX_ABS_SAMPLE = 1000.0  # |sample| above this (60 dB over full scale) is corrupt or mis-scaled data
#: file extensions of each libsndfile major format (the lower-cased format name is always one)
_FORMAT_EXTENSIONS = {
    "AIFF": (".aif", ".aiff", ".aifc"),
    "AU": (".au", ".snd"),
    "SVX": (".8svx", ".16svx"),
    "MP3": (".mp3", ".mp2", ".mpga"),
    "OGG": (".ogg", ".oga", ".opus"),
    "IRCAM": (".sf", ".ircam"),
    "NIST": (".nist", ".sph"),
    "WAVEX": (".wav",),
}


def audio_extensions() -> tuple[str, ...]:
    """Every file extension a folder scan picks up: those of each format the installed libsndfile
    decodes (``soundfile.available_formats()``), header-less RAW excepted."""
    exts = set()
    for fmt in sf.available_formats():
        if fmt != "RAW":
            exts.add(f".{fmt.lower()}")
            exts.update(_FORMAT_EXTENSIONS.get(fmt, ()))
    return tuple(sorted(exts))


AUDIO_EXTENSIONS = audio_extensions()


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


_quiet_lock = threading.Lock()
_quiet_users = 0
_quiet_saved: int | None = None


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C-library chatter (libmpg123's ``layer3.c ... part2_3_length`` notes) on file
    descriptor 2; one clear error line is ours to print. Thread-safe: fd 2 is a process-wide
    resource, so the first thread in swaps it for /dev/null and the last one out restores it."""
    global _quiet_users, _quiet_saved
    with _quiet_lock:
        if _quiet_users == 0:
            _quiet_saved = None
            with contextlib.suppress(OSError):
                null = os.open(os.devnull, os.O_WRONLY)
                try:
                    _quiet_saved = os.dup(2)
                    os.dup2(null, 2)
                finally:
                    os.close(null)
        _quiet_users += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_users -= 1
            if _quiet_users == 0 and _quiet_saved is not None:
                os.dup2(_quiet_saved, 2)
                os.close(_quiet_saved)
                _quiet_saved = None


def display_path(path: str | bytes | os.PathLike) -> str:
    """A file name safe for a one-line message: control characters (a newline in a name) are
    escaped as ``\\n``/``\\x..`` and bytes that are not UTF-8 as ``\\x..``."""
    text = os.fsdecode(path)
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if "\udc80" <= ch <= "\udcff":  # an undecodable byte (surrogateescape)
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def check_regular_file(path: str | os.PathLike, *, where: str | None = None) -> os.stat_result:
    """``os.stat`` of an input file, or :class:`AudioError` with the reason when it is missing, a
    symlink loop, too long a path, unreadable, a folder or not a regular file (a FIFO would block
    the decoder forever, a device never ends)."""
    where = where or display_path(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            reason = "file not found"
        elif exc.errno == errno.ELOOP:
            reason = "symbolic link loop"
        elif exc.errno == errno.ENAMETOOLONG:
            reason = "path too long"
        else:
            reason = f"cannot read ({exc.strerror or type(exc).__name__})"
        raise AudioError(f"{where}: {reason}") from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioError(f"{where}: is a directory, not an audio file")
    if not stat.S_ISREG(st.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "a device"
        raise AudioError(f"{where}: not a regular file ({kind})")
    return st


def validate_block(x: np.ndarray, where: str) -> None:
    """The one sample validator: finite and within :data:`MAX_ABS_SAMPLE` (float files are
    nominally [-1, 1]; 1e30 would overflow every power computation downstream)."""
    if x.size == 0:
        return
    peak = max(float(x.max()), -float(x.min()))  # NaN and inf propagate through both
    if not math.isfinite(peak):
        raise AudioError(f"{where}: audio contains NaN or infinite samples")
    if peak > MAX_ABS_SAMPLE:
        raise AudioError(
            f"{where}: sample values reach {peak:.3g}, far outside [-1, 1] (corrupt or mis-scaled float data)"
        )


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
        # the mean, without numpy's slow reduction over a short axis for the common cases (the
        # same float32 values: x / 1 is x, and (a + b) / 2 is (a + b) * 0.5 exactly); a new array
        # like the mean's, so the result never aliases a caller's waveform
        if n == 1:
            return np.array(block, dtype=np.float32)
        if n == 2:
            return (block[:, :1] + block[:, 1:2]) * np.float32(0.5)
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

    def push(self, block: np.ndarray, last: bool = False) -> np.ndarray | None:
        """(frames, channels) in -> the (frames', channels) output it completes, or None."""
        block = np.ascontiguousarray(block, dtype=np.float32)
        out = block if self.passthrough else self.stream.resample_chunk(block, last=last)
        if not out.size:
            return None
        return out.copy() if out is block else out


@dataclass
class AudioStream:
    """A file being decoded: what :class:`Audio` says about it, and its 8 kHz samples as a
    generator of (channels, n) float32 blocks (validated; the file closes when it is exhausted)."""

    channel_names: list[str]
    orig_sample_rate: int
    orig_channels: int
    frames: int  # of the source, as its header says (MP3: an estimate)
    blocks: Iterator[np.ndarray]

    @property
    def header_seconds(self) -> float:
        return self.frames / self.orig_sample_rate


def open_audio(path: str | os.PathLike, channel: str = "mix", *, max_seconds: float | None = None) -> AudioStream:
    """Open a file for block-wise decoding to 8 kHz (what :func:`load_audio` does, without holding
    the whole recording: a long file streams through in blocks of :data:`BLOCK_FRAMES`).

    Failures to open raise :class:`AudioError` here; failures part-way raise it from the blocks.
    """
    where = display_path(path)
    if channel not in CHANNEL_MODES:
        raise AudioError(f"{where}: unknown channel mode {channel!r} (use one of {CHANNEL_MODES})")
    check_regular_file(path, where=where)
    # libmpg123 prints "Note: Illegal Audio-MPEG-Header" and "layer3.c ... part2_3_length" lines
    # while opening and reading, valid files included
    with _quiet_stderr():
        try:
            handle = sf.SoundFile(os.fsencode(path))  # bytes: soundfile would encode a str strictly
        except Exception as exc:  # libsndfile's messages are specific but multi-line at times
            reason = " ".join(str(exc).split()) or type(exc).__name__
            if "not a regular file" in reason or "Format not recognised" in reason:
                reason = "unrecognised format or corrupt data"  # libsndfile's wording misleads here
            raise AudioError(f"{where}: cannot decode audio ({reason})") from None
    try:
        orig_sr, n_channels = int(handle.samplerate), int(handle.channels)
        channel = resolve_channel(channel, n_channels)
        _check_rate(orig_sr, where)
        if n_channels < 1:
            raise AudioError(f"{where}: file has no channels")
        if max_seconds is not None and handle.frames > max_seconds * orig_sr:
            raise AudioError(
                f"{where}: recording is {handle.frames / orig_sr:.0f} s long, over the {max_seconds:g} s limit"
            )
    except BaseException:
        handle.close()
        raise
    blocks = _decode_blocks(handle, channel, where, max_seconds)
    return AudioStream(_names(channel, n_channels), orig_sr, n_channels, int(handle.frames), blocks)


def _decode_blocks(handle: sf.SoundFile, channel: str, where: str, max_seconds: float | None) -> Iterator[np.ndarray]:
    orig_sr, n_channels = int(handle.samplerate), int(handle.channels)
    max_frames = None if max_seconds is None else int(max_seconds * orig_sr)
    out_channels = 1 if channel in ("mix", "left", "right") else n_channels
    resampler = _Resampler(orig_sr, out_channels)
    read = 0
    with handle:
        while True:
            try:
                with _quiet_stderr():
                    block = handle.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
            except Exception as exc:
                reason = " ".join(str(exc).split()) or type(exc).__name__
                raise AudioError(f"{where}: decoding failed part-way ({reason})") from None
            read += block.shape[0]
            if max_frames is not None and read > max_frames:
                raise AudioError(f"{where}: recording is over the {max_seconds:g} s limit")
            validate_block(block, where)
            last = block.shape[0] < BLOCK_FRAMES
            out = resampler.push(_select_channels(block, channel, where), last=last)
            if out is not None:
                validate_block(out, where)
                yield np.ascontiguousarray(out.T)
            if last:
                return


def load_audio(path: str | os.PathLike, channel: str = "mix", *, max_seconds: float | None = None) -> Audio:
    """Decode a WAV/FLAC/OGG/MP3 (anything libsndfile reads) file to 8 kHz float32.

    channel: ``mix`` (average of all channels, default), ``left``, ``right``, ``each``
    (every channel kept as its own row) or ``auto`` (``each`` for 2 channels, else ``mix``).
    max_seconds: refuse longer recordings.
    Raises :class:`AudioError` naming the file and the reason on any failure.
    """
    stream = open_audio(path, channel, max_seconds=max_seconds)
    parts = list(stream.blocks)
    if not parts:
        raise AudioError(f"{display_path(path)}: file contains no audio samples")
    samples = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
    return Audio(samples, stream.channel_names, stream.orig_sample_rate, stream.orig_channels)


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
    validate_block(x, name)
    if channel not in CHANNEL_MODES:
        raise AudioError(f"{name}: unknown channel mode {channel!r} (use one of {CHANNEL_MODES})")
    n_channels = x.shape[1]
    channel = resolve_channel(channel, n_channels)
    selected = _select_channels(x, channel, name)
    resampler = _Resampler(int(sample_rate), selected.shape[1])
    parts = []
    for start in range(0, selected.shape[0], BLOCK_FRAMES):
        block = selected[start : start + BLOCK_FRAMES]
        out = resampler.push(block, last=start + BLOCK_FRAMES >= selected.shape[0])
        if out is not None:
            parts.append(out)
    samples = np.concatenate(parts, axis=0) if parts else np.zeros((0, selected.shape[1]), np.float32)
    return Audio(np.ascontiguousarray(samples.T), _names(channel, n_channels), int(sample_rate), n_channels)


def resample(x: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Resample a 1-D float signal with soxr (HQ). Convenience for scripts and tests."""
    if orig_sr == target_sr:
        return np.asarray(x, dtype=np.float32)
    return soxr.resample(np.asarray(x, dtype=np.float32), orig_sr, target_sr, quality="HQ").astype(np.float32)
