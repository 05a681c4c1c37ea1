"""A model's description without its tensors: the JSON config, the shipped model names, and
where a model's files are. Imports no torch (the ONNX scoring engine and the CLI's start-up use it).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

import numpy as np

from . import scoring
from .features import LEGACY_PITCH_METHOD, PROSODY_NAMES, FrontEndConfig
from .vad import VadConfig

DEFAULT_MODEL = "robodetect-v2"  # the shipped model robodetect.load() uses


class ModelError(ValueError):
    """A model's files are missing, unreadable, or ask for settings this code cannot honour."""


POOLS = ("max", "avg")
TIME_POOLS = ("meanmax", "mean")
#: the classifier's last layer: "linear" (a logit, binary cross-entropy; v2-v6) or "cosine" (one-class
#: softmax, Zhang et al. 2021: the raw logit is -COSINE_SCALE * cos(w, hidden), trained to pull humans
#: inside a cone around w and push robots out of it, so what is unlike known humans reads as robot)
HEADS = ("linear", "cosine")
COSINE_SCALE = 20.0


@dataclass
class ModelConfig:
    """Everything needed to rebuild and interpret a model besides its tensors."""

    version: str = "untrained"
    channels: tuple[int, ...] = (16, 32, 48, 64)
    hidden: int = 32
    # the 2x2 pools between conv blocks: "max" (robodetect-v2/v3) or "avg" (a low-pass before each
    # subsampling: a shift of the input moves the output less)
    pool: str = "max"
    # pooling of the CNN's time axis into the embedding: "meanmax" (mean and max, v2/v3) or "mean"
    time_pool: str = "meanmax"
    head: str = "linear"  # the last layer (HEADS)
    filterbank: str = "mel"  # "mel" or "linear" band spacing of the spectral front end
    use_spectral: bool = True
    use_prosody: bool = True
    prosody_mean: list[float] = field(default_factory=lambda: [0.0] * len(PROSODY_NAMES))
    prosody_std: list[float] = field(default_factory=lambda: [1.0] * len(PROSODY_NAMES))
    # calibrated probability = sigmoid(calib_scale * logit + calib_bias), fitted on dev
    calib_scale: float = 1.0
    calib_bias: float = 0.0
    threshold: float = 0.5  # on the calibrated call probability
    # calibrated call probabilities between these are labelled "uncertain" (None: scoring's default
    # band around the threshold, see robodetect.scoring.Decision)
    uncertain_low: float | None = None
    uncertain_high: float | None = None
    # per prosody feature: human (5th, 95th) percentile on training data, for explanations
    human_ranges: dict[str, list[float]] = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)  # provenance: dev EER etc. (informational)
    # every front-end and VAD setting the weights were trained with (a JSON without them, like
    # robodetect-v2's, gets this code's defaults, which are what it was trained with)
    frontend: FrontEndConfig = field(default_factory=FrontEndConfig)
    vad: VadConfig = field(default_factory=VadConfig)

    @classmethod
    def from_dict(cls, data: dict, source: str = "<config>") -> ModelConfig:
        """Rebuild from the JSON form; raises :class:`ModelError` naming ``source`` for settings
        this code cannot honour (unknown or unsupported front-end / VAD parameters)."""
        data = dict(data)
        data["channels"] = tuple(data.get("channels", cls.channels))
        parts = {}
        for key, kind in (("frontend", FrontEndConfig), ("vad", VadConfig)):
            given = dict(data.get(key) or {})
            if key == "frontend":
                given.setdefault("pitch", LEGACY_PITCH_METHOD)  # JSON from before the pitch was recorded
            unknown = sorted(set(given) - set(kind.__dataclass_fields__))
            if unknown:
                raise ModelError(f"{source}: unknown {key} parameter(s) {', '.join(unknown)} (newer robodetect?)")
            # a VAD setting the JSON lacks did not exist when the model was trained: its old value
            parts[key] = VadConfig.legacy(**given) if key == "vad" else kind(**given)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        config = cls(**{**known, **parts})
        bad = config.frontend.unsupported() + config.vad.unsupported()
        bad += config.architecture_unsupported()
        if bad:
            raise ModelError(f"{source}: this robodetect cannot honour the model's " + "; ".join(bad))
        return config

    def architecture_unsupported(self) -> list[str]:
        """Architecture settings (pools, head) this code cannot build, as ``name=value (choices)``; empty when all can."""
        bad = []
        if self.pool not in POOLS:
            bad.append(f"pool={self.pool} (this code has {', '.join(POOLS)})")
        if self.time_pool not in TIME_POOLS:
            bad.append(f"time_pool={self.time_pool} (this code has {', '.join(TIME_POOLS)})")
        if self.head not in HEADS:
            bad.append(f"head={self.head} (this code has {', '.join(HEADS)})")
        return bad

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> ModelConfig:
        return cls.from_dict(json.loads(Path(path).read_text()), source=os.fspath(path))

    def probability(self, logits) -> np.ndarray:
        """Uncalibrated logits (any shape) -> calibrated robot probabilities (float64)."""
        return scoring.probability(logits, scale=self.calib_scale, bias=self.calib_bias)

    def decision(self, threshold: float | None = None, *, uncertain: bool = True) -> scoring.Decision:
        """Threshold + uncertain band; a ``threshold`` other than the model's gets the default band."""
        if threshold is not None and threshold != self.threshold:
            return scoring.Decision.make(threshold, uncertain=uncertain)
        band = (self.uncertain_low, self.uncertain_high)
        return scoring.Decision.make(self.threshold, band, uncertain=uncertain)

    def to_dict(self) -> dict:
        """The JSON form. Front-end settings added after models were shipped are left out while
        off (``fine_bands`` 0, ``group_delay`` and ``band_norm`` false), so an older model's JSON and digest stay
        what they were."""
        data = asdict(self)
        if not self.frontend.fine_bands:
            for key in ("fine_bands", "fine_f_max"):
                data["frontend"].pop(key)
        for key in ("group_delay", "band_norm"):
            if not getattr(self.frontend, key):
                data["frontend"].pop(key)
        return data

    def to_json(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n")


def available_models() -> list[str]:
    """Names of the models shipped inside the package (``robodetect/models/<name>.safetensors``)."""
    root = _models_root()
    suffix = ".safetensors"
    return sorted(p.name[: -len(suffix)] for p in root.iterdir() if p.name.endswith(suffix))


def _models_root() -> Traversable:
    return resources.files("robodetect") / "models"


def find_model(name_or_path: str | os.PathLike | None = None) -> tuple[Traversable | Path, Traversable | Path, str]:
    """(JSON file, weights file, a name for messages) of a shipped model by name (None:
    :data:`DEFAULT_MODEL`), read from inside the package (works from a wheel, a ``--user`` install
    or a zip), or of a model stem path (``stem[.safetensors|.json]``). Raises :class:`ModelError`
    listing the shipped names when neither exists. Either file may be an importlib Traversable:
    read it with ``read_text()`` / ``read_bytes()``."""
    name = DEFAULT_MODEL if name_or_path is None else os.fspath(name_or_path)
    if name in available_models():
        root = _models_root()
        return root / f"{name}.json", root / f"{name}.safetensors", f"robodetect/models/{name}.json"
    stem = Path(name)
    if stem.suffix in (".safetensors", ".json"):
        stem = stem.with_suffix("")
    config, weights = stem.with_suffix(".json"), stem.with_suffix(".safetensors")
    missing = [p for p in (weights, config) if not p.is_file()]
    if missing:
        raise ModelError(
            f"model {name!r} not found: not a shipped model (available: {', '.join(available_models())}) "
            f"and no {' / '.join(map(str, missing))}"
        )
    return config, weights, os.fspath(config)


def source_digest(config_bytes: bytes, weights_bytes: bytes) -> str:
    """sha256 (hex) of a model's JSON and weights files as stored: what a derived file (the ONNX
    scoring engine's graph) records to prove it was made from exactly these."""
    h = hashlib.sha256()
    for part in (b"robodetect-json", config_bytes, b"robodetect-weights", weights_bytes):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()
