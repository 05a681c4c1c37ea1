"""The ONNX scoring engine: stage 2 (windows -> logits + prosody) on onnxruntime, without torch.

``import torch`` alone takes 1-2.5 s, most of a one-file ``robodetect score``; onnxruntime loads in
about 0.3 s. Each shipped model carries, beside its weights, the graph of its
``Detector.window_logits`` (:class:`robodetect.export.EngineGraph`: the same front end, written as
convolutions with a DFT basis, and the same network) as ``<name>.scorer.onnx``; its metadata holds
:func:`robodetect.config.source_digest` of the JSON and weights it was made from, and a graph whose
digest does not match (weights retrained, graph not rebuilt) is refused. Stages 1 and 3 are the
shared :class:`robodetect.core.Scorer`, so verdicts, windows, cues and timing are computed by the
same code as with torch; window logits agree with the torch engine within float32 rounding
(``tests/test_onnx_engine.py``). ``robodetect score`` uses this engine when onnxruntime is
installed (the ``export`` extra), else torch; ``robodetect.load(engine="onnx" | "auto")`` in the API.
Rebuild the graphs after training: ``python scripts/build_engines.py``.
"""

from __future__ import annotations

import json
import os
from importlib.abc import Traversable
from pathlib import Path

import numpy as np

from .config import ModelConfig, find_model, source_digest
from .core import CPU_BATCH_WINDOWS, Scorer
from .features import PROSODY_NAMES
from .vad import VadConfig

ENGINE_SUFFIX = ".scorer.onnx"
ENGINE_INPUT = "wav"
ENGINE_OUTPUTS = ("raw_logit", "prosody")
ENGINE_DIGEST_KEY = "robodetect_source_sha256"


class EngineUnavailable(RuntimeError):
    """The ONNX engine cannot score this model here (the torch engine still can); says why."""


def engine_path(config_file: Traversable | Path) -> Traversable | Path:
    """Where the engine graph of the model whose JSON is ``config_file`` lives (beside it)."""
    stem = config_file.name[: -len(".json")] if config_file.name.endswith(".json") else config_file.name
    return config_file.parent.joinpath(stem + ENGINE_SUFFIX)


class OnnxDetector(Scorer):
    """A detector whose network runs on onnxruntime (CPU); everything else as :class:`Detector`.
    Raises :class:`EngineUnavailable` without onnxruntime or without a matching graph, and
    :class:`robodetect.config.ModelError` for an unknown model."""

    device = "cpu"

    def __init__(
        self,
        name_or_path: str | os.PathLike | None = None,
        threshold: float | None = None,
        uncertain: bool = True,
        vad_config: VadConfig | None = None,
        threads: int | None = None,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise EngineUnavailable("onnxruntime is not installed (pip install 'robodetect[export]')") from None
        config_file, weights_file, source = find_model(name_or_path)
        graph = engine_path(config_file)
        if not graph.is_file():
            raise EngineUnavailable(f"{source}: no ONNX scoring graph {graph.name} beside it")
        config_bytes = config_file.read_bytes()
        self.config = ModelConfig.from_dict(json.loads(config_bytes), source=source)
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        if threads:
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        try:
            self.session = ort.InferenceSession(graph.read_bytes(), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # a damaged graph: onnxruntime raises its own exception types
            raise EngineUnavailable(f"{graph.name}: onnxruntime cannot load it ({exc})") from None
        recorded = self.session.get_modelmeta().custom_metadata_map.get(ENGINE_DIGEST_KEY)
        if recorded != source_digest(config_bytes, weights_file.read_bytes()):
            raise EngineUnavailable(f"{graph.name} was made from other weights (rebuild: scripts/build_engines.py)")
        self.decision = self.config.decision(threshold, uncertain=uncertain)
        self.vad_config = vad_config or self.config.vad
        self.batch_windows = CPU_BATCH_WINDOWS

    def window_logits(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, WINDOW_SAMPLES) -> (uncalibrated logits (n,), prosody (n, 6)), batched."""
        logits, prosody = [], []
        for i in range(0, len(windows), self.batch_windows):
            batch = np.ascontiguousarray(windows[i : i + self.batch_windows], dtype=np.float32)
            z, p = self.session.run(list(ENGINE_OUTPUTS), {ENGINE_INPUT: batch})
            logits.append(z)
            prosody.append(p)
        if not logits:
            return np.zeros(0, np.float32), np.zeros((0, len(PROSODY_NAMES)), np.float32)
        return np.concatenate(logits), np.concatenate(prosody)


__all__ = ["OnnxDetector", "EngineUnavailable", "engine_path", "ENGINE_SUFFIX"]
