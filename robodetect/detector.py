"""The public API: ``robodetect.load()`` and :class:`Detector`.

Scoring one channel has three stages, exposed so the batch and streaming paths reuse them:

1. :func:`analyze` (CPU, numpy): VAD -> speech-only signal -> windows + call timing features;
2. :meth:`Detector.window_logits` (torch, any device, batched): windows -> logits + prosody;
3. :meth:`Detector.finalize`: logits -> calibrated per-window and per-call probabilities.

Stages 1 and 3, :class:`Result` and :func:`call_verdict` live in :mod:`robodetect.core` (no torch)
and are re-exported here.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch

from .core import (
    CPU_BATCH_WINDOWS,
    LABEL_PRIORITY,
    Analysis,
    Result,
    Scorer,
    WindowScore,
    analyze,
    analyze_speech,
    call_verdict,
)
from .features import HOP_SAMPLES, PROSODY_NAMES
from .model import DEFAULT_MODEL, RobotNet, available_models, inference_model, model_digest, resolve_model
from .vad import VadConfig

CUDA_BATCH_WINDOWS = 1024


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``auto`` -> cuda when available else cpu; ``cuda`` without CUDA -> cpu with a warning."""
    name = str(device or "cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        print("robodetect: CUDA requested but not available; falling back to CPU", file=sys.stderr)
        return torch.device("cpu")
    return torch.device(name)


class Detector(Scorer):
    """Scores calls with a :class:`RobotNet` in torch (stage 2; stages 1 and 3 are
    :class:`robodetect.core.Scorer`'s). Create with :func:`robodetect.load`."""

    def __init__(
        self,
        model: RobotNet,
        device: str | torch.device = "cpu",
        threshold: float | None = None,
        vad_config: VadConfig | None = None,
        uncertain: bool = True,
    ) -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        #: the scoring copy (batch-norm folded, channels-last; :func:`robodetect.model.inference_model`)
        #: that score, stream and scan all run; ``model`` stays the eager training module
        self.fast_model = inference_model(self.model, self.device)
        self.batch_windows = CUDA_BATCH_WINDOWS if self.device.type == "cuda" else CPU_BATCH_WINDOWS
        self.config = model.config
        #: threshold and uncertain band (:class:`robodetect.scoring.Decision`)
        self.decision = self.config.decision(threshold, uncertain=uncertain)
        self.vad_config = vad_config or self.config.vad  # the VAD the model was trained with
        self._key: str | None = None

    @property
    def model_key(self) -> str:
        """What a result store keys rows by: the version, a hash of the weights + full config, and
        the threshold/band when they differ from the model's (rows of two models never mix)."""
        if self._key is None:
            key = f"{self.model_version} sha256:{model_digest(self.model)[:16]}"
            if self.decision != self.config.decision():
                d = self.decision
                key += f" threshold={d.threshold:g} band={d.uncertain_low:g}-{d.uncertain_high:g}"
            self._key = key
        return self._key

    # ---- stage 2 ---------------------------------------------------------------------------
    @torch.inference_mode()
    def window_logits(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, WINDOW_SAMPLES) -> (uncalibrated logits (n,), prosody (n, 6)), batched on device."""
        logits, prosody = [], []
        for i in range(0, len(windows), self.batch_windows):
            wav = torch.from_numpy(np.ascontiguousarray(windows[i : i + self.batch_windows])).to(self.device)
            feats, pros = self.fast_model.features(wav)
            logits.append(self.fast_model.head(feats, pros).float().cpu().numpy())
            prosody.append(pros.float().cpu().numpy())
        if not logits:
            return np.zeros(0, np.float32), np.zeros((0, len(PROSODY_NAMES)), np.float32)
        return np.concatenate(logits), np.concatenate(prosody)


def load(
    name_or_path: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    threshold: float | None = None,
    uncertain: bool = True,
) -> Detector:
    """Load a detector offline: a shipped model by name (None: the default; see
    :func:`available_models`) or a model stem path (stem.safetensors + stem.json). An unknown name
    raises :class:`robodetect.model.ModelError` listing the shipped names."""
    return Detector(resolve_model(name_or_path), device=device, threshold=threshold, uncertain=uncertain)


__all__ = [
    "load",
    "available_models",
    "DEFAULT_MODEL",
    "Detector",
    "Result",
    "WindowScore",
    "Analysis",
    "analyze",
    "analyze_speech",
    "call_verdict",
    "LABEL_PRIORITY",
    "HOP_SAMPLES",
]
