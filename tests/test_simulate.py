import warnings
from dataclasses import replace

import numpy as np
import pytest

from robodetect.metrics import eer, rates_at, threshold_for_false_alarm
from robodetect.simulate import (
    SimConfig,
    agc_compress,
    apply_codec,
    change_speed,
    g711,
    gap_gain,
    pause_gain,
    simulate_call,
    simulate_two_party,
    split_pieces,
    telephone_channel,
    trim_silence,
)


def test_trim_strips_leading_and_trailing_silence(speech_8k):
    padded = np.concatenate([np.zeros(8000), speech_8k[8000:24000], np.zeros(4000)]).astype(np.float32)
    trimmed = trim_silence(padded)
    assert len(trimmed) < len(padded) - 10000 and np.abs(trimmed[:500]).max() > 1e-3


@pytest.mark.parametrize("codec", ["mulaw", "alaw", "gsm", "amr-nb"])
def test_codecs_round_trip_keep_speech(codec, speech_8k):
    x = speech_8k[:16000] * 0.5
    y = apply_codec(x, codec, np.random.default_rng(0))
    assert y.shape == x.shape and not np.allclose(x, y)
    # lossy but close: the decoded speech still correlates strongly with the input
    lag = int(np.argmax(np.correlate(y[2000:6000], x[2000:6000], "full"))) - 3999
    xs = np.roll(x, lag)
    corr = np.corrcoef(xs[1000:-1000], y[1000:-1000])[0, 1]
    assert corr > (0.99 if codec in ("mulaw", "alaw") else 0.3)  # CELP codecs keep the spectrum, not the waveform
    level_db = 10 * np.log10(np.mean(y**2) / np.mean(x**2))
    assert abs(level_db) < 6.0


def test_g711_is_8_bit():
    x = np.linspace(-1, 1, 10001).astype(np.float32)
    for law in ("mulaw", "alaw"):
        assert len(np.unique(g711(x, law))) <= 256


def test_simulator_is_seeded_and_normalises_level(speech_8k):
    utts = [speech_8k[:16000], speech_8k[16000:40000] * 0.01]  # very different source levels
    a, meta_a = simulate_call(utts, np.random.default_rng(5), SimConfig(codec="mulaw"))
    b, meta_b = simulate_call(utts, np.random.default_rng(5), SimConfig(codec="mulaw"))
    np.testing.assert_array_equal(a, b)
    assert meta_a == meta_b and meta_a["codec"] == "mulaw"
    c, _ = simulate_call(utts, np.random.default_rng(6))
    assert len(c) != len(a) or not np.array_equal(a, c)
    assert np.abs(a).max() <= 1.0


def test_eer_and_rates():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    assert eer(np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9]), labels)[0] == 0.0
    assert eer(np.array([0.1, 0.2, 0.3, 0.7, 0.6, 0.7, 0.8, 0.9]), labels)[0] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="NaN"):  # not a number read off a curve NaNs scrambled
        eer(np.array([0.1, 0.2, 0.3, np.nan, 0.6, 0.7, 0.8, 0.9]), labels)
    assert eer(np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, np.inf]), labels)[0] == 0.0  # inf is a score
    r = rates_at(np.array([0.1, 0.2, 0.3, 0.7, 0.6, 0.7, 0.8, 0.9]), labels, 0.65)
    assert r == {"accuracy": 0.75, "human_false_alarm": 0.25, "robot_detection": 0.75}
    humans = np.arange(100) / 100.0
    t = threshold_for_false_alarm(humans, 0.01)
    assert np.mean(humans >= t) <= 0.01 and np.mean(humans >= t - 0.011) > 0.01


def test_speed_perturbation_scales_pitch_and_length():
    t = np.arange(8000) / 8000
    tone = np.sin(2 * np.pi * 200 * t).astype(np.float32)
    fast = change_speed(tone, 1.1)
    assert abs(len(fast) - 8000 / 1.1) < 2
    spec = np.abs(np.fft.rfft(fast * np.hanning(len(fast))))
    assert abs(np.argmax(spec) * 8000 / len(fast) - 220) < 2  # 200 Hz played 1.1x faster
    rng = np.random.default_rng(3)
    _, meta = simulate_call([tone], rng, SimConfig(p_speed=1.0, p_clean=1.0, codec="none"))
    assert 0.9 <= meta["speed"] <= 1.1
    _, meta = simulate_call([tone], np.random.default_rng(3), SimConfig(codec="none"))
    assert "speed" not in meta  # off by default: dev calls are never perturbed


def test_no_digital_silence_inside_or_between_utterances(speech_8k):
    """An utterance with digital zeros inside (as espeak makes) and a clean, noiseless channel:
    the dither floor leaves no run of exact zeros anywhere in the call."""
    u = speech_8k[:16000].copy()
    u[6000:8000] = 0.0
    cfg = SimConfig(p_clean=1.0, codec="none", p_packet_loss=0.0, p_clip=0.0, gain_db=(0.0, 0.0))
    x, _ = simulate_call([u, speech_8k[16000:32000]], np.random.default_rng(1), cfg)
    pcm = np.round(x * 32767).astype(np.int16)
    frames = pcm[: len(pcm) // 240 * 240].reshape(-1, 240)
    assert not np.any(np.all(frames == 0, axis=1))
    off, _ = simulate_call(
        [u],
        np.random.default_rng(1),
        SimConfig(**{**cfg.__dict__, "dither_db": -200.0, "clean_floor_db": (-200.0, -200.0)}),
    )
    pcm_off = np.round(off * 32767).astype(np.int16)
    assert np.any(np.all(pcm_off[: len(pcm_off) // 240 * 240].reshape(-1, 240) == 0, axis=1))


def test_two_party_call_keeps_each_party_on_its_channel(speech_8k):
    caller = [speech_8k[:16000], speech_8k[16000:32000]]
    callee = [np.sin(2 * np.pi * 150 * np.arange(8000) / 8000).astype(np.float32) * 0.1] * 2
    cfg = SimConfig(p_clean=1.0, codec="none", p_packet_loss=0.0, p_clip=0.0, p_bandlimit=0.0, p_overlap=0.0)
    x, meta = simulate_two_party(caller, callee, np.random.default_rng(3), cfg)
    assert x.shape[0] == 2 and x.dtype == np.float32
    assert meta["speech_seconds"][0] == pytest.approx(4.0, abs=0.6) and meta["speech_seconds"][1] > 0
    # the callee's channel carries the 150 Hz tone, the caller's does not
    spec = [np.abs(np.fft.rfft(ch)) for ch in x]
    f = np.fft.rfftfreq(x.shape[1], 1 / 8000)
    band = (f > 145) & (f < 155)
    tone = [s[band].sum() / s.sum() for s in spec]
    assert tone[1] > 5 * tone[0]
    y, meta_y = simulate_two_party(caller, callee, np.random.default_rng(3), cfg)
    np.testing.assert_array_equal(x, y)


def test_resampler_round_trip_keeps_length_and_moves_the_band_edge():
    """Every resampler of the augmentation keeps the call's length and its speech band, and the
    cheap ones cut into the 3.6-4 kHz edge (what a source's resampler once marked)."""
    from robodetect.simulate import RESAMPLERS, resample_round_trip

    rng = np.random.default_rng(0)
    x = rng.standard_normal(8000 * 2)
    f = np.fft.rfftfreq(len(x), 1 / 8000)
    seen, edge = set(), {}
    for seed in range(60):
        y, how = resample_round_trip(x, np.random.default_rng(seed), (16000, 22050))
        assert y.shape == x.shape and np.all(np.isfinite(y))
        spec_x, spec_y = np.abs(np.fft.rfft(x)), np.abs(np.fft.rfft(y))
        mid = (f > 500) & (f < 3000)
        assert 0.9 < spec_y[mid].mean() / spec_x[mid].mean() < 1.1, how
        seen.add(how.split("@")[0])
        hi = (f > 3900) & (f < 3990)
        edge[how.split("@")[0]] = spec_y[hi].mean() / spec_x[hi].mean()
    assert seen == set(RESAMPLERS)
    assert min(edge.values()) < 0.5  # at least one resampler removes most of the band edge


def test_clean_calls_get_a_random_noise_floor(speech_8k):
    """A "clean" call still carries a coloured noise floor 30-50 dB below the speech: no class
    keeps its source's own floor (or its absence) as a cue."""
    cfg = SimConfig(p_clean=1.0, codec="none", p_packet_loss=0.0, p_clip=0.0, p_bandlimit=0.0, gain_db=(0.0, 0.0))
    levels = []
    for seed in range(12):
        _, meta = simulate_call([speech_8k[:16000]], np.random.default_rng(seed), cfg)
        assert meta["noise"] == "floor" and 30.0 <= meta["snr_db"] <= 50.0
        levels.append(meta["snr_db"])
    assert max(levels) - min(levels) > 5.0  # drawn, not fixed


def test_mp3_round_trip_keeps_alignment_and_leaves_other_draws_alone(speech_8k):
    from robodetect.simulate import mp3_round_trip

    x = speech_8k[:24000].astype(np.float64) * 0.3
    y = mp3_round_trip(x, 0.5)
    assert len(y) == len(x) and np.corrcoef(x, y)[0, 1] > 0.9  # same speech, aligned (no encoder delay)
    assert 1e-4 < np.sqrt(np.mean((y - x) ** 2)) / np.sqrt(np.mean(x**2))  # but coded, not a copy
    for quality in _stage_draws(speech_8k, "mp3", p_mp3=1.0):
        assert 0.0 <= quality <= 0.95


def _stage_draws(speech_8k, key: str, **stage) -> list:
    """Calls simulated with and without a channel stage (``stage``: its SimConfig share at 1) from
    the same seeds: the same length, not the same samples, and every other draw as without it.
    Returns the stage's own draws (its ``key`` in the call's meta), one per seed. (A clean call's
    floor is seeded by the signal, which the stage changes: noisy calls here.)"""
    base = SimConfig(codec="none", p_packet_loss=0.0, p_clean=0.0)
    drawn = []
    for seed in range(4):
        a, meta_a = simulate_call([speech_8k[:16000]], np.random.default_rng(seed), base)
        b, meta_b = simulate_call([speech_8k[:16000]], np.random.default_rng(seed), replace(base, **stage))
        drawn.append(meta_b.pop(key))
        assert meta_a == meta_b  # every other draw as without it
        assert len(a) == len(b) and not np.array_equal(a, b)
    return drawn


def _schroeder_rt60(h: np.ndarray) -> float:
    """RT60 from the -5 to -25 dB span of the backward-integrated energy decay (T20 x 3)."""
    energy = np.cumsum(h[::-1] ** 2)[::-1]
    level = 10 * np.log10(energy / energy[0])
    return 3.0 * (np.argmax(level < -25.0) - np.argmax(level < -5.0)) / 8000


@pytest.mark.parametrize("rt60", [0.15, 0.5, 1.0])
def test_room_response_has_the_asked_reverberation_time_and_direct_to_reverberant_ratio(rt60):
    from robodetect.simulate import room_response

    for drr in (-3.0, 0.0, 12.0):
        h = room_response(rt60, drr, np.random.default_rng(3))
        assert h[0] == 1.0 and np.all(h[1:20] == 0.0)  # the direct path, then the tail's onset delay
        assert 10 * np.log10(1.0 / np.sum(h[1:] ** 2)) == pytest.approx(drr, abs=1e-6)
    assert _schroeder_rt60(room_response(rt60, 0.0, np.random.default_rng(3))) == pytest.approx(rt60, rel=0.15)
    with pytest.raises(ValueError):
        room_response(0.0, 0.0, np.random.default_rng(3))


def test_room_stage_reverberates_at_the_same_level_and_leaves_other_draws_alone(speech_8k):
    from robodetect.simulate import room_reverb

    x = speech_8k[:24000].astype(np.float64) * 0.3
    y = room_reverb(x, 0.6, 0.0, np.random.default_rng(0))
    assert len(y) == len(x) and np.sqrt(np.mean(y**2)) == pytest.approx(np.sqrt(np.mean(x**2)), rel=1e-6)
    # half the energy moved into a tail: the signal's own envelope is smeared (its later lags correlate)
    assert 0.3 < np.corrcoef(x, y)[0, 1] < 0.95
    assert len(room_reverb(np.zeros(0), 0.5, 0.0, np.random.default_rng(0))) == 0
    for rt60, drr in _stage_draws(speech_8k, "room", p_room=1.0):
        assert 0.15 <= rt60 <= 1.0 and -3.0 <= drr <= 12.0


def test_noise_suppressor_removes_stationary_noise_and_keeps_speech(speech_8k):
    from robodetect.simulate import _colored_noise, noise_suppress

    speech = speech_8k[:24000].astype(np.float64) * 0.3
    x = np.concatenate([np.zeros(24000), speech, np.zeros(8000)])  # 3 s of noise alone first
    part = slice(24000, 48000)

    def rms(a):
        return float(np.sqrt(np.mean(a**2)))

    for seed in range(4):
        noise = _colored_noise(len(x), "pink", np.random.default_rng(seed))
        noise *= rms(speech) / rms(noise) * 10 ** (-15 / 20)  # 15 dB SNR
        y = noise_suppress(x + noise, floor_db=-40.0, over=2.0)
        assert y.shape == x.shape
        # the noise-only lead, once the tracker has heard 1.5 s of it, loses most of its level ...
        assert rms(y[12000:24000]) < rms(noise[12000:24000]) * 10 ** (-8 / 20), seed
        # ... while the speech stays itself (over-subtraction distorts it a little)
        assert np.corrcoef(y[part], x[part])[0, 1] > 0.97, seed
        # without over-subtraction the output is closer to the speech than the noisy input was
        y1 = noise_suppress(x + noise, floor_db=-40.0, over=1.0)
        assert rms(y1[part] - x[part]) < 0.95 * rms(noise[part]), seed
    # the floor bounds the attenuation: a -10 dB floor takes stationary noise down by ~10 dB
    # (once the tracker has converged; the gain scales amplitudes)
    white = _colored_noise(8000 * 6, "white", np.random.default_rng(5))
    gentle = noise_suppress(white, floor_db=-10.0, over=4.0)
    assert -11.0 < 20 * np.log10(rms(gentle[16000:]) / rms(white[16000:])) < -8.5
    # no noise to remove: a gentle setting leaves the signal nearly as it was
    quiet = speech + 1e-5 * np.random.default_rng(2).standard_normal(len(speech))
    z = noise_suppress(quiet, floor_db=-20.0, over=1.0)
    assert rms(z - speech) < 0.35 * rms(speech)


def test_noise_tracker_is_causal():
    """The noise estimate of a frame depends on that frame and earlier ones only."""
    from robodetect.simulate import track_noise

    power = np.random.default_rng(0).exponential(size=(9, 400))
    full = track_noise(power)
    for k in (50, 93, 200):
        assert np.allclose(full[:, :k], track_noise(power[:, :k]))


def test_noise_suppression_draws_leave_other_draws_alone(speech_8k):
    base = SimConfig(codec="none", p_packet_loss=0.0, p_clean=0.0)
    with_ns = SimConfig(codec="none", p_packet_loss=0.0, p_clean=0.0, p_ns=1.0)
    for seed in range(4):
        a, meta_a = simulate_call([speech_8k[:16000]], np.random.default_rng(seed), base)
        b, meta_b = simulate_call([speech_8k[:16000]], np.random.default_rng(seed), with_ns)
        floor_db, over = meta_b.pop("ns")
        assert -60.0 <= floor_db <= -16.0 and 1.0 <= over <= 4.0 and meta_a == meta_b
        assert len(a) == len(b) and not np.array_equal(a, b)


def _frame_levels(z: np.ndarray) -> np.ndarray:
    """30 ms frame levels in dB."""
    return 10 * np.log10(np.mean(z[: len(z) // 240 * 240].reshape(-1, 240).astype(np.float64) ** 2, axis=1) + 1e-12)


def test_agc_stage_draws_leave_other_draws_alone_and_compress_the_leg(speech_8k):
    base = SimConfig(codec="none", p_packet_loss=0.0, p_clean=0.0, p_bandlimit=0.0, p_clip=0.0)
    with_agc = SimConfig(codec="none", p_packet_loss=0.0, p_clean=0.0, p_bandlimit=0.0, p_clip=0.0, p_agc=1.0)
    for seed in range(4):
        a, meta_a = simulate_call([speech_8k[:16000]], np.random.default_rng(seed), base)
        b, meta_b = simulate_call([speech_8k[:16000]], np.random.default_rng(seed), with_agc)
        ratio, window = meta_b.pop("agc")
        assert 1.5 <= ratio <= 4.0 and 0.03 <= window <= 0.5 and meta_a == meta_b
        assert len(a) == len(b) and not np.array_equal(a, b)
        la, lb = _frame_levels(a), _frame_levels(b)
        loud = la > np.percentile(la, 50)  # speech frames: their level spread shrinks
        assert np.std(lb[loud]) < np.std(la[loud])


def test_agc_stage_skipped_legs_are_untouched_and_two_party_legs_draw_it_each(speech_8k):
    base = SimConfig(codec="none", p_packet_loss=0.0, p_clean=0.0)
    half = SimConfig(codec="none", p_packet_loss=0.0, p_clean=0.0, p_agc=0.5, agc_noise_gate_db=6.0)
    took = 0
    for seed in range(8):
        a, _ = simulate_call([speech_8k[:16000]], np.random.default_rng(seed), base)
        b, meta = simulate_call([speech_8k[:16000]], np.random.default_rng(seed), half)
        took += "agc" in meta
        assert np.array_equal(a, b) == ("agc" not in meta)
    assert 0 < took < 8
    every = SimConfig(codec="none", p_packet_loss=0.0, p_agc=1.0, agc_noise_gate_db=6.0)
    x, meta = simulate_two_party([speech_8k[:12000]], [speech_8k[12000:20000]], np.random.default_rng(0), every)
    assert x.shape[0] == 2 and np.all(np.isfinite(x))
    assert "agc" in meta["caller"] and "agc" in meta["callee"]


def test_noise_tracker_finds_the_mean_power_of_stationary_noise():
    from robodetect.simulate import _colored_noise, ns_stft, track_noise

    for kind in ("white", "pink"):
        x = _colored_noise(8000 * 20, kind, np.random.default_rng(0))
        power = np.abs(ns_stft(x)) ** 2
        ratio = np.median(track_noise(power)[5:-5, 200:].mean(1) / power[5:-5, 200:].mean(1))
        assert abs(ratio - 1) < 0.1, (kind, ratio)  # NS_MIN_BIAS turns the minimum into the mean


def test_agc_compresses_the_speech_level_range_and_gates_the_pauses():
    rng = np.random.default_rng(0)
    t = np.arange(8000 * 3) / 8000
    tone = np.sin(2 * np.pi * 200 * t)
    env = np.where((t % 0.5) < 0.25, 1.0, 0.1)  # loud and weak "syllables", 20 dB apart
    env[(t > 1.0) & (t < 1.5)] = 1e-4  # a pause 80 dB down: line noise the gate leaves alone
    x = 0.3 * tone * env + 1e-6 * rng.standard_normal(t.size)
    y = agc_compress(x, ratio=3.0, window_seconds=0.03)  # faster than the 250 ms syllables
    assert y.shape == x.shape and np.all(np.isfinite(y))

    def db(z, sl):
        return 10 * np.log10(np.mean(z[sl] ** 2))

    loud, weak, pause = slice(800, 1600), slice(2800, 3600), slice(8800, 11200)
    gap_in, gap_out = db(x, loud) - db(x, weak), db(y, loud) - db(y, weak)
    assert abs(gap_in - 20.0) < 0.5 and abs(gap_out - gap_in / 3.0) < 2.0  # 20 dB -> ~6.7 dB (3:1)
    assert db(y, pause) - db(x, pause) < 1.0  # below the gate: no boost of the pause
    np.testing.assert_array_equal(agc_compress(np.zeros(100)), np.zeros(100))


def test_agc_noise_gate_keeps_the_pauses_snr_and_the_speech_level_but_compresses_speech(speech_8k):
    """Without the noise gate, line noise 35 dB under the speech is boosted in the pauses (the gate is
    relative to the speech only); with it the pauses keep their level, a leg where speech fills 40 %
    keeps its speech level, and the speech's frame levels still come closer together."""
    from robodetect.simulate import _colored_noise, _rms

    speech = speech_8k[:32000].astype(np.float64)
    speech = speech / _rms(speech) * 0.05
    n = int(len(speech) / 0.4)
    noise = _colored_noise(n, "pink", np.random.default_rng(1))
    leg = np.zeros(n)
    leg[: len(speech)] = speech
    leg += noise / _rms(noise) * 0.05 * 10 ** (-35 / 20)
    pause, talk = slice(len(speech) + 800, n - 800), slice(0, len(speech))

    def change_db(y, sl):
        return 20 * np.log10(_rms(y[sl]) / _rms(leg[sl]))

    plain = agc_compress(leg, 3.0, 0.03)
    gated = agc_compress(leg, 3.0, 0.03, noise_gate_db=6.0)
    assert change_db(plain, pause) > 10.0  # the check can fail: the ungated AGC raises the pauses
    assert abs(change_db(gated, pause)) < 3.0
    assert abs(change_db(gated, talk)) < 8.0
    before, after = _frame_levels(leg[talk]), _frame_levels(gated[talk])
    loud = before > np.percentile(before, 50)
    assert np.std(after[loud]) < 0.7 * np.std(before[loud])


def test_pause_gain_lifts_the_pauses_only_with_ramps():
    from robodetect.simulate import SPEECH_RMS

    rng = np.random.default_rng(0)
    pause = rng.standard_normal(8000) * SPEECH_RMS * 10 ** (-50 / 20)  # the dither's level
    speech = np.sin(2 * np.pi * 200 * np.arange(8000) / 8000) * SPEECH_RMS * np.sqrt(2)
    x = np.concatenate([pause, speech, pause])
    g = 20 * np.log10(pause_gain(x, 12.0))
    assert g.shape == x.shape
    np.testing.assert_allclose(g[:5000], 12.0, atol=1e-9)  # the pause, away from the word
    np.testing.assert_allclose(g[9000:15000], 0.0, atol=1e-9)  # under the speech
    np.testing.assert_allclose(g[-5000:], 12.0, atol=1e-9)
    edge = g[7000:9000]  # the ramp into the word: monotone, down to none before the word starts
    assert np.all(np.diff(edge) <= 1e-9) and edge[0] > 11.9 and edge[-1] < 0.1
    assert np.all(20 * np.log10(pause_gain(speech, 12.0)) == 0.0)  # all speech: no boost anywhere
    assert pause_gain(np.zeros(0), 12.0).shape == (0,)


def test_pause_noise_stage_raises_the_pauses_noise_and_leaves_other_draws_alone():
    quiet = dict(codec="none", p_packet_loss=0.0, p_clean=0.0, p_bandlimit=0.0, p_clip=0.0, pause_median_seconds=1.0)
    t = np.arange(8000) / 8000
    word = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((150, 300, 450), 1)).astype(np.float32)
    took = 0
    for seed in range(6):
        a, meta_a = simulate_call([word, word], np.random.default_rng(seed), SimConfig(**quiet))
        b, meta_b = simulate_call([word, word], np.random.default_rng(seed), SimConfig(**quiet, p_pause_noise=0.5))
        boost = meta_b.pop("pause_noise_db", None)
        assert meta_a == meta_b and len(a) == len(b)
        if boost is None:
            assert np.array_equal(a, b)
            continue
        took += 1
        assert 5.0 <= boost <= 20.0
        la, lb = _frame_levels(a), _frame_levels(b)
        rise = lb - la
        assert abs(np.percentile(rise[la < np.percentile(la, 80) - 6], 90) - boost) < 1.0  # the pauses: noise only
        assert np.median(np.abs(rise[la > np.percentile(la, 80)])) < 0.5  # the words: unchanged
    assert 0 < took < 6


def _leg_with_inner_silence():
    """A 2 s pause, a 1 s "word" with 500 ms of digital silence in its middle (as synthesis leaves),
    a 2 s pause; and the simulator's speech mask of it."""
    from robodetect.simulate import SPEECH_RMS

    t = np.arange(8000) / 8000
    word = np.sin(2 * np.pi * 200 * t) * SPEECH_RMS * np.sqrt(2)
    word[2000:6000] = 0.0
    x = np.concatenate([np.zeros(16000), word, np.zeros(16000)])
    speech = np.zeros(len(x), bool)
    speech[16000:24000] = True
    return x, speech


def test_gap_gain_follows_the_mask_not_the_level():
    x, speech = _leg_with_inner_silence()
    g = 20 * np.log10(gap_gain(speech, 12.0))
    np.testing.assert_allclose(g[:14000], 12.0, atol=1e-9)  # the simulator's gaps, away from the word
    np.testing.assert_allclose(g[-14000:], 12.0, atol=1e-9)
    np.testing.assert_allclose(g[16000:24000], 0.0, atol=1e-9)  # the whole word, its inner silence too
    assert np.all(20 * np.log10(pause_gain(x, 12.0))[16000 + 3000 : 16000 + 5000] > 11.9)  # the level rule lifts it
    assert gap_gain(np.zeros(0, bool), 12.0).shape == (0,)


@pytest.mark.parametrize("source", ["gaps", "signal"])
def test_pause_noise_from_gaps_never_lifts_inside_an_utterance(source):
    x, speech = _leg_with_inner_silence()
    quiet = dict(codec="none", p_packet_loss=0.0, p_clean=0.0, p_bandlimit=0.0, p_clip=0.0, dither_db=-150.0)
    a, meta_a = telephone_channel(x, np.random.default_rng(4), SimConfig(**quiet), speech)
    cfg = SimConfig(**quiet, p_pause_noise=1.0, pause_noise_from=source)
    b, meta_b = telephone_channel(x, np.random.default_rng(4), cfg, speech)
    boost = meta_b.pop("pause_noise_db")
    assert meta_a == meta_b
    inner = slice(16000 + 3000, 16000 + 5000)
    gaps = np.r_[0:14000, len(x) - 14000 : len(x)]
    rise = 20 * np.log10(np.std(b[gaps]) / np.std(a[gaps]))
    assert abs(rise - boost) < 0.5  # the gaps' noise raised by the drawn boost (both rules)
    if source == "gaps":
        np.testing.assert_array_equal(a[16000:24000], b[16000:24000])  # nothing inside the word moves
    else:  # the level rule lifts the word's digital silence: the asymmetry "gaps" removes
        assert 20 * np.log10(np.std(b[inner]) / np.std(a[inner])) > boost - 0.5


def test_pause_noise_from_gaps_needs_the_mask_and_both_call_kinds_give_it():
    x, speech = _leg_with_inner_silence()
    cfg = SimConfig(p_pause_noise=1.0, pause_noise_from="gaps")
    with pytest.raises(ValueError, match="mask"):
        telephone_channel(x, np.random.default_rng(0), cfg)
    with pytest.raises(ValueError, match="mask"):
        telephone_channel(x, np.random.default_rng(0), cfg, speech[:-1])
    with pytest.raises(ValueError, match="pause_noise_from"):
        telephone_channel(x, np.random.default_rng(0), SimConfig(pause_noise_from="words"), speech)
    word = x[16000:24000].astype(np.float32)
    _, meta = simulate_call([word, word], np.random.default_rng(1), cfg)
    assert 5.0 <= meta["pause_noise_db"] <= 20.0
    y, meta2 = simulate_two_party([word, word], [word], np.random.default_rng(1), cfg)
    assert y.shape[0] == 2 and "pause_noise_db" in meta2["caller"] and "pause_noise_db" in meta2["callee"]


def test_the_speech_mask_marks_exactly_the_placed_utterances(monkeypatch):
    import robodetect.simulate as sim

    seen = []
    real = sim.telephone_channel

    def spy(x, rng, c, speech=None):
        seen.append((np.asarray(x).copy(), None if speech is None else speech.copy()))
        return real(x, rng, c, speech)

    monkeypatch.setattr(sim, "telephone_channel", spy)
    rng = np.random.default_rng(0)
    utts = [(0.5 + 0.1 * rng.random(n)).astype(np.float32) for n in (3000, 5000, 4000)]  # never zero
    cfg = SimConfig(p_pause_noise=1.0, pause_noise_from="gaps", p_speed=1.0, p_overlap=1.0)
    for seed in range(4):
        seen.clear()
        simulate_call(utts, np.random.default_rng(seed), cfg)
        simulate_two_party(utts, utts[:2], np.random.default_rng(seed), cfg)
        assert len(seen) == 3  # one leg, then caller and callee
        for x, speech in seen:
            assert speech is not None and speech.dtype == bool
            np.testing.assert_array_equal(speech, x != 0)
            assert 0 < speech.mean() < 1


def _assembled(monkeypatch, utts, cfg, seed=0):
    """The signal and speech mask simulate_call hands to the channel, and the call's meta."""
    import robodetect.simulate as sim

    seen = []
    real = sim.telephone_channel

    def spy(x, rng, c, speech=None):
        seen.append((np.asarray(x).copy(), speech.copy()))
        return real(x, rng, c, speech)

    monkeypatch.setattr(sim, "telephone_channel", spy)
    _, meta = simulate_call(utts, np.random.default_rng(seed), cfg)
    monkeypatch.setattr(sim, "telephone_channel", real)
    return seen[0][0], seen[0][1], meta


def _runs(mask):
    """(start, length) of each run of True in ``mask``."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(a), int(b - a)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def test_short_clips_are_joined_into_phrases_keeping_their_speech(monkeypatch):
    rng = np.random.default_rng(3)
    digits = [(0.5 + 0.1 * rng.random(3200)).astype(np.float32) for _ in range(24)]  # 0.4 s, never zero
    plain = SimConfig(p_speed=0.0)
    joined = SimConfig(p_speed=0.0, join_below_seconds=1.0)
    for seed in range(3):
        x0, m0, meta0 = _assembled(monkeypatch, digits, plain, seed)
        x1, m1, meta1 = _assembled(monkeypatch, digits, joined, seed)
        # the same utterances at the same levels, in the same order (the channel's draws, which
        # depend on the call's length, are new)
        np.testing.assert_array_equal(x0[m0], x1[m1])
        r0, r1 = _runs(m0), _runs(m1)
        assert [n for _, n in r0] == [n for _, n in r1] == [3200] * 24
        gaps0 = [b[0] - (a[0] + a[1]) for a, b in zip(r0, r0[1:])]
        gaps1 = [b[0] - (a[0] + a[1]) for a, b in zip(r1, r1[1:])]
        short = [g1 for g0, g1 in zip(gaps0, gaps1) if g1 != g0]
        assert len(short) >= 12 and all(240 <= g <= 3200 for g in short)  # 0.03-0.4 s
        assert sum(gaps1) < 0.6 * sum(gaps0)
        # a phrase (clips joined by short gaps) never holds more than 6 s of speech
        phrase = 1
        for g0, g1 in zip(gaps0, gaps1):
            phrase = phrase + 1 if g1 != g0 else 1
            assert phrase * 0.4 <= 6.0
    # clips of a second or more are never joined: the call is the plain one, bit for bit
    long = [(0.5 + 0.1 * rng.random(12000)).astype(np.float32) for _ in range(4)]
    a, _ = simulate_call(long, np.random.default_rng(0), plain)
    b, _ = simulate_call(long, np.random.default_rng(0), joined)
    np.testing.assert_array_equal(a, b)


def test_split_pieces_cuts_at_the_quiet_frames_and_loses_nothing():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(8000 * 3).astype(np.float32)
    quiet = [4400, 8600, 12800]  # a 20 ms dip near every 0.5 s mark
    for q in quiet:
        x[q : q + 160] *= 0.01
    pieces = split_pieces(x, 0.5)
    np.testing.assert_array_equal(np.concatenate(pieces), x)
    cuts = np.cumsum([len(p) for p in pieces])[:-1]
    for q in quiet:
        assert any(q <= c <= q + 160 for c in cuts)
    assert all(0.35 * 8000 <= len(p) <= 0.65 * 8000 for p in pieces[:-1])
    assert (0.25 - 0.15) * 8000 <= len(pieces[-1]) < 0.75 * 8000
    assert len(split_pieces(x[:5000], 0.5)) == 1  # under 1.5 pieces: left whole
    assert [len(p) for p in split_pieces(x[:0], 0.5)] == [0]
    with pytest.raises(ValueError):
        split_pieces(x, 0.0)  # would never advance


def test_pieces_stage_breaks_utterances_keeping_their_speech(monkeypatch):
    rng = np.random.default_rng(1)
    utts = [(0.5 + 0.1 * rng.random(16000)).astype(np.float32) for _ in range(3)]  # 2 s each
    plain = SimConfig()
    pieces = SimConfig(p_pieces=1.0)
    x0, m0, meta0 = _assembled(monkeypatch, utts, plain)
    x1, m1, meta1 = _assembled(monkeypatch, utts, pieces)
    np.testing.assert_array_equal(x0[m0], x1[m1])  # the levelled speech, in order, nothing lost
    assert meta1["pieces"] is True and "pieces" not in meta0
    assert len(_runs(m0)) == 3 and len(_runs(m1)) >= 9
    assert all(n <= 0.8 * 8000 for _, n in _runs(m1))
    # p_pieces = 0.5: some calls cut, some not, decided per call from its own generator
    cut = [
        "pieces" in simulate_call([u * (1 + k) for u in utts], np.random.default_rng(k), SimConfig(p_pieces=0.5))[1]
        for k in range(16)
    ]
    assert 0 < sum(cut) < 16
    # an empty utterance among them leaves the speech mask right (levelling it warns of an empty mean)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        x2, m2, _ = _assembled(monkeypatch, [utts[0], utts[0][:0], utts[1]], pieces)
    np.testing.assert_array_equal(m2, x2 != 0)
