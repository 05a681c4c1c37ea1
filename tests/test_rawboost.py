"""RawBoost augmentation: filters as RawBoost's firwin designs, output shape/scale, the noise it adds."""

import numpy as np
import torch
from scipy import signal

from robodetect.rawboost import RawBoostConfig, _fast_size, random_filters, rawboost


def test_one_band_filter_is_firwins_band_pass():
    """With one band per filter the response is scipy's Hamming firwin band-pass of the same
    length and band edges (peak-normalised), as RawBoost's own genNotchCoeffs designs it."""
    cfg = RawBoostConfig(n_bands=1)
    n_fft = 4096
    resp = random_filters(4, cfg, n_fft, torch.Generator().manual_seed(3))
    draw = torch.Generator().manual_seed(3)  # the same draws, in random_filters' order
    fc = 20 + (4000 - 20) * torch.rand((4, 1), generator=draw, dtype=torch.float64)
    bw = 50 + 450 * torch.rand((4, 1), generator=draw, dtype=torch.float64)
    taps = torch.randint(10, 101, (4, 1), generator=draw)
    taps = taps + (taps % 2 == 0).long()
    for i in range(4):
        f1 = max(float(fc[i, 0] - bw[i, 0] / 2), 1e-3)
        f2 = min(float(fc[i, 0] + bw[i, 0] / 2), 4000 - 1e-3)
        b = signal.firwin(int(taps[i, 0]), [f1, f2], window="hamming", fs=8000, pass_zero=False)
        _, h = signal.freqz(b, 1, worN=n_fft // 2 + 1, fs=8000, include_nyquist=True)
        np.testing.assert_allclose(resp[i].abs().numpy(), np.abs(h) / np.abs(h).max(), atol=1e-4)


def test_rawboost_colours_each_window_reproducibly():
    white = torch.randn(6, 16000, generator=torch.Generator().manual_seed(5))
    a = rawboost(white, torch.Generator().manual_seed(0))
    b = rawboost(white, torch.Generator().manual_seed(0))
    c = rawboost(white, torch.Generator().manual_seed(1))
    assert a.shape == white.shape and a.dtype == torch.float32 and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.testing.assert_close(a.abs().amax(-1), torch.full((6,), 0.5))

    def band_db(x):  # energy in 16 equal bands, dB, per window
        spec = torch.fft.rfft(x).abs()[:, :8000] ** 2
        return 10 * torch.log10(spec.reshape(len(x), 16, -1).sum(-1))

    # white noise in: flat within ~1 dB; out: a random channel's colour (tens of dB across bands)
    assert (band_db(white).std(-1) < 1.0).all()
    assert (band_db(a).std(-1) > 6.0).all(), band_db(a).std(-1)
    # each window gets its own channel
    assert (band_db(a)[0] - band_db(a)[1]).abs().max() > 6.0
    assert rawboost(torch.zeros(0, 16000), torch.Generator()).shape == (0, 16000)


def test_fast_size():
    assert _fast_size(16505) == 16875 and _fast_size(16384) == 16384 and _fast_size(7) == 8


def test_training_with_rawboost_re_featurises_windows():
    from test_train import _toy_data

    from robodetect.model import ModelConfig
    from robodetect.train import train_model

    data = _toy_data()

    def weights(p):
        m = train_model(data, ModelConfig(), epochs=1, batch_size=8, rawboost_p=p, log=lambda *_: None)
        return torch.cat([q.detach().flatten() for q in m.cnn.parameters()])

    assert torch.equal(weights(0.0), weights(0.0))
    assert not torch.equal(weights(0.0), weights(1.0))
