"""The robot-voice model: a small CNN over log-mel windows fused with per-window prosody.

Weights are stored as safetensors (no pickled code) with a JSON config beside them that carries
the architecture, the prosody normalisation, the calibration and the decision threshold.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import load_file, save_file
from torch import nn

from . import scoring
from .features import LEGACY_PITCH_METHOD, N_MELS, PROSODY_NAMES, FrontEnd, FrontEndConfig
from .vad import VadConfig

DEFAULT_MODEL = "robodetect-v2"  # the shipped model robodetect.load() uses


class ModelError(ValueError):
    """A model's files are missing, unreadable, or ask for settings this code cannot honour."""


@dataclass
class ModelConfig:
    """Everything needed to rebuild and interpret a model besides its tensors."""

    version: str = "untrained"
    channels: tuple[int, ...] = (16, 32, 48, 64)
    hidden: int = 32
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
            parts[key] = kind(**given)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        config = cls(**{**known, **parts})
        bad = config.frontend.unsupported() + config.vad.unsupported()
        if bad:
            raise ModelError(f"{source}: this robodetect cannot honour the model's " + "; ".join(bad))
        return config

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

    def to_json(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2, sort_keys=True, allow_nan=False) + "\n")


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class RobotNet(nn.Module):
    """Raw 8 kHz speech windows (B, WINDOW_SAMPLES) -> uncalibrated robot logits (B,).

    The front end (STFT, mel, prosody) is part of the module, so the exported graph needs no
    librosa. ``features()`` and ``head()`` are exposed separately so training can cache features.
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        if not (self.config.use_spectral or self.config.use_prosody):
            raise ValueError("RobotNet needs spectral or prosody input (both are disabled)")
        c = self.config.channels
        self.frontend = FrontEnd(self.config.filterbank, self.config.frontend)
        layers: list[nn.Module] = []
        c_in = 1
        for i, c_out in enumerate(c):
            layers.append(_conv_block(c_in, c_out))
            if i < len(c) - 1:
                layers.append(nn.MaxPool2d(2))
            c_in = c_out
        self.cnn = nn.Sequential(*layers)
        n_pros = len(PROSODY_NAMES)
        self.register_buffer("prosody_mean", torch.tensor(self.config.prosody_mean, dtype=torch.float32))
        self.register_buffer("prosody_std", torch.tensor(self.config.prosody_std, dtype=torch.float32))
        #: width of the spectral part of :meth:`embed` (mean + max pooled CNN channels; 0 without it)
        self.spec_dim = 2 * c[-1] if self.config.use_spectral else 0
        pros_dim = n_pros if self.config.use_prosody else 0
        self.head_mlp = nn.Sequential(
            nn.Linear(self.spec_dim + pros_dim, self.config.hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(0.2),
            nn.Linear(self.config.hidden, 1),
        )

    def features(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, WINDOW_SAMPLES) -> (log-mel (B, N_MELS, T), prosody (B, 6))."""
        return self.frontend(wav)

    def embed(self, logmel: torch.Tensor, prosody: torch.Tensor) -> torch.Tensor:
        """Features -> the pooled embedding the classifier sees: (B, 2*C [+ 6])."""
        parts = []
        if self.config.use_spectral:
            h = self.cnn(logmel.unsqueeze(1))  # (B, C, F', T')
            h = h.mean(2)  # over frequency -> (B, C, T')
            parts += [h.mean(-1), h.amax(-1)]
        if self.config.use_prosody:
            parts.append((prosody - self.prosody_mean) / self.prosody_std)
        return torch.cat(parts, -1)

    def head(self, logmel: torch.Tensor, prosody: torch.Tensor) -> torch.Tensor:
        """Features -> logits (B,)."""
        return self.head_mlp(self.embed(logmel, prosody)).squeeze(-1)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        logmel, prosody = self.features(wav)
        return self.head(logmel, prosody)


class _ChannelsLast(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last)


def inference_model(model: RobotNet, device: str | torch.device = "cpu") -> RobotNet:
    """A copy of ``model`` for scoring (the one fast path of score, stream and scan): each
    conv + batch-norm folded into one conv, the CNN in channels-last memory, on ``device``.
    Same function as the eager model: logits agree within 1e-5 (tests/test_fast_path.py)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    fast = copy.deepcopy(model).eval()
    layers: list[nn.Module] = [_ChannelsLast()]
    for block in fast.cnn:
        if isinstance(block, nn.Sequential) and len(block) == 3 and isinstance(block[1], nn.BatchNorm2d):
            layers += [fuse_conv_bn_eval(block[0], block[1]), block[2]]
        else:
            layers.append(block)
    fast.cnn = nn.Sequential(*layers).to(memory_format=torch.channels_last)
    return fast.to(device).eval()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_model(model: RobotNet, path_stem: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``<stem>.safetensors`` and ``<stem>.json``; returns both paths."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    weights, config = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    model.config.prosody_mean = model.prosody_mean.tolist()
    model.config.prosody_std = model.prosody_std.tolist()
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(weights), metadata={"version": model.config.version})
    model.config.to_json(config)
    return weights, config


def load_model(path_stem: str | os.PathLike, device: str | torch.device = "cpu") -> RobotNet:
    """Load ``<stem>.safetensors`` + ``<stem>.json`` (no pickle involved) in eval mode; raises
    :class:`ModelError` when the JSON asks for settings this code cannot honour."""
    stem = Path(path_stem)
    config = ModelConfig.from_json(stem.with_suffix(".json"))
    return model_from_state(config, load_file(str(stem.with_suffix(".safetensors"))), device)


def model_from_state(
    config: ModelConfig, state: dict[str, torch.Tensor], device: str | torch.device = "cpu"
) -> RobotNet:
    """A :class:`RobotNet` for ``config`` with the tensors ``state``, in eval mode on ``device``."""
    model = RobotNet(config)
    model.load_state_dict(state)
    return model.to(device).eval()


def available_models() -> list[str]:
    """Names of the models shipped inside the package (``robodetect/models/<name>.safetensors``)."""
    root = resources.files(__package__) / "models"
    suffix = ".safetensors"
    return sorted(p.name[: -len(suffix)] for p in root.iterdir() if p.name.endswith(suffix))


def resolve_model(name_or_path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> RobotNet:
    """A shipped model by name (None: :data:`DEFAULT_MODEL`), read from inside the package (works
    from a wheel, a ``--user`` install or a zip), or a model stem path (``stem[.safetensors|.json]``).
    Raises :class:`ModelError` listing the shipped names when neither exists."""
    name = DEFAULT_MODEL if name_or_path is None else os.fspath(name_or_path)
    if name in available_models():
        root = resources.files(__package__) / "models"
        source = f"robodetect/models/{name}.json"
        config = ModelConfig.from_dict(json.loads((root / f"{name}.json").read_text()), source=source)
        return model_from_state(config, load_safetensors((root / f"{name}.safetensors").read_bytes()), device)
    stem = Path(name)
    if stem.suffix in (".safetensors", ".json"):
        stem = stem.with_suffix("")
    missing = [p for p in (stem.with_suffix(".safetensors"), stem.with_suffix(".json")) if not p.is_file()]
    if missing:
        raise ModelError(
            f"model {name!r} not found: not a shipped model (available: {', '.join(available_models())}) "
            f"and no {' / '.join(map(str, missing))}"
        )
    return load_model(stem, device)


def model_digest(model: RobotNet) -> str:
    """sha256 (hex) of the model's tensors and its full config (front end, VAD, calibration,
    threshold, band): two models with any difference that can change a score or a label differ."""
    h = hashlib.sha256(json.dumps(asdict(model.config), sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


__all__ = [
    "ModelConfig",
    "ModelError",
    "RobotNet",
    "save_model",
    "load_model",
    "model_from_state",
    "model_digest",
    "inference_model",
    "available_models",
    "resolve_model",
    "DEFAULT_MODEL",
    "count_parameters",
    "N_MELS",
]
