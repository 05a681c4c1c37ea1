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
from robodetect.model import inference_model, load_model

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
