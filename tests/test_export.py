"""ONNX / TorchScript exports: the DFT front end equals torch.stft, exported outputs equal eager."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest
import torch
from conftest import SAMPLES

from robodetect.audio import load_audio
from robodetect.detector import analyze
from robodetect.export import DftFrontEnd, export_model, load_exported
from robodetect.features import N_FFT, N_MELS, WINDOW_SAMPLES, FrontEnd, FrontEndConfig
from robodetect.stream import stream_file

TOL = 1e-4


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Single-window forwards, as a streaming server runs them: one torch thread."""


@pytest.fixture(scope="module")
def real_windows(detector) -> np.ndarray:
    """Speech windows of a human and a robot call, cut exactly as the detector cuts them."""
    names = ("human_en_librispeech.wav", "robot_zh_fastspeech2.wav")
    parts = [analyze(load_audio(SAMPLES / name).samples[0]).windows for name in names]
    return np.concatenate(parts)


@pytest.fixture(scope="module")
def eager(detector, real_windows) -> tuple[np.ndarray, np.ndarray]:
    """(probability, calibrated logit) per window from the eager torch model."""
    raw, _ = detector.window_logits(real_windows)
    logit = detector.config.calib_scale * raw + detector.config.calib_bias
    return 1 / (1 + np.exp(-logit)), logit


@pytest.fixture(scope="module")
def exported(model_stem, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("export")
    return {
        fmt: export_model(out / f"model.{ext}", fmt=fmt, model=model_stem)
        for fmt, ext in [("onnx", "onnx"), ("torchscript", "pt")]
    }


def test_dft_front_end_equals_torch_stft(detector, real_windows):
    wav = torch.from_numpy(real_windows)
    ref = detector.model.frontend.power(wav)
    got = DftFrontEnd().power(wav)
    assert got.shape == ref.shape
    assert torch.allclose(got, ref, rtol=TOL, atol=TOL * float(ref.abs().max()))
    logmel, prosody = DftFrontEnd()(wav)
    ref_logmel, ref_prosody = detector.model.frontend(wav)
    assert torch.allclose(logmel, ref_logmel, atol=1e-3) and torch.allclose(prosody, ref_prosody, atol=1e-3, rtol=1e-3)


def test_dft_front_end_at_a_model_stft_hop(real_windows):
    """A model's own STFT hop (``frontend.hop_length``) reaches the exported conv1d front end."""
    config = FrontEndConfig(hop_length=160)
    wav = torch.from_numpy(real_windows)
    (logmel, prosody), (ref_logmel, ref_prosody) = DftFrontEnd(config=config)(wav), FrontEnd(config=config)(wav)
    assert logmel.shape == ref_logmel.shape == (len(wav), N_MELS, 1 + (WINDOW_SAMPLES - N_FFT) // 160)
    assert torch.allclose(logmel, ref_logmel, atol=1e-3) and torch.allclose(prosody, ref_prosody, atol=1e-3, rtol=1e-3)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.load (TorchScript is deprecated upstream)
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_exported_outputs_equal_eager(fmt, exported, real_windows, eager, detector):
    scorer = load_exported(exported[fmt])
    assert scorer.threshold == pytest.approx(detector.threshold) and scorer.version == detector.model_version
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(exported[fmt]), providers=["CPUExecutionProvider"])
        prob, logit = session.run(["probability", "logit"], {"wav": real_windows})
        # another runtime must cut windows with the model's own VAD: its settings travel along
        vad = json.loads(session.get_modelmeta().custom_metadata_map["vad"])
        assert vad == asdict(detector.vad_config)
    else:
        module = torch.jit.load(str(exported[fmt]))
        with torch.inference_mode():
            prob, logit = (t.numpy() for t in module(torch.from_numpy(real_windows)))
    assert prob.shape == logit.shape == (len(real_windows),)
    np.testing.assert_allclose(prob, eager[0], atol=TOL)
    np.testing.assert_allclose(logit, eager[1], atol=TOL, rtol=TOL)
    np.testing.assert_allclose(scorer(real_windows[:1]), eager[1][:1], atol=TOL, rtol=TOL)  # batch of one


def test_call_score_recipe_from_window_logits(exported, detector):
    """docs/streaming.md: call probability = sigmoid(mean(logit)) over the call's windows."""
    path = SAMPLES / "human_en_librispeech.wav"
    windows = analyze(load_audio(path).samples[0]).windows
    logit = load_exported(exported["onnx"])(windows)
    assert 1 / (1 + np.exp(-logit.mean())) == pytest.approx(detector.score_file(path).robot_probability, abs=TOL)


def test_streaming_on_exported_model(exported, detector):
    path = SAMPLES / "robot_zh_fastspeech2.wav"
    final = stream_file(path, window_logits=load_exported(exported["onnx"]))[-1]
    result = detector.score_file(path)
    assert final.label == result.label and final.robot_probability == pytest.approx(result.robot_probability, abs=TOL)


def test_cli_export(model_stem, tmp_path, capsys):
    from robodetect.cli import main

    out = tmp_path / "m.onnx"
    assert main(["export", "--format", "onnx", str(out), "--model", str(model_stem)]) == 0
    assert out.exists() and out.stat().st_size < 2_000_000 and "wrote" in capsys.readouterr().out
    with pytest.raises(ValueError):
        export_model(tmp_path / "m.tflite", fmt="tflite", model=model_stem)


def test_a_stream_over_an_export_cuts_windows_as_the_model_was_trained(hop2_detector, tmp_path):
    """An export carries its model's VAD and window hop; a stream over it (no detector) uses them
    and ends on the detector's score. An export without them (older robodetect) means the VAD and
    hop of the models of its time (v2, v3): the legacy VAD and 1 s."""
    from robodetect.export import _metadata
    from robodetect.features import HOP_SAMPLES
    from robodetect.stream import StreamingDetector
    from robodetect.vad import VadConfig

    path = export_model(tmp_path / "hop2.onnx", fmt="onnx", model=hop2_detector.model)
    scorer = load_exported(path)
    assert scorer.hop_samples == 16000 and scorer.vad_config == hop2_detector.vad_config == VadConfig()
    stream = StreamingDetector(window_logits=scorer)
    assert stream.hop == 16000 and stream.vad_config == VadConfig()
    x = load_audio(SAMPLES / "robot_en_piper.wav").samples[0]
    for i in range(0, len(x), 4000):
        stream.push(x[i : i + 4000])
    assert stream.finish().robot_probability == pytest.approx(hop2_detector.score(x, 8000).robot_probability, abs=1e-4)

    old = {k: v for k, v in _metadata(hop2_detector.model).items() if k not in ("vad", "hop_samples")}
    import onnx

    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for k, v in old.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(proto, str(tmp_path / "old.onnx"))
    legacy = load_exported(tmp_path / "old.onnx")
    assert legacy.hop_samples == HOP_SAMPLES and legacy.vad_config == VadConfig.legacy()


def test_a_cosine_head_exports_to_onnx(real_windows, tmp_path):
    """A one-class (cosine) head survives the ONNX export: the graph's logits equal eager."""
    import onnxruntime as ort

    from robodetect.model import ModelConfig, RobotNet, save_model

    torch.manual_seed(4)
    model = RobotNet(ModelConfig(head="cosine", pool="avg", time_pool="mean")).eval()
    save_model(model, tmp_path / "m")
    path = export_model(tmp_path / "m.onnx", fmt="onnx", model=tmp_path / "m")
    (logit,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["logit"], {"wav": real_windows})
    with torch.inference_mode():
        ref = model(torch.from_numpy(real_windows)).numpy()
    assert ref.std() > 0
    np.testing.assert_allclose(logit, ref, atol=TOL, rtol=TOL)
