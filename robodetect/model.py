"""The robot-voice model: a small CNN over log-mel windows fused with per-window prosody.

Weights are stored as safetensors (no pickled code) with a JSON config beside them that carries
the architecture, the prosody normalisation, the calibration and the decision threshold.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import load_file, save_file
from torch import nn

from .config import COSINE_SCALE, DEFAULT_MODEL, ModelConfig, ModelError, available_models, find_model
from .features import N_MELS, PROSODY_NAMES
from .frontend import FrontEnd


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
        if self.config.architecture_unsupported():
            raise ValueError("RobotNet cannot be built: " + "; ".join(self.config.architecture_unsupported()))
        pool = nn.MaxPool2d if self.config.pool == "max" else nn.AvgPool2d
        for i, c_out in enumerate(c):
            layers.append(_conv_block(c_in, c_out))
            if i < len(c) - 1:
                layers.append(pool(2))
            c_in = c_out
        self.cnn = nn.Sequential(*layers)
        n_pros = len(PROSODY_NAMES)
        self.register_buffer("prosody_mean", torch.tensor(self.config.prosody_mean, dtype=torch.float32))
        self.register_buffer("prosody_std", torch.tensor(self.config.prosody_std, dtype=torch.float32))
        #: width of the spectral part of :meth:`embed` (mean + max pooled CNN channels; 0 without it)
        self.spec_dim = (2 if self.config.time_pool == "meanmax" else 1) * c[-1] if self.config.use_spectral else 0
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
            parts += [h.mean(-1), h.amax(-1)] if self.config.time_pool == "meanmax" else [h.mean(-1)]
        if self.config.use_prosody:
            parts.append((prosody - self.prosody_mean) / self.prosody_std)
        return torch.cat(parts, -1)

    def head(self, logmel: torch.Tensor, prosody: torch.Tensor) -> torch.Tensor:
        """Features -> logits (B,)."""
        return self.classify(self.embed(logmel, prosody))

    def classify(self, emb: torch.Tensor) -> torch.Tensor:
        """Pooled embedding -> raw logits (B,): the MLP's linear output, or for a ``cosine`` head
        -COSINE_SCALE times the cosine between the hidden layer and the human direction."""
        if self.config.head != "cosine":
            return self.head_mlp(emb).squeeze(-1)
        hidden = self.head_mlp[:-1](emb)
        w = self.head_mlp[-1].weight[0]
        cos = (hidden @ w) / (hidden.norm(dim=-1) * w.norm()).clamp_min(1e-8)
        return -COSINE_SCALE * cos

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        logmel, prosody = self.features(wav)
        return self.head(logmel, prosody)


class _ChannelsLast(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last)


def inference_model(model: RobotNet, device: str | torch.device = "cpu") -> RobotNet:
    """A copy of ``model`` for scoring (the one fast path of score, stream and scan): each
    conv + batch-norm folded into one conv, max-pool before ReLU, the CNN in channels-last
    memory, on ``device``.
    Same function as the eager model: logits agree within 1e-5 (tests/test_fast_path.py)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    fast = copy.deepcopy(model).eval()
    layers: list[nn.Module] = [_ChannelsLast()]
    for block in fast.cnn:
        if isinstance(block, nn.Sequential) and len(block) == 3 and isinstance(block[1], nn.BatchNorm2d):
            layers += [fuse_conv_bn_eval(block[0], block[1]), block[2]]
        else:
            layers.append(block)
    # ReLU after the max-pool instead of before: the same numbers (max and ReLU commute, both
    # monotone) with the ReLU on a quarter of the values
    for i in range(len(layers) - 1):
        if isinstance(layers[i], nn.ReLU) and isinstance(layers[i + 1], nn.MaxPool2d):
            layers[i], layers[i + 1] = layers[i + 1], layers[i]
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


def resolve_model(name_or_path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> RobotNet:
    """A shipped model by name (None: :data:`DEFAULT_MODEL`), read from inside the package (works
    from a wheel, a ``--user`` install or a zip), or a model stem path (``stem[.safetensors|.json]``).
    Raises :class:`ModelError` listing the shipped names when neither exists."""
    config_file, weights_file, source = find_model(name_or_path)
    config = ModelConfig.from_dict(json.loads(config_file.read_text()), source=source)
    return model_from_state(config, load_safetensors(weights_file.read_bytes()), device)


def model_digest(model: RobotNet) -> str:
    """sha256 (hex) of the model's tensors and its full config (front end, VAD, calibration,
    threshold, band): two models with any difference that can change a score or a label differ."""
    h = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True).encode())
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
