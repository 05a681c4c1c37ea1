"""The multi-resolution front end (FrontEndConfig.fine_bands): 64 ms frames' bands stacked below
the 32 ms ones, resolving the harmonics of low voices that the 32 ms frames smear."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from robodetect.config import ModelConfig, ModelError
from robodetect.export import DftFrontEnd, export_model
from robodetect.features import FrontEndConfig
from robodetect.frontend import FrontEnd
from robodetect.model import RobotNet, load_model, model_digest, save_model

SR = 8000
FINE = FrontEndConfig(f_max=3800.0, hop_length=160, fine_bands=64)


def _harmonics(f0: float, seconds: float = 2.0) -> torch.Tensor:
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.cos(2 * np.pi * k * f0 * t) for k in range(1, int(1900 / f0)))
    return torch.tensor(0.05 * x[None], dtype=torch.float32)


def _depth_db(rows: np.ndarray, centres: np.ndarray, lo: float = 300.0, hi: float = 1500.0) -> float:
    sel = (centres > lo) & (centres < hi)
    return float(10 / np.log(10) * (rows[sel].max() - rows[sel].min()))


def test_fine_bands_stack_below_the_coarse_ones_with_the_same_frames():
    wav = _harmonics(120.0)
    coarse, pros = FrontEnd("linear", FrontEndConfig(f_max=3800.0, hop_length=160))(wav)
    both, pros_fine = FrontEnd("linear", FINE)(wav)
    assert both.shape == (1, 128, coarse.shape[-1])
    # the first rows are the single-resolution front end's, and prosody comes from them alone
    assert torch.allclose(both[:, :64], coarse, atol=1e-5)
    assert torch.allclose(pros, pros_fine, atol=1e-5)
    # each half is normalised on its own: a gain change cancels in both
    again, _ = FrontEnd("linear", FINE)(wav * 10)
    assert torch.allclose(both, again, atol=1e-3)


@pytest.mark.parametrize("f0", [80.0, 100.0])
def test_fine_bands_resolve_the_harmonics_of_a_low_voice(f0):
    """A harmonic tone at 80-100 Hz: the 64 ms bands show a deep comb (>= 10 dB between harmonic
    and gap), the 32 ms bands at most a shallow ripple."""
    spec = FrontEnd("linear", FINE)(_harmonics(f0))[0][0].mean(-1).numpy()
    coarse_centres = np.linspace(100.0, 3800.0, 66)[1:-1]
    fine_centres = np.linspace(100.0, FINE.fine_f_max, 66)[1:-1]
    coarse, fine = _depth_db(spec[:64], coarse_centres), _depth_db(spec[64:], fine_centres)
    assert fine >= 10.0, fine
    assert coarse <= 5.0, coarse


def test_exported_fine_front_end_equals_torch_stft():
    torch.manual_seed(0)
    wav = torch.randn(3, 16000) * 0.1 + _harmonics(90.0)
    ref, ref_pros = FrontEnd("linear", FINE)(wav)
    got, got_pros = DftFrontEnd("linear", FINE)(wav)
    assert got.shape == ref.shape
    assert torch.allclose(got, ref, atol=1e-3) and torch.allclose(got_pros, ref_pros, atol=1e-3, rtol=1e-3)


def test_a_multires_model_round_trips_and_exports(tmp_path):
    import onnxruntime as ort

    torch.manual_seed(3)
    model = RobotNet(ModelConfig(filterbank="linear", pool="avg", time_pool="mean", frontend=FINE)).eval()
    save_model(model, tmp_path / "m")
    saved = json.loads((tmp_path / "m.json").read_text())
    assert saved["frontend"]["fine_bands"] == 64
    back = load_model(tmp_path / "m")
    assert back.config.frontend.fine_bands == 64 and model_digest(back) == model_digest(model)
    wav = torch.randn(4, 16000) * 0.1
    with torch.inference_mode():
        ref = model(wav).numpy()
    assert np.allclose(back(wav).detach().numpy(), ref, atol=1e-5)
    path = export_model(tmp_path / "m.onnx", fmt="onnx", model=tmp_path / "m")
    (logit,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["logit"], {"wav": wav.numpy()})
    raw = model.config.calib_scale * ref + model.config.calib_bias
    np.testing.assert_allclose(logit, raw, atol=1e-4, rtol=1e-4)


def test_off_leaves_older_json_and_digests_alone(tmp_path):
    """fine_bands 0 (every model shipped before it existed) writes no new keys, so a shipped
    model's digest, and the scan results keyed by it, do not change."""
    config = ModelConfig()
    assert "fine_bands" not in config.to_dict()["frontend"]
    on = ModelConfig(frontend=FINE).to_dict()["frontend"]
    assert on["fine_bands"] == 64 and on["fine_f_max"] == FINE.fine_f_max
    torch.manual_seed(1)
    a = RobotNet(ModelConfig())
    b = RobotNet(ModelConfig(frontend=FrontEndConfig(fine_bands=0, fine_f_max=1500.0)))
    b.load_state_dict(a.state_dict())
    assert model_digest(a) == model_digest(b)  # off: fine_f_max is moot


def test_a_json_with_impossible_fine_bands_is_refused():
    with pytest.raises(ModelError, match="fine_f_max"):
        ModelConfig.from_dict({"frontend": {"pitch": "linear-acf", "fine_bands": 8, "fine_f_max": 9000.0}})
    with pytest.raises(ModelError, match="fine_bands"):
        ModelConfig.from_dict({"frontend": {"pitch": "linear-acf", "fine_bands": -2}})


GD = FrontEndConfig(f_max=3800.0, hop_length=160, group_delay=True)


@pytest.mark.parametrize("offset", [-40, 0, 25])
def test_group_delay_rows_give_an_impulse_s_time_from_the_frame_centre(offset):
    """A lone impulse ``offset`` samples from the first frame's centre: every band's group delay
    is offset / N_FFT frames (times the scale), whatever the band."""
    from robodetect.features import GROUP_DELAY_SCALE, N_FFT

    x = torch.zeros(1, 16000)
    x[0, N_FFT // 2 + offset] = 1.0
    rows, _ = FrontEnd("linear", GD)(x)
    assert rows.shape == (1, GD.spectral_rows, 99) and GD.spectral_rows == 128
    gd = rows[0, 64:, 0] / GROUP_DELAY_SCALE * N_FFT
    assert torch.allclose(gd, torch.full_like(gd, float(offset)), atol=0.05)
    # the log-energy rows are the plain front end's
    plain, _ = FrontEnd("linear", FrontEndConfig(f_max=3800.0, hop_length=160))(x)
    assert torch.allclose(rows[:, :64], plain, atol=1e-5)


def test_exported_group_delay_equals_torch_stft_and_gain_cancels():
    torch.manual_seed(2)
    wav = torch.randn(3, 16000) * 0.1 + _harmonics(110.0)
    ref, _ = FrontEnd("linear", GD)(wav)
    got, _ = DftFrontEnd("linear", GD)(wav)
    assert torch.allclose(got, ref, atol=1e-3)
    louder, _ = FrontEnd("linear", GD)(wav * 7)
    assert torch.allclose(louder, ref, atol=1e-3)
    assert "group_delay" not in ModelConfig().to_dict()["frontend"]
    assert ModelConfig(frontend=GD).to_dict()["frontend"]["group_delay"] is True


BN = FrontEndConfig(f_max=3800.0, hop_length=160, fine_bands=64, band_norm=True)


def _coloured(wav: torch.Tensor) -> torch.Tensor:
    """``wav`` through a stationary line colouring: a first-order tilt (+-6 dB across the band) and
    a resonance near 1 kHz, as a microphone or a codec's post-filter might leave."""
    from scipy.signal import lfilter

    x = lfilter([1.0, -0.6], [1.0], wav.numpy(), axis=-1)
    r, w = 0.9, 2 * np.pi * 1000 / SR
    x = lfilter([1.0], [1.0, -2 * r * np.cos(w), r * r], x, axis=-1)
    return torch.tensor(x, dtype=torch.float32)


def test_band_norm_cancels_a_stationary_colouring_and_keeps_the_prosody():
    torch.manual_seed(4)
    wav = torch.randn(2, 16000) * 0.05 + _harmonics(130.0) * torch.linspace(0.2, 1.0, 16000)
    plain, pros = FrontEnd("linear", FINE)(wav)
    plain_c, _ = FrontEnd("linear", FINE)(_coloured(wav))
    normed, pros_bn = FrontEnd("linear", BN)(wav)
    normed_c, _ = FrontEnd("linear", BN)(_coloured(wav))
    # the window-mean front end sees the colouring in every frame; the per-band one nearly nothing
    # (what remains is the frames' edges and the filter's smearing of the bands)
    moved_plain = (plain_c - plain)[:, :, 2:-2].abs().mean()
    moved_bn = (normed_c - normed)[:, :, 2:-2].abs().mean()
    assert moved_plain > 0.5 and moved_bn < 0.25 * moved_plain
    # every band of every part has zero mean over the frames; the prosody is the window-mean one's
    assert torch.allclose(normed.mean(dim=2), torch.zeros(2, 128), atol=1e-4)
    assert torch.allclose(pros_bn, pros, atol=1e-5)
    # the frames' changes within a band are what the window-mean front end has
    assert torch.allclose(normed.diff(dim=2), plain.diff(dim=2), atol=1e-4)


def test_band_norm_exports_round_trips_and_is_left_out_of_older_json(tmp_path):
    torch.manual_seed(5)
    wav = torch.randn(3, 16000) * 0.1 + _harmonics(95.0)
    ref, ref_pros = FrontEnd("linear", BN)(wav)
    got, got_pros = DftFrontEnd("linear", BN)(wav)
    assert torch.allclose(got, ref, atol=1e-3) and torch.allclose(got_pros, ref_pros, atol=1e-3, rtol=1e-3)
    assert "band_norm" not in ModelConfig().to_dict()["frontend"]
    model = RobotNet(ModelConfig(filterbank="linear", pool="avg", time_pool="mean", frontend=BN)).eval()
    save_model(model, tmp_path / "m")
    assert json.loads((tmp_path / "m.json").read_text())["frontend"]["band_norm"] is True
    back = load_model(tmp_path / "m")
    assert back.config.frontend.band_norm is True and model_digest(back) == model_digest(model)
    with torch.inference_mode():
        assert torch.allclose(back(wav), model(wav), atol=1e-5)


def test_a_json_with_a_non_boolean_band_norm_is_refused():
    assert "frontend.band_norm=yes (true or false)" in FrontEndConfig(band_norm="yes").unsupported()
