"""Training loop pieces: per-window flags and the language-adversarial option."""

import numpy as np
import torch

from robodetect.model import ModelConfig
from robodetect.train import CallData, _GradReverse, train_model


def _toy_data(n_calls: int = 8) -> CallData:
    rng = np.random.default_rng(0)
    calls, windows, owner = [], [], []
    for cid in range(n_calls):
        robot, zh = cid % 2 == 1, cid % 4 >= 2
        calls.append({"call_id": cid, "label": "robot" if robot else "human", "lang": "zh" if zh else "en"})
        t = np.arange(16000) / 8000
        tone = np.sin(2 * np.pi * (150 + 100 * robot) * t) * 0.3
        for _ in range(2):
            windows.append((tone + rng.normal(0, 0.02, 16000)) * 32767 * 0.5)
            owner.append(cid)
    return CallData(np.array(windows).astype(np.int16), np.array(owner, np.int32), calls)


def test_window_flags_follow_calls():
    data = _toy_data()
    assert data.window_labels().tolist() == [0, 0, 1, 1, 0, 0, 1, 1] * 2
    assert data.window_flags("lang", "zh").tolist() == [0, 0, 0, 0, 1, 1, 1, 1] * 2


def test_gradient_reversal():
    x = torch.ones(3, requires_grad=True)
    (_GradReverse.apply(x, 0.5) * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([-0.5, -1.0, -1.5]))


def test_language_adversary_trains_and_is_not_saved():
    data = _toy_data()
    model = train_model(data, ModelConfig(), epochs=2, batch_size=8, lang_adversary=1.0, log=lambda *_: None)
    assert not model.training
    assert not any("advers" in k for k in model.state_dict())
    with torch.no_grad():
        out = model(torch.from_numpy(data.windows.astype(np.float32) / 32768))
    assert out.shape == (len(data.windows),) and torch.isfinite(out).all()
