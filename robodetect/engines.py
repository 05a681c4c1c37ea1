"""``robodetect.load``: a detector on the torch engine (any device, the training model's own code)
or the ONNX engine (CPU, starts without importing torch; :mod:`robodetect.onnxengine`)."""

from __future__ import annotations

import os

ENGINES = ("torch", "onnx", "auto")


def load(
    name_or_path: str | os.PathLike | None = None,
    device: str = "cpu",
    threshold: float | None = None,
    uncertain: bool = True,
    engine: str = "torch",
    threads: int | None = None,
):
    """Load a detector offline: a shipped model by name (None: the default; see
    :func:`robodetect.model.available_models`) or a model stem path (stem.safetensors + stem.json).

    engine: ``torch`` (default), ``onnx`` (onnxruntime on the CPU; raises
    :class:`robodetect.onnxengine.EngineUnavailable` saying why when it cannot), or ``auto`` (onnx
    when it can and ``device`` is cpu, else torch). ``threads``: the ONNX engine's intra-op
    threads (None: onnxruntime's default; torch's are process-wide). An unknown name raises
    :class:`robodetect.config.ModelError` listing the shipped names."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r} (use one of {', '.join(ENGINES)})")
    if engine != "torch":
        from .onnxengine import EngineUnavailable, OnnxDetector

        try:
            if str(device) != "cpu":
                raise EngineUnavailable(f"the ONNX engine runs on the CPU only (device {device})")
            return OnnxDetector(name_or_path, threshold=threshold, uncertain=uncertain, threads=threads)
        except EngineUnavailable:
            if engine == "onnx":
                raise
    from .detector import load as load_torch

    return load_torch(name_or_path, device=device, threshold=threshold, uncertain=uncertain)
