"""The model JSON carries every front-end and VAD setting; the loader rebuilds from it, fills an old
JSON with the defaults, refuses what it cannot honour; shipped models load by name from the package;
a result store keys rows by a hash of weights + JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import REPO

import robodetect
from robodetect.features import FrontEndConfig, mel_filterbank
from robodetect.model import (
    DEFAULT_MODEL,
    ModelConfig,
    ModelError,
    RobotNet,
    available_models,
    load_model,
    model_digest,
    resolve_model,
    save_model,
)
from robodetect.vad import VadConfig


def _saved(tmp_path, name="m", **json_changes) -> str:
    """A seeded random model saved as tmp_path/name, with its JSON edited by json_changes
    (nested dicts for ``frontend`` / ``vad``; None removes a key)."""
    torch.manual_seed(0)
    stem = tmp_path / name
    save_model(RobotNet(ModelConfig(version=name)), stem)
    path = stem.with_suffix(".json")
    data = json.loads(path.read_text())
    for key, value in json_changes.items():
        if value is None:
            data.pop(key)
        elif isinstance(value, dict):
            data[key].update(value)
        else:
            data[key] = value
    path.write_text(json.dumps(data))
    return str(stem)


def test_json_carries_frontend_and_vad(tmp_path):
    stem = _saved(tmp_path)
    data = json.loads(open(stem + ".json").read())
    assert data["frontend"]["n_fft"] == 256 and data["frontend"]["window_seconds"] == 2.0
    assert data["vad"]["aggressiveness"] == 2 and data["vad"]["min_silence_seconds"] == 0.3
    assert load_model(stem).config == ModelConfig.from_json(stem + ".json")


def test_json_without_pitch_method_keeps_its_estimator(tmp_path):
    """A JSON written before the front end was recorded (robodetect-v2) was trained with the old
    circular pitch autocorrelation: it loads with that estimator, never silently with the new one;
    an estimator this code lacks is refused."""
    shipped = json.loads((REPO / "robodetect" / "models" / "robodetect-v2.json").read_text())
    assert "frontend" not in shipped
    assert ModelConfig.from_dict(shipped).frontend.pitch == "circular-acf"
    old = load_model(_saved(tmp_path, frontend=None, vad=None))
    assert old.config.frontend.pitch == "circular-acf" and old.frontend.legacy_pitch
    assert old.config.vad == VadConfig.legacy() and not old.config.vad.level_normalise
    new = load_model(_saved(tmp_path, name="n"))
    assert new.config.frontend == FrontEndConfig() and not new.frontend.legacy_pitch
    with pytest.raises(ModelError, match="frontend.pitch=yin"):
        load_model(_saved(tmp_path, name="y", frontend={"pitch": "yin"}))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"frontend": {"n_fft": 512}}, "frontend.n_fft=512"),
        ({"frontend": {"window_seconds": 3.0}}, "frontend.window_seconds=3.0"),
        ({"frontend": {"sample_rate": 16000}}, "frontend.sample_rate=16000"),
        ({"frontend": {"f_max": 6000.0}}, "f_max=6000"),
        ({"frontend": {"cqt_bins": 12}}, "unknown frontend parameter"),
        ({"vad": {"frame_seconds": 0.02}}, "vad.frame_seconds=0.02"),
        ({"vad": {"aggressiveness": 7}}, "vad.aggressiveness=7"),
    ],
)
def test_refuses_settings_it_cannot_honour(tmp_path, change, message):
    stem = _saved(tmp_path, **change)
    with pytest.raises(ModelError, match=message) as err:
        robodetect.load(stem)
    assert "m.json" in str(err.value)  # names the file


def test_rebuilds_frontend_and_vad_from_json(tmp_path, speech_8k):
    stem = _saved(tmp_path, frontend={"n_bands": 40, "f_min": 200.0, "f_max": 3400.0}, vad={"aggressiveness": 3})
    det = robodetect.load(stem)
    np.testing.assert_array_equal(
        det.model.frontend.mel_basis.numpy(), mel_filterbank(n_bands=40, f_min=200.0, f_max=3400.0)
    )
    assert det.vad_config == VadConfig(aggressiveness=3)
    explicit = robodetect.Detector(det.model, vad_config=VadConfig(aggressiveness=3)).score(speech_8k, 8000)
    default_vad = robodetect.Detector(det.model, vad_config=VadConfig()).score(speech_8k, 8000)
    got = det.score(speech_8k, 8000)
    assert got.robot_probability == explicit.robot_probability
    assert got.speech_seconds != default_vad.speech_seconds  # the JSON's VAD mode was really used


def test_mel_filterbank_equals_librosa():
    librosa = pytest.importorskip("librosa")
    for n, lo, hi in ((64, 100.0, 4000.0), (40, 0.0, 4000.0), (80, 300.0, 3400.0)):
        ref = librosa.filters.mel(sr=8000, n_fft=256, n_mels=n, fmin=lo, fmax=hi)
        np.testing.assert_array_equal(mel_filterbank(n_bands=n, f_min=lo, f_max=hi), ref)


def test_load_by_name_or_path_lists_names_on_failure(tmp_path):
    assert DEFAULT_MODEL in available_models()
    assert resolve_model(DEFAULT_MODEL).config.version.startswith(DEFAULT_MODEL)
    assert robodetect.load(DEFAULT_MODEL).model_version == robodetect.load().model_version
    stem = _saved(tmp_path)
    assert robodetect.load(stem + ".safetensors").model_version == "m"
    with pytest.raises(ModelError, match=f"robodetect-v9.*available: .*{DEFAULT_MODEL}"):
        robodetect.load("robodetect-v9")


def test_model_key_changes_with_weights_json_and_threshold(tmp_path):
    a = robodetect.load(_saved(tmp_path, "a"))
    same = robodetect.load(_saved(tmp_path, "b", version="a"))  # same weights and config, other file
    assert a.model_key == same.model_key and a.model_key.startswith("a sha256:")
    calib = robodetect.load(_saved(tmp_path, "c", version="a", calib_bias=0.5))
    assert calib.model_key != a.model_key
    changed = resolve_model(_saved(tmp_path, "d", version="a"))
    with torch.no_grad():
        changed.head_mlp[-1].bias += 1e-3
    assert model_digest(changed) != model_digest(a.model)
    assert robodetect.load(_saved(tmp_path, "e", version="a"), threshold=0.7).model_key != a.model_key


def test_scan_does_not_mix_two_models(tmp_path, speech_8k, write_wav):
    from robodetect.batch import scan
    from robodetect.store import ResultStore

    wav = write_wav("s.wav", speech_8k, 8000)
    a = robodetect.load(_saved(tmp_path, "a"))
    b = robodetect.load(_saved(tmp_path, "b", version="a", calib_bias=2.0))  # same version string
    store = ResultStore(tmp_path / "r.db")
    try:
        assert scan([str(wav)], store, a, workers=1).files == 1
        assert scan([str(wav)], store, a, workers=1).skipped == 1
        stats = scan([str(wav)], store, b, workers=1)
        assert stats.files == 1 and stats.skipped == 0  # not resumed from model a's rows
    finally:
        store.close()
