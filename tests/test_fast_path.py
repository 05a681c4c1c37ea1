"""The one fast inference path (batch-norm folded, channels-last) that score, stream and scan run
equals the eager training model within 1e-5 on logits."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conftest import SAMPLES
from torch import nn

import robodetect
from robodetect.audio import load_audio
from robodetect.detector import analyze
from robodetect.model import ModelConfig, RobotNet, inference_model, load_model, save_model

TOL = 1e-5


@pytest.fixture(scope="module")
def windows() -> np.ndarray:
    return np.concatenate([analyze(load_audio(p, "mix").samples[0]).windows for p in sorted(SAMPLES.glob("*.wav"))])


def _eager(model, windows: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model(torch.from_numpy(windows)).numpy()


def test_shipped_model_fast_path_equals_eager(windows):
    det = robodetect.load()
    logits, _ = det.window_logits(windows)  # the fast path, in score-sized batches
    eager = _eager(det.model, windows)
    assert det.fast_model is not det.model and len(windows) > 60
    assert np.abs(eager).max() > 5  # real, confident logits
    np.testing.assert_allclose(logits, eager, atol=TOL, rtol=0)


def test_fast_path_with_nontrivial_batch_norm(model_stem, windows):
    model = load_model(model_stem)
    torch.manual_seed(1)
    for m in model.modules():  # batch-norm statistics far from identity, as a trained model has
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)
    fast = inference_model(copy.deepcopy(model))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    np.testing.assert_allclose(_eager(fast, windows), _eager(model, windows), atol=TOL, rtol=0)


@pytest.mark.parametrize(("pool", "time_pool"), [("avg", "mean"), ("avg", "meanmax"), ("max", "mean")])
def test_fast_path_with_other_pooling(windows, pool, time_pool, tmp_path):
    """Average pools between blocks (ReLU must stay before them: it does not commute with a mean)
    and mean-only time pooling: the fast path and a saved-and-loaded copy equal the eager model."""
    torch.manual_seed(2)
    model = RobotNet(ModelConfig(pool=pool, time_pool=time_pool)).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    pools = [m for m in model.cnn if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))]
    assert pools and all(isinstance(m, nn.AvgPool2d if pool == "avg" else nn.MaxPool2d) for m in pools)
    assert model.head_mlp[0].in_features == (1 if time_pool == "mean" else 2) * model.config.channels[-1] + 6
    eager = _eager(model, windows)
    np.testing.assert_allclose(_eager(inference_model(copy.deepcopy(model)), windows), eager, atol=TOL, rtol=0)
    save_model(model, tmp_path / "m")
    np.testing.assert_allclose(_eager(load_model(tmp_path / "m"), windows), eager, atol=TOL, rtol=0)


def test_cosine_head_fast_path_and_json(windows, tmp_path):
    """A one-class (cosine) head: logits are -COSINE_SCALE * cos(hidden, w), so within +-20; the fast
    path and a saved-and-loaded copy equal the eager model; the JSON records the head."""
    from robodetect.config import COSINE_SCALE

    torch.manual_seed(3)
    model = RobotNet(ModelConfig(head="cosine", pool="avg", time_pool="mean")).eval()
    eager = _eager(model, windows)
    assert np.abs(eager).max() <= COSINE_SCALE + 1e-4 and eager.std() > 0
    with torch.inference_mode():
        hidden = model.head_mlp[:-1](model.embed(*model.features(torch.from_numpy(windows[:4]))))
        cos = torch.nn.functional.cosine_similarity(hidden, model.head_mlp[-1].weight, dim=-1)
    np.testing.assert_allclose(eager[:4], (-COSINE_SCALE * cos).numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(_eager(inference_model(copy.deepcopy(model)), windows), eager, atol=TOL, rtol=0)
    save_model(model, tmp_path / "m")
    assert '"head": "cosine"' in (tmp_path / "m.json").read_text()
    np.testing.assert_allclose(_eager(load_model(tmp_path / "m"), windows), eager, atol=TOL, rtol=0)


def test_unknown_pooling_or_head_is_refused():
    from robodetect.config import ModelError

    with pytest.raises(ModelError, match="pool=median"):
        ModelConfig.from_dict({"pool": "median"})
    with pytest.raises(ModelError, match="time_pool=max"):
        ModelConfig.from_dict({"time_pool": "max"})
    with pytest.raises(ModelError, match="head=arcface"):
        ModelConfig.from_dict({"head": "arcface"})
    assert ModelConfig.from_dict({}).head == "linear"  # JSONs from before the key: v2-v6
