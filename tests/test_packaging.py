"""The wheel carries the shipped model; an install used from another directory (``pip install --user``,
not editable) finds it; scoring imports no librosa."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

import pytest
from conftest import REPO, SAMPLES

from robodetect.model import DEFAULT_MODEL


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """Build the wheel from a copy of the tree (the checkout gets no build/ or egg-info)."""
    pytest.importorskip("setuptools", reason="building the wheel needs setuptools (the dev extra has it)")
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "robodetect", src / "robodetect", ignore=shutil.ignore_patterns("__pycache__"))
    build = "import sys; from setuptools import build_meta; print(build_meta.build_wheel(sys.argv[1]))"
    out = subprocess.run(
        [sys.executable, "-c", build, str(root / "dist")], cwd=src, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return root / "dist" / out.stdout.strip().splitlines()[-1]


def test_wheel_carries_the_model(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = next(z.read(n).decode() for n in names if n.endswith("METADATA"))
    assert {
        f"robodetect/models/{DEFAULT_MODEL}.safetensors",
        f"robodetect/models/{DEFAULT_MODEL}.json",
        f"robodetect/models/{DEFAULT_MODEL}.scorer.onnx",  # the ONNX engine's graph (robodetect.onnxengine)
    } <= names
    requires = [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    assert "torch>=2.2" in requires and not any(r.startswith("torch==") for r in requires)
    assert all("extra ==" in r for r in requires if r.startswith("librosa"))  # training only


def test_user_install_scores_from_another_directory(wheel, tmp_path):
    """``pip install --user`` (into a private user base) and score samples from elsewhere."""
    env = {**os.environ, "PYTHONUSERBASE": str(tmp_path / "userbase"), "PYTHONNOUSERSITE": ""}
    env.pop("PYTHONPATH", None)
    pip = [sys.executable, "-m", "pip", "install", "-q", "--user", "--no-deps", "--no-index", str(wheel)]
    out = subprocess.run(pip, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import sys, robodetect, robodetect.cli as cli; print(robodetect.__file__); "
        "rc = cli.main(['score', *sys.argv[1:]]); print('librosa' in sys.modules); sys.exit(rc)"
    )
    files = [str(SAMPLES / "robot_en_piper.wav"), str(SAMPLES / "human_zh_aishell.wav")]
    out = subprocess.run(
        [sys.executable, "-c", code, *files], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith(str(tmp_path / "userbase"))  # the installed copy, not the checkout
    assert "robot_en_piper.wav: ROBOT" in out.stdout and "human_zh_aishell.wav: HUMAN" in out.stdout
    assert lines[-1] == "False"  # scoring never imported librosa
