"""robodetect.plot and ``score --plot``: the picture carries the threshold, the uncertain band and one
row pair per channel; errors are one line."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from robodetect.audio import load_audio  # noqa: E402
from robodetect.cli import main  # noqa: E402
from robodetect.plot import UNCERTAIN_COLOR, plot_call, plot_file  # noqa: E402


def _image(path) -> np.ndarray:
    import matplotlib.image

    return matplotlib.image.imread(path)[..., :3]


def _has_colour(img: np.ndarray, hex_colour: str, alpha: float = 1.0, tol: float = 0.03) -> bool:
    """Is there a pixel of ``hex_colour`` drawn at ``alpha`` over white?"""
    rgb = np.array([int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    want = alpha * rgb + (1 - alpha) * 1.0
    return bool((np.abs(img - want).max(axis=-1) < tol).any())


@pytest.fixture
def stereo(write_wav, speech_8k, robot_8k):
    n = min(len(speech_8k), len(robot_8k))
    return write_wav("stereo.wav", np.stack([robot_8k[:n], speech_8k[:n]], 1), 8000)


def test_band_threshold_and_channels_drawn(detector, stereo, tmp_path):
    from robodetect.detector import Detector

    # no uncertain verdicts: the band colour then comes from the band alone, not an "uncertain" title
    result = Detector(detector.model, uncertain=False).score_file(stereo)
    audio = load_audio(stereo, "auto")
    with_band = _image(plot_call(result, audio, tmp_path / "band.png", band=(0.3, 0.6)))
    without = _image(plot_call(result, audio, tmp_path / "plain.png"))
    assert _has_colour(with_band, UNCERTAIN_COLOR, alpha=0.25) and not _has_colour(without, UNCERTAIN_COLOR, 0.25)
    assert _has_colour(without, "#D55E00", tol=0.1)  # the threshold line (and the title of a robot verdict)
    mono = _image(plot_call(result.parties[0], load_audio(stereo, "left"), tmp_path / "mono.png"))
    assert without.shape[0] > 1.5 * mono.shape[0]  # two channels: two waveform + spectrogram pairs
    with pytest.raises(ValueError, match="channel"):
        plot_call(result, load_audio(stereo, "mix"), tmp_path / "bad.png")


def test_plot_file_returns_the_score(detector, stereo, tmp_path):
    out = tmp_path / "call.png"
    result = plot_file(detector, stereo, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ref = detector.score_file(stereo)
    assert result.robot_probability == ref.robot_probability and result.party == ref.party


def test_cli_plot(stereo, model_stem, tmp_path, capsys):
    out = tmp_path / "p.png"
    assert main(["score", str(stereo), "--model", str(model_stem), "--plot", str(out)]) == 0
    assert out.stat().st_size > 10_000
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF0000WAVEjunk")
    code = main(["score", str(bad), str(stereo), "--model", str(model_stem), "--plot", str(tmp_path / "m.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "bad.wav" in err[0]
    assert (tmp_path / "m-stereo.png").exists() and not (tmp_path / "m-bad.png").exists()
    assert main(["score", str(stereo), "--channel", "each", "--plot", str(out), "--model", str(model_stem)]) == 2


def test_cli_plot_without_matplotlib(stereo, model_stem, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    code = main(["score", str(stereo), "--model", str(model_stem), "--plot", str(tmp_path / "p.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "robodetect[plot]" in err[0]
