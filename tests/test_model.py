import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO

import robodetect
from robodetect.model import DEFAULT_MODEL, ModelConfig, RobotNet, count_parameters, load_model, save_model


def test_small_enough():
    model = RobotNet()
    assert count_parameters(model) < 1_000_000


def test_save_load_round_trip(tmp_path, speech_8k):
    torch.manual_seed(1)
    model = RobotNet(ModelConfig(version="rt", calib_scale=2.0, threshold=0.7)).eval()
    model.prosody_mean.fill_(0.5)
    stem = save_model(model, tmp_path / "m")[0].with_suffix("")
    again = load_model(stem)
    assert again.config.version == "rt" and again.config.threshold == 0.7
    x = torch.from_numpy(np.stack([speech_8k[:16000], speech_8k[16000:32000]]))
    with torch.no_grad():
        torch.testing.assert_close(model(x), again(x))
    assert (tmp_path / "m.safetensors").stat().st_size < 4_000_000
    # the config is plain JSON and the weights plain safetensors (no pickle)
    assert json.loads((tmp_path / "m.json").read_text())["version"] == "rt"
    assert (tmp_path / "m.safetensors").read_bytes()[8:9] == b"{"


def test_shipped_model_loads_and_is_documented():
    stem = Path(robodetect.__file__).parent / "models" / DEFAULT_MODEL  # inside the package
    model = load_model(stem)
    assert model.config.version.startswith(DEFAULT_MODEL)
    assert 0.0 < model.config.threshold < 1.0
    assert stem.with_suffix(".safetensors").stat().st_size < 4_000_000
    assert set(model.config.human_ranges)  # explanations need the human reference ranges
    assert (REPO / "models" / "MODEL_CARD.md").exists()


def test_ablation_configs_build():
    x = torch.zeros(2, 16000)
    for cfg in (ModelConfig(use_prosody=False), ModelConfig(use_spectral=False)):
        assert RobotNet(cfg).eval()(x).shape == (2,)
    with pytest.raises(ValueError, match="spectral or prosody"):
        RobotNet(ModelConfig(use_spectral=False, use_prosody=False))


def test_linear_filterbank_config_round_trips_and_exports(tmp_path, speech_8k):
    """A linear-band model saves, reloads with the same bands and exports with them."""
    from robodetect.export import WindowScorer
    from robodetect.features import linear_filterbank, mel_filterbank

    lin, mel = linear_filterbank(), mel_filterbank()
    assert lin.shape == mel.shape
    peaks = lin.argmax(1)
    assert np.all(np.diff(peaks) >= 0) and peaks[-1] - peaks[-2] == peaks[1] - peaks[0]  # equal spacing in Hz
    torch.manual_seed(0)
    model = RobotNet(ModelConfig(filterbank="linear")).eval()
    stem = save_model(model, tmp_path / "lin")[0].with_suffix("")
    again = load_model(stem)
    assert again.config.filterbank == "linear"
    torch.testing.assert_close(again.frontend.mel_basis, torch.from_numpy(lin))
    x = torch.from_numpy(np.stack([speech_8k[:16000], speech_8k[8000:24000]]))
    with torch.no_grad():
        _, logit = WindowScorer(again)(x)
        torch.testing.assert_close(logit, again(x), atol=1e-4, rtol=1e-4)
        assert not torch.allclose(RobotNet(ModelConfig()).frontend(x)[0], again.frontend(x)[0])
    with pytest.raises(ValueError, match="unknown filterbank"):
        RobotNet(ModelConfig(filterbank="bark"))
