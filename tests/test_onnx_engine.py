"""The ONNX scoring engine (robodetect.onnxengine): the same scores as torch, starting without torch;
a graph that does not belong to its weights is never used."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, SAMPLES

import robodetect
from robodetect.audio import load_audio
from robodetect.core import analyze
from robodetect.engines import load
from robodetect.model import available_models

pytest.importorskip("onnxruntime", reason="the ONNX engine needs onnxruntime (the export extra)")

from robodetect.onnxengine import EngineUnavailable, OnnxDetector, engine_path  # noqa: E402

WAVS = sorted(SAMPLES.glob("*.wav"))


@pytest.mark.parametrize("name", available_models())
def test_every_shipped_model_has_its_graph_and_the_same_scores(name):
    """Fails when a model is retrained without `python scripts/build_engines.py`."""
    torch_det, onnx_det = load(name, engine="torch"), load(name, engine="onnx")
    assert isinstance(onnx_det, OnnxDetector) and not isinstance(torch_det, OnnxDetector)
    for wav in WAVS:
        windows = analyze(load_audio(wav, "mix").samples[0]).windows
        z_t, p_t = torch_det.window_logits(windows)
        z_o, p_o = onnx_det.window_logits(windows)
        np.testing.assert_allclose(z_o, z_t, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(p_o, p_t, rtol=1e-4, atol=1e-5)
        r_t, r_o = torch_det.score_file(wav), onnx_det.score_file(wav)
        assert r_o.label == r_t.label and r_o.robot_probability == pytest.approx(r_t.robot_probability, abs=1e-5)
        assert [w.start_seconds for w in r_o.windows] == [w.start_seconds for w in r_t.windows]
        assert r_o.cues[2:] == r_t.cues[2:] and r_o.model_version == r_t.model_version


def _copy_model(tmp_path, name="robodetect-v2"):
    root = REPO / "robodetect" / "models"
    for suffix in (".json", ".safetensors", ".scorer.onnx"):
        shutil.copy(root / f"{name}{suffix}", tmp_path / f"m{suffix}")
    return tmp_path / "m"


def test_a_stem_with_its_graph_uses_it(tmp_path):
    stem = _copy_model(tmp_path)
    assert engine_path(stem.with_suffix(".json")) == tmp_path / "m.scorer.onnx"
    assert isinstance(load(stem, engine="auto"), OnnxDetector)


def test_stale_missing_or_damaged_graph_is_refused_and_auto_falls_back(tmp_path):
    stem = _copy_model(tmp_path)
    config = stem.with_suffix(".json")
    config.write_text(config.read_text().replace('"threshold"', '"threshold" ', 1))  # same model, other bytes
    with pytest.raises(EngineUnavailable, match="made from other weights"):
        OnnxDetector(stem)
    assert type(load(stem, engine="auto")).__name__ == "Detector"
    graph = tmp_path / "m.scorer.onnx"
    graph.write_bytes(b"not an onnx graph")
    with pytest.raises(EngineUnavailable, match="cannot load"):
        OnnxDetector(stem)
    graph.unlink()
    with pytest.raises(EngineUnavailable, match="no ONNX scoring graph"):
        load(stem, engine="onnx")
    assert type(load(stem, engine="auto")).__name__ == "Detector"
    with pytest.raises(EngineUnavailable, match="CPU only"):
        load(engine="onnx", device="cuda")
    with pytest.raises(ValueError, match="unknown engine"):
        load(engine="tensorflow")


def test_cli_score_starts_without_torch():
    """`robodetect score` on the default model never imports torch when onnxruntime is there."""
    code = (
        "import sys, robodetect.cli as cli; rc = cli.main(['score', '--json', *sys.argv[1:]]); "
        "print('torch' in sys.modules); sys.exit(rc)"
    )
    files = [str(SAMPLES / "robot_en_piper.wav"), str(SAMPLES / "human_zh_aishell.wav")]
    out = subprocess.run([sys.executable, "-c", code, *files], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[-1] == "False"
    assert '"label": "robot"' in lines[0] and '"label": "human"' in lines[1]


def test_cli_engine_onnx_without_a_graph_is_one_line(model_stem, capsys):
    from robodetect.cli import main

    assert main(["score", "--engine", "onnx", "--model", str(model_stem), str(WAVS[0])]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no ONNX scoring graph" in err[0]
    assert main(["score", "--engine", "torch", "--model", str(model_stem), str(WAVS[0])]) == 0


def test_package_exposes_detector_lazily():
    assert robodetect.Detector.__name__ == "Detector"
    with pytest.raises(AttributeError):
        robodetect.no_such_name  # noqa: B018
