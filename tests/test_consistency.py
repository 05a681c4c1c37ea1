"""Consistency training against the channel: the second view of a window and its use in training."""

import numpy as np
import pytest
import torch

from robodetect.simulate import VIEW_STAGES, channel_view


def _speech_like(seed: int = 0) -> np.ndarray:
    """1 s at 8 kHz: a harmonic burst in the middle, quiet noise around it."""
    rng = np.random.default_rng(seed)
    t = np.arange(8000) / 8000
    x = 0.002 * rng.standard_normal(8000)
    burst = slice(2000, 6000)
    x[burst] += 0.3 * sum(np.sin(2 * np.pi * 140 * k * t[burst]) / k for k in range(1, 6))
    return x.astype(np.float32)


def _draw_until(stage: str, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    for _ in range(100):
        y, name = channel_view(x, rng)
        if name == stage:
            return y
    raise AssertionError(f"{stage} never drawn")


def test_channel_view_draws_every_stage_reproducibly():
    x = _speech_like()
    a = [channel_view(x, np.random.default_rng(3)) for _ in range(2)]
    assert a[0][1] == a[1][1] and np.array_equal(a[0][0], a[1][0])
    rng = np.random.default_rng(0)
    seen = {channel_view(x, rng)[1] for _ in range(60)}
    assert seen == set(VIEW_STAGES)
    for stage in VIEW_STAGES:
        y = _draw_until(stage, x, np.random.default_rng(1))
        assert y.shape == x.shape and np.isfinite(y).all() and np.abs(y).max() <= 1.0


def _db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-20)


def test_each_stage_changes_the_window_as_documented():
    x = _speech_like()
    rng = np.random.default_rng(2)
    noise = _draw_until("noise", x, rng) - x
    active = np.abs(x) > 1e-4
    below = _db(x[active]) - _db(noise)
    assert 24.0 < below < 41.0, below  # 25-40 dB below the active level
    mp3 = _draw_until("mp3", x, rng)
    assert 0 < np.mean((mp3 - x) ** 2) < 0.1 * np.mean(x**2)  # coded, not destroyed
    suppressed = _draw_until("suppress", x, rng)
    quiet = np.r_[0:1500, 6500:8000]  # the noise around the burst is gated down
    assert _db(suppressed[quiet]) < _db(x[quiet]) - 5.0
    assert abs(_db(suppressed[2500:5500]) - _db(x[2500:5500])) < 1.5  # the burst is kept


def test_training_with_consistency_uses_the_views():
    from test_train import _toy_data

    from robodetect.model import ModelConfig
    from robodetect.train import consistency_views, train_model

    data = _toy_data()

    def weights(c, p=0.5, target="both"):
        m = train_model(
            data,
            ModelConfig(),
            epochs=1,
            batch_size=8,
            consistency=c,
            consistency_p=p,
            consistency_target=target,
            log=lambda *_: None,
        )
        return torch.cat([q.detach().flatten() for q in m.cnn.parameters()])

    assert torch.equal(weights(0.5), weights(0.5))  # seeded
    assert not torch.equal(weights(0.0), weights(0.5))
    # the same views (same draws) with a negligible and a strong gap term: the term itself moves the weights
    assert not torch.equal(weights(1e-12, 1.0), weights(2.0, 1.0))
    # a fixed target (stop-gradient on the window's own logit) trains other weights than a two-sided gap
    assert not torch.equal(weights(2.0, 1.0), weights(2.0, 1.0, "clean"))
    assert not torch.equal(weights(2.0, 1.0, "clean"), weights(2.0, 1.0, "clean-prob"))
    with pytest.raises(ValueError, match="consistency_target"):
        weights(2.0, 1.0, "view")
    m = train_model(data, ModelConfig(), epochs=1, batch_size=8, log=lambda *_: None)
    mel, pros = consistency_views(m, data.windows[:3], np.random.default_rng(0))
    assert mel.shape[0] == pros.shape[0] == 3 and torch.isfinite(mel).all()


@pytest.mark.parametrize("target", ["both", "clean", "clean-prob"])
def test_consistency_gap_sends_its_gradient_where_its_target_says(target):
    from robodetect.train import consistency_gap

    view = torch.tensor([0.0, 3.0, -20.0], requires_grad=True)
    own = torch.tensor([1.0, 30.0, 20.0], requires_grad=True)
    gap = consistency_gap(view, own, target)
    gap.pow(2).sum().backward()
    assert view.grad is not None and bool((view.grad != 0).any())
    if target == "both":
        torch.testing.assert_close(gap.detach(), torch.tensor([-1.0, -27.0, -40.0]))
        torch.testing.assert_close(own.grad, -view.grad)  # both logits pulled toward each other
    else:
        assert own.grad is None or not bool((own.grad != 0).any())  # the window's own score is fixed
    if target == "clean-prob":
        assert bool((gap.abs() <= 1.0).all())  # bounded: a confident own logit cannot blow it up
        torch.testing.assert_close(gap.detach(), torch.sigmoid(view.detach()) - torch.sigmoid(own.detach()))
    if target == "clean":
        torch.testing.assert_close(gap.detach(), view.detach() - own.detach())


def test_consistency_gap_refuses_an_unknown_target():
    from robodetect.train import consistency_gap

    with pytest.raises(ValueError, match="consistency_target"):
        consistency_gap(torch.zeros(2), torch.zeros(2), "view")
