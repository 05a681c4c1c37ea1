"""Shared fixtures: a seeded random-weight model (so tests do not depend on the shipped weights'
quality), real speech from the repo's samples/, and small synthetic signals.

Tests that need the shared corpus (``../shared/corpora``, or ``$ROBODETECT_SHARED/corpora``) call
``corpus_files`` and carry the ``corpus`` marker; they skip with a reason where it is absent, so the
suite runs on a clean clone."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
CORPORA = Path(os.environ.get("ROBODETECT_SHARED") or REPO.parent / "shared") / "corpora"


def pytest_configure(config):
    config.addinivalue_line("markers", "corpus: needs the shared corpus (../shared/corpora); skipped without it")


def pytest_collection_modifyitems(config, items):
    if (CORPORA / "manifest.csv").is_file():
        return
    skip = pytest.mark.skip(reason=f"shared corpus not found at {CORPORA} (set ROBODETECT_SHARED)")
    for item in items:
        if "corpus" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def model_stem(tmp_path_factory) -> Path:
    """A seeded, untrained RobotNet saved like a shipped model; returns its stem."""
    from robodetect.model import ModelConfig, RobotNet, save_model

    torch.manual_seed(0)
    model = RobotNet(ModelConfig(version="test-random", calib_scale=3.0, human_ranges={"syllable_rate": [2.0, 6.0]}))
    stem = tmp_path_factory.mktemp("model") / "test-model"
    save_model(model, stem)
    return stem


@pytest.fixture(scope="session")
def detector(model_stem):
    import robodetect

    return robodetect.load(model_stem)


@pytest.fixture(scope="session")
def hop2_detector(tmp_path_factory):
    """A random-weight model whose JSON asks for a 2 s window hop (frontend.hop_seconds)."""
    import robodetect
    from robodetect.features import FrontEndConfig
    from robodetect.model import ModelConfig, RobotNet, save_model

    torch.manual_seed(1)
    stem = tmp_path_factory.mktemp("hop2") / "hop2"
    save_model(RobotNet(ModelConfig(version="hop2", calib_scale=3.0, frontend=FrontEndConfig(hop_seconds=2.0))), stem)
    return robodetect.load(stem)


def corpus_files(source: str, n: int = 1, split: str = "dev") -> list[Path]:
    """The first n files of a shared-corpus source (sorted manifest order); skips when the corpus is absent."""
    manifest = CORPORA / "manifest.csv"
    if not manifest.is_file():
        pytest.skip(f"shared corpus not found at {CORPORA} (set ROBODETECT_SHARED)")
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    paths = [CORPORA / r["path"] for r in rows if r["source"] == source and r["split"] == split]
    if len(paths) < n:
        pytest.skip(f"shared corpus {source} not available")
    return paths[:n]


@pytest.fixture(scope="session")
def speech_8k() -> np.ndarray:
    """About 8.5 s of real human speech at 8 kHz (samples/human_en_librispeech.wav, a dev speaker),
    its leading second of line silence cut so the first samples are speech."""
    x, sr = sf.read(SAMPLES / "human_en_librispeech.wav", dtype="float32")
    assert sr == 8000
    return _trim_leading_silence(x, sr)


@pytest.fixture(scope="session")
def robot_8k() -> np.ndarray:
    """About 9.5 s of TTS speech at 8 kHz (samples/robot_zh_fastspeech2.wav)."""
    x, sr = sf.read(SAMPLES / "robot_zh_fastspeech2.wav", dtype="float32")
    assert sr == 8000
    return _trim_leading_silence(x, sr)


def _trim_leading_silence(x: np.ndarray, sr: int) -> np.ndarray:
    """x from 0.1 s before its first 10 ms frame louder than -40 dBFS RMS."""
    frame = sr // 100
    rms = np.sqrt(np.mean(x[: len(x) // frame * frame].reshape(-1, frame) ** 2, axis=1))
    first = int(np.argmax(rms > 0.01))
    return x[max(0, first * frame - sr // 10) :]


@pytest.fixture
def write_wav(tmp_path):
    """write_wav(name, data, sr, subtype='PCM_16') -> path."""

    def _write(name: str, data: np.ndarray, sr: int, subtype: str = "PCM_16") -> Path:
        path = tmp_path / name
        sf.write(path, data, sr, subtype=subtype)
        return path

    return _write


@pytest.fixture(scope="module")
def one_torch_thread():
    """Single-window forwards are fastest (and immune to spin-waits on a busy machine) on one thread;
    the previous setting is restored afterwards for the other test modules."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
