"""Maintenance scripts answer --help with usage (not a traceback, not a run) and name a bad argument
in one line with a non-zero exit."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import REPO

SAMPLES = REPO / "samples"
GRAPHS = REPO / "robodetect" / "models"


def _mtimes() -> dict[str, int]:
    """Every sample and every shipped ONNX graph, with its modification time."""
    return {str(p): p.stat().st_mtime_ns for p in [*SAMPLES.iterdir(), *GRAPHS.glob("*.onnx")]}


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=REPO)


@pytest.mark.parametrize("script", ["scripts/make_samples.py", "scripts/build_engines.py"])
def test_help_prints_usage_and_writes_nothing(script):
    before = _mtimes()
    out = _run(script, "--help")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage:") and "Traceback" not in out.stderr
    assert _mtimes() == before  # neither script ran: no sample and no graph rewritten


def test_build_engines_names_an_unknown_model_in_one_line():
    out = _run("scripts/build_engines.py", "no-such-model")
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("no-such-model: ")


def test_make_samples_names_an_output_folder_it_cannot_create(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = _run("scripts/make_samples.py", "--out", str(blocker / "samples"))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"make_samples: {blocker / 'samples'}: cannot create")
    assert not (blocker / "samples").exists()


def test_make_samples_names_a_corpus_without_its_manifest(tmp_path):
    before = _mtimes()
    out = _run("scripts/make_samples.py", "--corpus", str(tmp_path / "nothing"), "--out", str(tmp_path / "s"))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and str(tmp_path / "nothing" / "tts_manifest.csv") in lines[0], lines
    assert list((tmp_path / "s").iterdir()) == [] and _mtimes() == before
