"""Shared fixtures: a seeded random-weight model (so tests do not depend on the shipped weights'
quality), real speech from ../shared/corpora, and small synthetic signals."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

REPO = Path(__file__).resolve().parent.parent
CORPORA = REPO.parent / "shared" / "corpora"


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


def corpus_files(source: str, n: int = 1, split: str = "dev") -> list[Path]:
    """The first n files of a shared-corpus source (sorted manifest order)."""
    rows = list(csv.DictReader(open(CORPORA / "manifest.csv")))
    paths = [CORPORA / r["path"] for r in rows if r["source"] == source and r["split"] == split]
    if len(paths) < n:
        pytest.skip(f"shared corpus {source} not available")
    return paths[:n]


@pytest.fixture(scope="session")
def speech_8k() -> np.ndarray:
    """About 10 s of real human speech at 8 kHz (LibriSpeech dev speaker)."""
    x, sr = sf.read(corpus_files("librispeech")[0], dtype="float32")
    assert sr == 8000
    return x[: 10 * sr]


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
