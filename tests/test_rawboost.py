"""RawBoost augmentation: filters as RawBoost's firwin designs, output shape/scale, the noise it adds."""

import numpy as np
import torch
from scipy import signal

from robodetect.rawboost import RawBoostConfig, _fast_size, random_filters, rawboost


def _band_draws(seed: int, shape: tuple[int, int]):
    """random_filters' draws for ``shape`` (filters, bands) from ``seed``, in its order: the band
    edges as firwin gets them (clamped inside 0-4 kHz) and the odd tap counts."""
    draw = torch.Generator().manual_seed(seed)
    fc = 20 + (4000 - 20) * torch.rand(shape, generator=draw, dtype=torch.float64)
    bw = 50 + 450 * torch.rand(shape, generator=draw, dtype=torch.float64)
    taps = torch.randint(10, 101, shape, generator=draw)
    taps = taps + (taps % 2 == 0).long()
    lo, hi = (fc - bw / 2).clamp_min(1e-3), (fc + bw / 2).clamp_max(4000 - 1e-3)
    edges = [[(float(lo[i, j]), float(hi[i, j])) for j in range(shape[1])] for i in range(shape[0])]
    return edges, taps


def test_filters_are_rawboosts_notch_cascades_without_delay():
    """RawBoost's genNotchCoeffs: firwin(c, [f1, f2]) with its default pass_zero (a band-stop)
    for each of 5 bands, cascaded by np.convolve, peak-normalised; filterFIR removes the delay.
    Compared as complex responses (magnitude and zero phase)."""
    n_fft = 4096
    resp = random_filters(3, RawBoostConfig(), n_fft, torch.Generator().manual_seed(3))
    edges, taps = _band_draws(3, (3, 5))
    for i in range(3):
        b = np.array([1.0])
        for j in range(5):
            f1, f2 = edges[i][j]
            b = np.convolve(signal.firwin(int(taps[i, j]), [f1, f2], window="hamming", fs=8000), b)
        delay = (len(b) - 1) // 2
        h = np.fft.rfft(b, n_fft) * np.exp(2j * np.pi * delay * np.arange(n_fft // 2 + 1) / n_fft)
        np.testing.assert_allclose(resp[i].numpy(), h / np.abs(h).max(), atol=1e-4)
        assert (np.abs(h) / np.abs(h).max() > 0.5).mean() > 0.5  # notches: most of the band passes


def test_rawboost_keeps_timing():
    """Zero-phase filtering: a click stays where it was (the measured band-pass variant delayed it)."""
    x = torch.zeros(4, 16000)
    x[:, 8000] = 1.0
    quiet = RawBoostConfig(n_orders=1, snr_db=(120.0, 120.0))
    y = rawboost(x, torch.Generator().manual_seed(0), quiet)
    assert (y.abs().argmax(-1) == 8000).all()
    late = rawboost(x, torch.Generator().manual_seed(0), RawBoostConfig(n_orders=1, snr_db=(120.0, 120.0), notch=False))
    assert (late.abs().argmax(-1) > 8100).all()


def test_band_pass_variant_is_firwins_band_pass():
    """Session 15's measured variant (notch=False): with one band per filter the response is
    scipy's Hamming firwin band-pass of the same length and band edges (peak-normalised)."""
    cfg = RawBoostConfig(n_bands=1, notch=False)
    n_fft = 4096
    resp = random_filters(4, cfg, n_fft, torch.Generator().manual_seed(3))
    edges, taps = _band_draws(3, (4, 1))
    for i in range(4):
        f1, f2 = edges[i][0]
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

    # white noise in: flat within ~1 dB; out: a random channel's notches (several dB across
    # bands), most of the band kept (the band-pass bug left one narrow band)
    assert (band_db(white).std(-1) < 1.0).all()
    out = band_db(a)
    assert (out.std(-1) > 2.0).all(), out.std(-1)
    assert ((out > out.amax(-1, keepdim=True) - 10).float().mean(-1) >= 0.5).all()
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
