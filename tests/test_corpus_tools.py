"""The corpus builder's vocoders and extra engines (skipped where their packages are not installed:
they belong to the `corpus` extra, which CI does not install)."""

import random
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))


@pytest.mark.parametrize("kind", ["world", "griffinlim", "lpc"])
def test_vocoded_copy_keeps_length_level_and_spectrum(kind, speech_8k):
    pytest.importorskip("pyworld", reason="pyworld is in the corpus extra")
    import vocoders

    x = speech_8k[:24000].astype(np.float64)
    y, settings = vocoders.vocode(x, kind, random.Random(0))
    assert settings["vocoder"] == kind and len(y) == len(x) and np.all(np.isfinite(y))
    assert 0.5 < np.sqrt(np.mean(y**2)) / np.sqrt(np.mean(x**2)) < 2.0

    def logspec(z):
        frames = z[: len(z) // 256 * 256].reshape(-1, 256) * np.hanning(256)
        return np.log(np.abs(np.fft.rfft(frames, axis=1)).mean(0) + 1e-6)

    assert np.corrcoef(logspec(x), logspec(y))[0, 1] > 0.8  # a copy of this speech, not noise
    y2, _ = vocoders.vocode(x, kind, random.Random(0))
    np.testing.assert_array_equal(y, y2)  # seeded


def test_hibari_speaks():
    pytest.importorskip("hibari", reason="hibari-tts is in the corpus extra")
    import tts_extra_engines

    voice = tts_extra_engines.hibari_voices()[0]
    audio, sr = tts_extra_engines.synth_hibari(
        "Press one to speak with an agent.", voice, {"speed": 1.0, "seed": 1}, Path(".")
    )
    assert sr == 24000 and 1.0 < len(audio) / sr < 6.0 and np.sqrt(np.mean(audio**2)) > 0.01
