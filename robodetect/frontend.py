"""The torch front end: raw 8 kHz windows -> normalised log filterbank energies + prosody.

Constants, filterbanks and pitch bases are numpy code in :mod:`robodetect.features`; this module
turns them into the :class:`FrontEnd` module that training, scoring and the exports all run.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .features import (
    ACTIVE_RANGE_DB,
    FILTERBANKS,
    FINE_N_FFT,
    GROUP_DELAY_SCALE,
    HOP_LENGTH,
    LEGACY_PITCH_METHOD,
    N_FFT,
    OCTAVE_COST,
    PITCH_N_FFT,
    SAMPLE_RATE,
    VOICING_THRESHOLD,
    FrontEndConfig,
    _acf_basis,
    _circular_acf_basis,
)


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.to(x.dtype)
    return (x * m).sum(-1) / m.sum(-1).clamp_min(1.0)


def _masked_std(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mean = _masked_mean(x, mask)
    return _masked_mean((x - mean.unsqueeze(-1)) ** 2, mask).clamp_min(0).sqrt()


class FrontEnd(nn.Module):
    """Raw 8 kHz windows (B, WINDOW_SAMPLES) -> (log-mel (B, N_MELS, N_FRAMES), prosody (B, 6)).

    The log-mel is mean-normalised per window (a gain change shifts every log value equally, so it
    cancels): loudness cannot be a cue.
    """

    def __init__(self, filterbank: str = "mel", config: FrontEndConfig | None = None) -> None:
        super().__init__()
        if filterbank not in FILTERBANKS:
            raise ValueError(f"unknown filterbank {filterbank!r} (choose from {sorted(FILTERBANKS)})")
        config = config or FrontEndConfig()
        if config.unsupported():
            raise ValueError("front end cannot be built: " + "; ".join(config.unsupported()))
        self.log_eps = float(config.log_eps)
        self.hop_length = int(config.hop_length)
        # the prosody's envelope smoothing and peak-picking spans (5, 13 and 31 frames at the 10 ms
        # hop of robodetect-v2/v3), the same durations at this hop (odd sizes, centred)
        scale = HOP_LENGTH / self.hop_length
        self.env_frames, self.max_frames, self.min_frames = (2 * int(k * scale / 2) + 1 for k in (5, 13, 31))
        bank = FILTERBANKS[filterbank](n_bands=config.n_bands, f_min=config.f_min, f_max=config.f_max)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        self.register_buffer("mel_basis", torch.from_numpy(bank), persistent=False)
        self.fine_bands = int(config.fine_bands)
        if self.fine_bands:  # multi-resolution: long frames' bands stacked below the short ones'
            fine = FILTERBANKS[filterbank](
                n_bands=self.fine_bands, f_min=config.f_min, f_max=config.fine_f_max, n_fft=FINE_N_FFT
            )
            self.register_buffer("fine_basis", torch.from_numpy(fine), persistent=False)
            self.register_buffer("fine_window", torch.hann_window(FINE_N_FFT), persistent=False)
        self.group_delay = bool(config.group_delay)
        self.band_norm = bool(config.band_norm)
        if self.group_delay:  # the Hann window times time from the frame's centre, in frames
            ramp = (torch.arange(N_FFT, dtype=torch.float32) - N_FFT / 2) / N_FFT
            self.register_buffer("ramp_window", ramp * torch.hann_window(N_FFT), persistent=False)
        basis, w_acf, lag_min = _acf_basis()
        # the basis is zero above the pitch band's taper: those bins are skipped (same numbers,
        # half the matrix product)
        self.acf_bins = int(np.flatnonzero(np.abs(basis).sum(1))[-1]) + 1
        self.register_buffer("acf_basis", torch.from_numpy(basis[: self.acf_bins]), persistent=False)
        self.register_buffer("window_acf", torch.from_numpy(w_acf), persistent=False)
        n_lags = len(w_acf)
        octave = torch.log2(torch.arange(lag_min - 1, lag_min - 1 + n_lags, dtype=torch.float32) / lag_min)
        self.register_buffer("octave_cost", OCTAVE_COST * octave, persistent=False)
        self.lag_min = lag_min
        self.legacy_pitch = config.pitch == LEGACY_PITCH_METHOD
        if self.legacy_pitch:
            self.register_buffer("circular_acf_basis", torch.from_numpy(_circular_acf_basis()), persistent=False)

    def _stft(self, wav: torch.Tensor, n_fft: int, window: torch.Tensor, pad: int = 0) -> torch.Tensor:
        """Complex STFT of ``window``-ed frames every hop_length samples of ``wav`` zero-padded by
        ``pad`` each side, each frame zero-padded to ``n_fft`` points (no centering)."""
        return torch.stft(
            F.pad(wav.float(), (pad, pad)) if pad else wav.float(),
            n_fft,
            self.hop_length,
            window.shape[0],
            window=window,
            center=False,
            return_complex=True,
        )

    def _stft_power(self, wav: torch.Tensor, n_fft: int, window: torch.Tensor, pad: int = 0) -> torch.Tensor:
        spec = self._stft(wav, n_fft, window, pad)
        return spec.real**2 + spec.imag**2

    def cross_power(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, n) -> (B, N_FFT // 2 + 1, frames): Re(X_ramp conj(X)), X the frames of :meth:`power`
        and X_ramp the same frames under the time-ramped window; divided by the power it is each
        bin's group delay (time centroid from the frame's centre, in frames)."""
        x, xr = self._stft(wav, N_FFT, self.window), self._stft(wav, N_FFT, self.ramp_window)
        return xr.real * x.real + xr.imag * x.imag

    def power(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, n) -> (B, N_FFT // 2 + 1, frames) power spectrogram (no centering/padding)."""
        return self._stft_power(wav, N_FFT, self.window)

    def pitch_power(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, n) -> (B, PITCH_N_FFT // 2 + 1, frames): power of the same Hann frames as
        :meth:`power`, zero-padded to PITCH_N_FFT points (for a linear autocorrelation)."""
        return self._stft_power(wav, PITCH_N_FFT, self.window, (PITCH_N_FFT - N_FFT) // 2)

    def fine_power(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, n) -> (B, FINE_N_FFT // 2 + 1, frames): power of Hann FINE_N_FFT-sample frames
        centred where :meth:`power`'s are (same hop, same number of frames)."""
        return self._stft_power(wav, FINE_N_FFT, self.fine_window, (FINE_N_FFT - N_FFT) // 2)

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.legacy_pitch:
            power = pitch_power = self.power(wav)
        else:
            # one STFT: the frame zero-padded to PITCH_N_FFT points has the N_FFT-point spectrum at
            # its even bins (X_512[2k] = X_256[k] times a unit phase), so the power is a slice of it
            pitch_power = self.pitch_power(wav)
            power = pitch_power[:, :: PITCH_N_FFT // N_FFT]
        logmel = self.logmel_of(power)
        prosody = self.prosody(power, logmel, pitch_power)  # from the N_FFT bands alone
        return self._stacked(logmel, power, wav), prosody

    def _stacked(self, logmel: torch.Tensor, power: torch.Tensor, wav: torch.Tensor) -> torch.Tensor:
        """The N_FFT bands, with the group-delay rows and the fine bands (each part normalised on
        its own) stacked below when on; with ``band_norm`` every log-energy band less its mean over
        the window's frames (the prosody, computed before, keeps the per-window normalisation)."""
        parts = [self._band_normed(logmel)]
        if self.group_delay:
            mel = torch.matmul(self.mel_basis, power)
            floor = self.log_eps * mel.mean(dim=(1, 2), keepdim=True) + 1e-20
            parts.append(GROUP_DELAY_SCALE * torch.matmul(self.mel_basis, self.cross_power(wav)) / (mel + floor))
        if self.fine_bands:
            parts.append(self._band_normed(self.logmel_of(self.fine_power(wav), self.fine_basis)))
        return parts[0] if len(parts) == 1 else torch.cat(parts, 1)

    def _band_normed(self, logmel: torch.Tensor) -> torch.Tensor:
        """Log energies (B, bands, frames) less each band's mean over the frames with ``band_norm``;
        as they are without it."""
        return logmel - logmel.mean(dim=2, keepdim=True) if self.band_norm else logmel

    def logmel_of(self, power: torch.Tensor, basis: torch.Tensor | None = None) -> torch.Tensor:
        """Power spectrogram -> log filterbank energies (``basis``: the N_FFT bands by default),
        mean-normalised per window."""
        mel = torch.matmul(self.mel_basis if basis is None else basis, power)
        logmel = torch.log(mel + self.log_eps * mel.mean(dim=(1, 2), keepdim=True) + 1e-20)
        return logmel - logmel.mean(dim=(1, 2), keepdim=True)

    def logmel(self, wav: torch.Tensor) -> torch.Tensor:
        """The spectral half of :meth:`forward` alone (no pitch or prosody): what training needs to
        re-featurise a window it augmented in the waveform. Equal to :meth:`forward`'s within float
        rounding (~3e-6: forward takes the power from the zero-padded pitch STFT)."""
        power = self.power(wav)
        return self._stacked(self.logmel_of(power), power, wav)

    def pitch(self, pitch_power: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per frame (B, T): pitch in Hz and voicing strength (normalised autocorrelation peak).

        Boersma (1993): the frame's autocorrelation divided by the window's own, the best
        candidate lag (with a small octave cost against period doubling) refined by a parabola
        through its neighbours. (A legacy "circular-acf" model passes :meth:`power` and gets v2's
        estimator: circular, un-normalised, integer lags.)"""
        if self.legacy_pitch:
            acf = torch.matmul(pitch_power.transpose(1, 2), self.circular_acf_basis)
            peak, lag_idx = (acf[..., 1:] / acf[..., :1].clamp_min(1e-10)).max(-1)
            return SAMPLE_RATE / (lag_idx.float() + self.lag_min), peak
        acf = torch.matmul(pitch_power[:, : self.acf_bins].transpose(1, 2), self.acf_basis)  # (B, T, 1 + n_lags)
        norm = acf[..., 1:] / acf[..., :1].clamp_min(1e-10) / self.window_acf
        left, mid, right = norm[..., :-2], norm[..., 1:-1], norm[..., 2:]  # each candidate lag
        curv = left - 2.0 * mid + right
        peak = (mid >= left) & (mid >= right) & (curv < -1e-6)
        offset = torch.where(peak, 0.5 * (left - right) / curv.clamp_max(-1e-6), torch.zeros_like(curv))
        offset = offset.clamp(-0.5, 0.5)
        height = torch.where(peak, mid - 0.25 * (left - right) * offset, torch.full_like(mid, -1.0))
        idx = (height - self.octave_cost[1:-1]).argmax(-1, keepdim=True)
        strength = height.gather(-1, idx).squeeze(-1).clamp(max=1.0)
        lag = idx.squeeze(-1).float() + self.lag_min + offset.gather(-1, idx).squeeze(-1)
        return SAMPLE_RATE / lag, strength

    def prosody(self, power: torch.Tensor, logmel: torch.Tensor, pitch_power: torch.Tensor) -> torch.Tensor:
        energy = 10.0 * torch.log10(power.sum(1) + 1e-10)  # (B, T)
        active = energy > energy.max(-1, keepdim=True).values - ACTIVE_RANGE_DB
        energy_std = _masked_std(energy, active)

        pitch_hz, strength = self.pitch(pitch_power)
        voiced = active & (strength > VOICING_THRESHOLD)
        semitones = 12.0 * torch.log2(pitch_hz)
        pitch_std = _masked_std(semitones, voiced)
        voiced_ratio = voiced.float().sum(-1) / active.float().sum(-1).clamp_min(1.0)

        e, a, b = self.env_frames, self.max_frames, self.min_frames
        env = F.avg_pool1d(energy.unsqueeze(1), e, 1, e // 2, count_include_pad=False).squeeze(1)
        local_max = F.max_pool1d(env.unsqueeze(1), a, 1, a // 2).squeeze(1)
        local_min = -F.max_pool1d(-env.unsqueeze(1), b, 1, b // 2).squeeze(1)
        peaks = (env >= local_max) & (env - local_min > 4.0) & active
        seconds = energy.shape[-1] * self.hop_length / SAMPLE_RATE
        syllable_rate = peaks.float().sum(-1) / seconds

        flux = (logmel[..., 1:] - logmel[..., :-1]).abs().mean(1)  # (B, T-1)
        both = active[..., 1:] & active[..., :-1]
        spectral_flux = _masked_mean(flux, both)
        energy_delta = _masked_mean((energy[..., 1:] - energy[..., :-1]).abs(), both)
        return torch.stack([energy_std, pitch_std, voiced_ratio, syllable_rate, spectral_flux, energy_delta], -1)
