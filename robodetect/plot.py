"""Per-call pictures for analysts: where in the call the robot is, and how sure.

:func:`plot_call` draws, for each scored channel, the waveform (VAD speech segments shaded) and a
spectrogram over time, then one panel with the per-window robot probability of every channel, the
threshold and the uncertain band; the verdict and the top cues are in the title. Colours are the
Okabe-Ito palette and the spectrogram uses ``cividis`` (readable with any colour vision).
matplotlib is an optional extra: ``pip install 'robodetect[plot]'``.

>>> from robodetect.plot import plot_file
>>> result = plot_file(robodetect.load(), "call.wav", "call.png")
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy import signal

from .audio import SAMPLE_RATE, Audio, load_audio
from .core import Result, Scorer
from .vad import VadConfig, detect_speech

# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour deficiency
ROBOT_COLOR = "#D55E00"  # vermillion
HUMAN_COLOR = "#0072B2"  # blue
UNCERTAIN_COLOR = "#E69F00"  # orange
SPEECH_COLOR = "#009E73"  # bluish green
CHANNEL_COLORS = ("#000000", "#CC79A7", "#56B4E9", "#F0E442")  # black, reddish purple, sky blue, yellow
LABEL_COLORS = {"robot": ROBOT_COLOR, "human": HUMAN_COLOR, "uncertain": UNCERTAIN_COLOR, "no_speech": "#777777"}
SPECTROGRAM_CMAP = "cividis"
N_FFT = 256  # 32 ms at 8 kHz
DYNAMIC_RANGE_DB = 70.0  # spectrogram colour range below its loudest bin


class PlotError(RuntimeError):
    """Plotting is not possible (matplotlib missing); the message says how to fix it."""


def require_matplotlib():
    """matplotlib.pyplot (Agg backend), or :class:`PlotError` saying how to install it."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotError("plotting needs matplotlib (pip install 'robodetect[plot]')") from None
    return plt


def uncertain_band(source: object) -> tuple[float, float] | None:
    """The (low, high) calibrated-probability band in which a verdict is ``uncertain``, read from a
    :class:`~robodetect.detector.Detector`, a model config or a result; None when there is none."""
    for obj in (source, getattr(source, "config", None)):
        if obj is None:
            continue
        band = getattr(obj, "uncertain_band", None)
        if band is not None and len(band) == 2:
            return float(band[0]), float(band[1])
        low, high = getattr(obj, "uncertain_low", None), getattr(obj, "uncertain_high", None)
        if low is not None and high is not None:
            return float(low), float(high)
    return None


def _channels(result: Result) -> list[Result]:
    return result.parties or [result]


def _headline(result: Result, name: str) -> str:
    if result.label == "no_speech":
        return f"{name}: NO SPEECH ({result.reason})"
    who = f" on the {result.party} channel" if result.party else ""
    return (
        f"{name}: {result.label.upper()}{who} - robot probability {result.robot_probability:.3f} "
        f"(threshold {result.threshold:.3f})"
    )


def plot_call(
    result: Result,
    audio: Audio,
    out_path: str | os.PathLike,
    *,
    band: tuple[float, float] | None = None,
    vad_config: VadConfig | None = None,
    max_cues: int = 2,
    dpi: int = 110,
) -> Path:
    """Draw ``result`` (from :meth:`Detector.score_file`) over ``audio`` (the same file decoded with
    the same channel mode, one row per scored channel) into a PNG (or any format matplotlib
    infers from the suffix). band: the uncertain band, shaded when given. Returns the path."""
    plt = require_matplotlib()
    parts = _channels(result)
    if len(parts) != audio.samples.shape[0]:
        raise ValueError(f"result has {len(parts)} channel(s) but the audio has {audio.samples.shape[0]}")
    n = len(parts)
    duration = audio.samples.shape[1] / SAMPLE_RATE
    heights = [1.0, 1.6] * n + [1.6]
    fig, axes = plt.subplots(
        2 * n + 1, 1, figsize=(11, 1.2 + 1.35 * sum(heights)), sharex=True, gridspec_kw={"height_ratios": heights}
    )
    t = np.arange(audio.samples.shape[1]) / SAMPLE_RATE
    for i, (part, row) in enumerate(zip(parts, audio.samples, strict=True)):
        wave_ax, spec_ax = axes[2 * i], axes[2 * i + 1]
        step = max(1, len(row) // 20000)  # a min/max envelope keeps long calls light
        wave_ax.plot(t[::step], row[::step], color=CHANNEL_COLORS[i % len(CHANNEL_COLORS)], linewidth=0.5)
        for k, seg in enumerate(detect_speech(row, vad_config).segments):
            wave_ax.axvspan(
                seg.start_seconds,
                seg.end_seconds,
                color=SPEECH_COLOR,
                alpha=0.18,
                label="speech (VAD)" if k == 0 else None,
            )
        label = part.label.upper() + ("" if part.robot_probability is None else f" {part.robot_probability:.2f}")
        wave_ax.set_ylabel(f"{part.channel}\n{label}", color=LABEL_COLORS.get(part.label, "black"), fontsize=9)
        wave_ax.set_yticks([])
        if i == 0:
            wave_ax.legend(loc="upper right", fontsize=8, frameon=False)
        if len(row) >= N_FFT:
            _, _, power = signal.spectrogram(row, fs=SAMPLE_RATE, nperseg=N_FFT, noverlap=N_FFT // 2)
            db = 10 * np.log10(power + 1e-12)
            top = float(db.max())
            spec_ax.imshow(
                db,
                origin="lower",
                aspect="auto",
                extent=(0, duration, 0, SAMPLE_RATE / 2),
                cmap=SPECTROGRAM_CMAP,
                vmin=top - DYNAMIC_RANGE_DB,
                vmax=top,
                interpolation="nearest",
            )
        spec_ax.set_ylabel("Hz", fontsize=9)
        spec_ax.set_ylim(0, SAMPLE_RATE / 2)
    ax = axes[-1]
    if band is not None:
        ax.axhspan(band[0], band[1], color=UNCERTAIN_COLOR, alpha=0.25, label="uncertain band")
    ax.axhline(
        result.threshold, color=ROBOT_COLOR, linestyle="--", linewidth=1.2, label=f"threshold {result.threshold:.2f}"
    )
    for i, part in enumerate(parts):
        if not part.windows:
            continue
        centres = [(w.start_seconds + w.end_seconds) / 2 for w in part.windows]
        probs = [w.robot_probability for w in part.windows]
        ax.plot(
            centres,
            probs,
            marker="o",
            markersize=3,
            linewidth=1.4,
            color=CHANNEL_COLORS[i % len(CHANNEL_COLORS)],
            label=f"{part.channel}: window robot probability",
        )
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(0, max(duration, 1e-3))
    ax.set_ylabel("robot\nprobability", fontsize=9)
    ax.set_xlabel("time in the call (s)")
    ax.legend(loc="center right", fontsize=8, frameon=True, ncol=2)
    ax.grid(alpha=0.3)
    name = Path(result.path).name if result.path else "call"
    cues = [c if len(c) <= 110 else c[:107] + "..." for c in result.cues[:max_cues]]
    fig.suptitle(
        "\n".join([_headline(result, name), *cues]),
        fontsize=10,
        x=0.01,
        horizontalalignment="left",
        color=LABEL_COLORS.get(result.label, "black"),
    )
    fig.tight_layout()
    out = Path(out_path)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def plot_file(
    detector: Scorer, path: str | os.PathLike, out_path: str | os.PathLike, *, channel: str = "auto"
) -> Result:
    """Score ``path`` and draw it into ``out_path``; returns the result (raises
    :class:`robodetect.AudioError` for unreadable audio, :class:`PlotError` without matplotlib)."""
    require_matplotlib()  # fail before scoring when matplotlib is missing
    result = detector.score_file(path, channel=channel)
    if isinstance(result, list):
        raise ValueError("plot one verdict per file: use channel auto, mix, left or right")
    audio = load_audio(path, channel)
    plot_call(result, audio, out_path, band=uncertain_band(detector), vad_config=detector.vad_config)
    return result


__all__ = ["plot_call", "plot_file", "uncertain_band", "require_matplotlib", "PlotError"]
