"""RawBoost-style waveform augmentation for training (Tak et al., ICASSP 2022), batched in torch.

Two of RawBoost's three algorithms, in series, on 8 kHz windows:

1. **linear and non-linear convolutive noise**: the window and its powers x^2 .. x^N_f, each
   through its own random FIR filter (a cascade of ``n_bands`` Hamming-windowed band-stop
   filters at random centres, widths and lengths, peak-normalised, zero-phase), summed; the non-linear terms 5-20 dB
   under the linear one. A random microphone / loudspeaker / amplifier: coloured, notched and
   mildly distorted.
2. **stationary signal-independent noise**: white noise through another such filter, added at a
   random SNR of 10-40 dB.

The official code designs each filter with ``scipy.signal.firwin`` per window (~4 ms a window on
this project's CPU); here the band filters are closed-form windowed sincs for a whole batch at once
and filtering is one FFT product per window, its linear-phase delay removed (as RawBoost's
``filterFIR`` trims it). Session 15's leave-outs ran a buggy variant (band-*pass* cascades, delayed):
``RawBoostConfig(notch=False)``, ``scripts/train.py --rawboost-filter pass``. Frequencies are the
paper's 16 kHz settings halved for 8 kHz audio (bands 20-4000 Hz, 50-500 Hz wide); filter lengths
as the paper's (10-100 taps, made odd).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .features import SAMPLE_RATE


@dataclass(frozen=True)
class RawBoostConfig:
    n_orders: int = 5  # x, x^2 .. x^n_orders
    n_bands: int = 5  # band-passes cascaded per filter
    f_min: float = 20.0
    f_max: float = SAMPLE_RATE / 2
    bw_min: float = 50.0
    bw_max: float = 500.0
    taps_min: int = 10
    taps_max: int = 100
    nonlinear_db: tuple[float, float] = (-20.0, -5.0)  # gain of the non-linear terms
    snr_db: tuple[float, float] = (10.0, 40.0)  # of the additive coloured noise
    #: True: RawBoost's filters, cascades of band-*stop* (notch) filters (``firwin``'s default
    #: ``pass_zero=True``), unit gain at 0 Hz, their linear-phase delay removed as RawBoost's
    #: ``filterFIR`` does. False: session 15's measured variant, cascades of band-*pass* filters
    #: (which leave each window a band ~80 Hz wide) filtered causally (delayed ~30 ms): a bug kept
    #: only so that the leave-outs reported in the model card can be reproduced.
    notch: bool = True


def _uniform(shape, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=gen, dtype=torch.float64)


def random_filters(n: int, cfg: RawBoostConfig, n_fft: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` random RawBoost filters as frequency responses on an ``n_fft``-point rfft grid
    (complex64, (n, n_fft // 2 + 1)), each a cascade of ``cfg.n_bands`` Hamming-windowed sinc
    band-stops (``cfg.notch``; band-passes otherwise), scaled so that its largest gain is 1. Every
    band filter has its own odd length. Notch cascades are zero-phase (their delay removed)."""
    nb = cfg.n_bands
    fs = float(SAMPLE_RATE)
    fc = _uniform((n, nb), cfg.f_min, cfg.f_max, gen)
    bw = _uniform((n, nb), cfg.bw_min, cfg.bw_max, gen)
    f1 = (fc - bw / 2).clamp_min(1e-3)
    f2 = (fc + bw / 2).clamp_max(fs / 2 - 1e-3)
    taps = torch.randint(cfg.taps_min, cfg.taps_max + 1, (n, nb), generator=gen)
    taps = taps + (taps % 2 == 0).long()  # odd, like RawBoost's firwin calls
    longest = int(taps.max())
    k = torch.arange(longest, dtype=torch.float64) - (longest - 1) / 2  # centred tap positions
    half = ((taps - 1) / 2).double()[..., None]
    inside = k.abs()[None, None, :] <= half
    # ideal band-pass (f1, f2) sampled at k, Hamming window over each band filter's own length
    lo, hi = (2 * f / fs for f in (f1, f2))
    h = hi[..., None] * torch.sinc(hi[..., None] * k) - lo[..., None] * torch.sinc(lo[..., None] * k)
    win = 0.54 + 0.46 * torch.cos(math.pi * k / half.clamp_min(1.0))
    if cfg.notch:  # band-stop = all-pass (sinc at integer k: a unit impulse) minus the band-pass
        h = torch.sinc(k) - h
    h = torch.where(inside, h * win, torch.zeros_like(h))
    if cfg.notch:  # firwin scales a filter whose first band starts at 0 Hz to unit gain there
        h = h / h.sum(-1, keepdim=True)
    else:  # firwin scales a band-pass to unit gain at its centre frequency
        phase = torch.exp(-2j * math.pi * ((fc + 0.0) / fs)[..., None] * k)
        h = h / (h * phase).sum(-1).abs()[..., None].clamp_min(1e-12)
    # the cascade as one kernel (centring shifts only add delay), then its response on the grid
    n_small = 1 << math.ceil(math.log2(nb * longest))
    kernel = torch.fft.irfft(torch.fft.rfft(h, n_small).prod(1), n_small).float()
    resp = torch.fft.rfft(kernel, n_fft)
    if cfg.notch:  # each band filter is centred (longest - 1) / 2 taps late: remove the delay
        delay = nb * (longest - 1) // 2
        resp = resp * torch.exp(2j * math.pi * delay * torch.arange(resp.shape[-1]) / n_fft).to(resp.dtype)
    peak = (resp.real**2 + resp.imag**2).amax(-1, keepdim=True).sqrt()  # (complex abs is slow)
    return resp / peak.clamp_min(1e-12)


def _fast_size(n: int) -> int:
    """The smallest FFT size >= n with no prime factor above 5 (pocketfft's fast sizes)."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def _filter(x: torch.Tensor, resp: torch.Tensor, n_fft: int) -> torch.Tensor:
    """FIR filtering of rows of ``x`` by responses on the ``n_fft`` grid (the first len(x) samples;
    ``n_fft`` >= len(x) + the kernel's length, so nothing wraps around)."""
    return torch.fft.irfft(torch.fft.rfft(x, n_fft) * resp, n_fft)[..., : x.shape[-1]]


def rawboost(wav: torch.Tensor, gen: torch.Generator, cfg: RawBoostConfig | None = None) -> torch.Tensor:
    """RawBoost algorithms 1 then 3 on a batch of windows (B, n) (float, any scale): returns float32
    windows peak-normalised to 0.5 (the model's front end is gain-invariant)."""
    cfg = cfg or RawBoostConfig()
    b, n = wav.shape
    if b == 0:
        return wav.float()
    x = wav.float()
    x = x / x.abs().amax(-1, keepdim=True).clamp_min(1e-9)
    n_fft = _fast_size(n + cfg.n_bands * (cfg.taps_max + 1))
    # 1. linear and non-linear convolutive noise
    resp = random_filters(b * cfg.n_orders, cfg, n_fft, gen).reshape(b, cfg.n_orders, -1)
    gain_db = _uniform((b, cfg.n_orders), *cfg.nonlinear_db, gen).float()
    gain_db[:, 0] = 0.0
    powers = torch.stack([x ** (i + 1) for i in range(cfg.n_orders)], 1)  # (B, orders, n)
    y = (_filter(powers, resp, n_fft) * (10 ** (gain_db / 20))[..., None]).sum(1)
    y = y - y.mean(-1, keepdim=True)
    y = y / y.abs().amax(-1, keepdim=True).clamp_min(1e-9)
    # 3. stationary signal-independent (coloured) noise at a random SNR
    noise = torch.randn((b, n), generator=gen)
    noise = _filter(noise, random_filters(b, cfg, n_fft, gen), n_fft)
    snr = _uniform((b, 1), *cfg.snr_db, gen).float()
    scale = y.norm(dim=-1, keepdim=True) / noise.norm(dim=-1, keepdim=True).clamp_min(1e-12) / 10 ** (snr / 20)
    y = y + noise * scale
    return (0.5 * y / y.abs().amax(-1, keepdim=True).clamp_min(1e-9)).float()
