import numpy as np
import pytest
import soundfile as sf

from robodetect.audio import SAMPLE_RATE, AudioError, load_audio, prepare_waveform


def tone(freq: float, sr: int, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_hz(x: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spec)])


@pytest.mark.parametrize("sr", [4000, 8000, 11025, 16000, 22050, 44100, 96000, 192000])
def test_odd_rates_resample_to_8k_and_keep_pitch(sr, write_wav):
    path = write_wav(f"tone_{sr}.wav", tone(440.0, sr, 2.0), sr)
    audio = load_audio(path)
    assert audio.sample_rate == SAMPLE_RATE and audio.orig_sample_rate == sr
    assert audio.samples.shape == (1, 2 * SAMPLE_RATE)
    assert abs(dominant_hz(audio.samples[0]) - 440.0) < 5.0
    # amplitude preserved by the resampler (RMS of a 0.5 sine = 0.354) away from the edges
    mid = audio.samples[0, 2000:-2000]
    assert np.sqrt(np.mean(mid**2)) == pytest.approx(0.354, rel=0.02)


def test_anti_alias_filter_removes_content_above_nyquist(write_wav):
    # 6 kHz at 44.1 kHz would alias to 2 kHz after naive decimation to 8 kHz
    path = write_wav("hi.wav", tone(6000.0, 44100, 1.0), 44100)
    x = load_audio(path).samples[0, 1000:-1000]
    assert np.sqrt(np.mean(x**2)) < 0.005


def test_stereo_channel_modes(write_wav):
    left, right = tone(300.0, 16000), tone(1200.0, 16000)
    path = write_wav("st.wav", np.stack([left, right], axis=1), 16000)
    each = load_audio(path, "each")
    assert each.channel_names == ["left", "right"] and each.samples.shape == (2, 8000)
    assert abs(dominant_hz(each.samples[0]) - 300) < 10 and abs(dominant_hz(each.samples[1]) - 1200) < 10
    assert abs(dominant_hz(load_audio(path, "right").samples[0]) - 1200) < 10
    mix = load_audio(path, "mix").samples[0]
    np.testing.assert_allclose(mix, each.samples.mean(0), atol=1e-5)


def test_integer_and_float_formats_agree(write_wav):
    x = tone(500.0, 8000)
    a = load_audio(write_wav("a.wav", x, 8000, "PCM_16")).samples
    b = load_audio(write_wav("b.wav", x, 8000, "FLOAT")).samples
    c = load_audio(write_wav("c.flac", x, 8000, "PCM_24")).samples
    np.testing.assert_allclose(a, b, atol=1e-4)
    np.testing.assert_allclose(b, c, atol=1e-4)


def test_file_and_array_paths_are_identical(write_wav):
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(3 * 44100)).astype(np.float32)
    path = write_wav("n.wav", x, 44100, "FLOAT")
    np.testing.assert_array_equal(load_audio(path).samples, prepare_waveform(x, 44100).samples)


def test_block_decoding_matches_whole(monkeypatch, write_wav):
    import robodetect.audio as audio_mod

    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal(5 * 22050)).astype(np.float32)
    path = write_wav("blk.wav", x, 22050, "FLOAT")
    whole = load_audio(path).samples
    monkeypatch.setattr(audio_mod, "BLOCK_FRAMES", 4096)
    np.testing.assert_allclose(load_audio(path).samples, whole, atol=1e-6)


def test_int16_array_is_scaled():
    x = (tone(400.0, 8000) * 32767).astype(np.int16)
    y = prepare_waveform(x, 8000).samples[0]
    assert np.max(np.abs(y)) == pytest.approx(0.5, abs=0.01)


def test_errors_name_the_file(tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
    with pytest.raises(AudioError, match="broken.wav: cannot decode"):
        load_audio(bad)
    with pytest.raises(AudioError, match="missing.wav: file not found"):
        load_audio(tmp_path / "missing.wav")
    mono = tmp_path / "mono.wav"
    sf.write(mono, tone(300, 8000), 8000)
    with pytest.raises(AudioError, match="1 channel"):
        load_audio(mono, "right")
    with pytest.raises(AudioError, match="sample rate"):
        prepare_waveform(np.zeros(100), 1000)


@pytest.mark.parametrize("ext,fmt,subtype", [("ogg", "OGG", "VORBIS"), ("mp3", "MP3", "MPEG_LAYER_III")])
def test_compressed_formats_decode(ext, fmt, subtype, tmp_path):
    path = tmp_path / f"tone.{ext}"
    sf.write(path, tone(700.0, 16000, 2.0), 16000, format=fmt, subtype=subtype)
    audio = load_audio(path)
    assert audio.orig_sample_rate == 16000 and abs(audio.samples.shape[1] - 16000) < 1200
    assert abs(dominant_hz(audio.samples[0]) - 700.0) < 10.0
