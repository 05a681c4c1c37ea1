"""scripts/shortcut_checks.py must catch a model that keys on the channel, not the voice."""

import os
import stat
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import shortcut_checks  # noqa: E402


class BandEdgeDetector:
    """A 'model' that scores the energy share at 3.85-4 kHz (what a resample_poly robot corpus
    once taught) and one that scores the share of digital-zero frames."""

    def __init__(self, cue: str) -> None:
        self.cue = cue

    def score(self, x: np.ndarray, sr: int) -> SimpleNamespace:
        if sr != 8000:
            x = soxr.resample(x, sr, 8000)
        if self.cue == "floor":  # how far the quiet frames sit below the median frame (gain-free)
            frames = x[: len(x) // 240 * 240].reshape(-1, 240).astype(np.float64)
            level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)
            z = (np.median(level) - np.percentile(level, 10)) / 5.0 - 4.0
        elif self.cue == "band-edge":
            spec = np.abs(np.fft.rfft(x)) ** 2
            f = np.fft.rfftfreq(len(x), 1 / 8000)
            z = 2.0 * np.log10(spec[f > 3850].sum() / spec.sum() + 1e-12) + 8.0
        else:
            frames = x[: len(x) // 240 * 240].reshape(-1, 240)
            z = 20.0 * np.mean(np.all(frames == 0, axis=1)) - 1.0
        return SimpleNamespace(robot_probability=float(1 / (1 + np.exp(-z))))


def calls(speech_8k):
    rng = np.random.default_rng(0)
    out = []
    for k in range(3):
        x = speech_8k[k * 8000 : k * 8000 + 24000].astype(np.float32)
        out.append((x + rng.standard_normal(len(x)).astype(np.float32) * 1e-5, k))
    return out


def mean_abs_dlogit(table, name):
    return float(np.mean([abs(r[0]) for r in table[name]]))


def test_resampler_cue_is_caught(speech_8k):
    table = shortcut_checks.measure(BandEdgeDetector("band-edge"), calls(speech_8k), thr=0.5)
    assert mean_abs_dlogit(table, "resample_poly vs soxr (via 22.05 kHz)") > 0.1


def test_noise_suppression_cue_is_caught(speech_8k):
    table = shortcut_checks.measure(BandEdgeDetector("floor"), calls(speech_8k), thr=0.5)
    assert mean_abs_dlogit(table, "handset noise suppression (Wiener, -40 dB floor)") > 0.1
    assert mean_abs_dlogit(table, "+12 dB gain") < 0.1  # the cue is relative: gain alone leaves it


def test_digital_silence_cue_is_caught(speech_8k):
    table = shortcut_checks.measure(BandEdgeDetector("zeros"), calls(speech_8k), thr=0.5)
    assert mean_abs_dlogit(table, "digital silence (frames < -45 dB zeroed)") > 0.1
    assert mean_abs_dlogit(table, "+12 dB gain") < 0.1  # gain alone makes no zero frames


def test_room_rows_catch_a_model_that_reads_the_floor_between_words(speech_8k):
    """A room fills the quiet between words with its tail: the floor 'model' follows it, more for a
    longer, wetter room; an extra room row is measured beside the fixed one."""
    rooms = shortcut_checks.ROOMS + ((0.2, 12.0),)
    table = shortcut_checks.measure(BandEdgeDetector("floor"), calls(speech_8k), thr=0.5, rooms=rooms)
    wet, dry = (mean_abs_dlogit(table, shortcut_checks.room_row(*r)) for r in rooms)
    assert wet > 0.1 and wet > dry
    assert mean_abs_dlogit(table, "+12 dB gain") < 0.1
    plain = shortcut_checks.measure(BandEdgeDetector("floor"), calls(speech_8k), thr=0.5)
    assert set(table) - set(plain) == {shortcut_checks.room_row(0.2, 12.0)}
    for name in plain:  # the extra room's draws come after every other row's: those rows are unchanged
        assert table[name] == plain[name]


class FramePhaseDetector:
    """A 'model' whose score follows the phase of the 30 ms frame grid (the call length mod 240)."""

    def score(self, x: np.ndarray, sr: int) -> SimpleNamespace:
        z = 2.0 * np.cos(2 * np.pi * (len(x) % 240) / 240)
        return SimpleNamespace(robot_probability=float(1 / (1 + np.exp(-z))))


def test_frame_phase_row_and_phase_averaging(speech_8k):
    row = "VAD frame phase (+20 ms lead)"
    table = shortcut_checks.measure(FramePhaseDetector(), calls(speech_8k), thr=0.5)
    assert mean_abs_dlogit(table, row) > 0.1
    # three phases 10 ms apart cover the grid: the averaged score no longer follows it
    averaged = shortcut_checks.measure(shortcut_checks.PhaseAveraged(FramePhaseDetector(), 3), calls(speech_8k), 0.5)
    assert mean_abs_dlogit(averaged, row) < 1e-6


class ScaledPhaseDetector(FramePhaseDetector):
    """The frame-phase 'model' with every logit multiplied by ``k`` (less or more confident)."""

    def __init__(self, k: float) -> None:
        self.k = k

    def score(self, x: np.ndarray, sr: int) -> SimpleNamespace:
        p = super().score(x, sr).robot_probability
        z = self.k * (np.log(p / (1 - p)) + 20.0 * float(np.std(x)))  # calls differ by their level too
        return SimpleNamespace(robot_probability=float(1 / (1 + np.exp(-z))))


def test_relative_row_does_not_reward_compressed_scores(speech_8k):
    """Halving every logit halves the absolute row but not the row over the calls' spread."""
    row = "VAD frame phase (+20 ms lead)"
    figures = {}
    for k in (1.0, 0.5):
        bases: list[float] = []
        table = shortcut_checks.measure(ScaledPhaseDetector(k), calls(speech_8k), 0.5, bases)
        figures[k] = (mean_abs_dlogit(table, row), shortcut_checks.relative(mean_abs_dlogit(table, row), bases))
    assert figures[0.5][0] < 0.75 * figures[1.0][0]
    assert figures[0.5][1] > 0.75 * figures[1.0][1]


def test_reference_segments_scores_a_variant_with_the_unvaried_calls_segments(speech_8k):
    import robodetect

    det = robodetect.load("robodetect-v6")  # gain-normalised windows: only the segmentation sees gain
    rng = np.random.default_rng(0)
    moved = 0
    for k in range(3):
        x = speech_8k[k * 8000 : k * 8000 + 40000] + rng.standard_normal(40000).astype(np.float32) * 1e-4
        ref = shortcut_checks.ReferenceSegments(det)
        ref.reference(x)
        base = det.score(x, 8000).robot_probability
        assert ref.score(x, 8000).robot_probability == base  # the unvaried call: exactly as scored
        quiet = x * np.float32(10 ** (-30 / 20))  # 30 dB down: the VAD keeps other frames
        moved += abs(det.score(quiet, 8000).robot_probability - base) > 1e-3
        assert abs(ref.score(quiet, 8000).robot_probability - base) < 1e-4  # same segments, same score
        longer = np.concatenate([np.zeros(800, np.float32), x])  # another length: scored as usual
        assert ref.score(longer, 8000).robot_probability == det.score(longer, 8000).robot_probability
    assert moved >= 1  # the check above could fail: the VAD itself does move with the level


class PauseShareDetector:
    """A 'model' that scores the share of quiet 30 ms frames (FSDD's digit calls are half pause)."""

    def score(self, x: np.ndarray, sr: int) -> SimpleNamespace:
        frames = x[: len(x) // 240 * 240].reshape(-1, 240).astype(np.float64)
        level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)
        z = 8.0 * np.mean(level < level.max() - 30.0) - 2.0
        return SimpleNamespace(robot_probability=float(1 / (1 + np.exp(z))))


def test_pieces_row_catches_a_pause_share_cue(speech_8k):
    from robodetect.simulate import SimConfig

    floor = 1e-5
    with_pieces = []
    for x, seed in calls(speech_8k):
        y = shortcut_checks.insert_pauses(x, np.random.default_rng(seed), floor, SimConfig())
        # the speech is all there, in order, at its level: only pauses were put between pieces (the
        # same draws with a zero floor make the pauses exact zeros, which the dithered call never has)
        bare = shortcut_checks.insert_pauses(x, np.random.default_rng(seed), 0.0, SimConfig())
        assert len(bare) == len(y) > len(x)
        np.testing.assert_array_equal(bare[bare != 0], x)
        np.testing.assert_array_equal(y[bare != 0], x)
        with_pieces.append((x, seed, "robot", {"pieces": (y, 8000)}))
    table = shortcut_checks.measure(PauseShareDetector(), with_pieces, thr=0.5)
    assert mean_abs_dlogit(table, "pieces") > 0.5
    assert mean_abs_dlogit(table, "+12 dB gain") < 0.1
    # a detector that does not read pauses passes the row
    table = shortcut_checks.measure(BandEdgeDetector("band-edge"), with_pieces, thr=0.5)
    assert mean_abs_dlogit(table, "pieces") < 0.1


def test_shift_and_slope_tell_a_cue_from_masked_evidence():
    rng = np.random.default_rng(0)
    thr = 0.9
    base = rng.normal(0, 6, 200) + float(np.log(thr / (1 - thr)))
    centred = base - np.log(thr / (1 - thr))
    cue = -0.8 + 0.05 * rng.standard_normal(200)  # every call pushed toward human by 0.8
    masked = -0.3 * centred + 0.05 * rng.standard_normal(200)  # confident calls pulled to the threshold
    shift, slope = shortcut_checks.shift_and_slope(cue, base, thr)
    assert abs(shift + 0.8) < 0.05 and abs(slope) < 0.02
    shift, slope = shortcut_checks.shift_and_slope(masked, base, thr)
    assert abs(shift) < 0.05 and abs(slope + 0.3) < 0.02
    assert np.isnan(shortcut_checks.shift_and_slope(cue[:1], base[:1], thr)[0])


def test_json_rows_hold_the_measured_figures_and_are_written_whole(speech_8k, tmp_path):
    import json

    bases: list[float] = []
    table = shortcut_checks.measure(BandEdgeDetector("band-edge"), calls(speech_8k), 0.5, bases)
    rows = shortcut_checks.summarise_rows(table, bases, 0.5)
    row = next(r for r in rows if r["variation"] == "resample_poly vs soxr (via 22.05 kHz)")
    assert row["calls"] == 3 and abs(row["mean_abs_dlogit"] - mean_abs_dlogit(table, row["variation"])) < 1e-9
    assert row["mean_abs_dlogit"] > 0.1  # the band-edge cue, as the table says
    assert row["mean_dlogit_robots"] is None  # calls() are all one class: no robot mean, not 0
    path = tmp_path / "rows.json"
    shortcut_checks.write_json(path, {"rows": rows, "slope": float("nan")})
    doc = json.loads(path.read_text())
    assert doc["slope"] is None and doc["rows"][0]["variation"] == rows[0]["variation"]
    assert [p.name for p in tmp_path.iterdir()] == ["rows.json"]  # no temporary file left
    umask = os.umask(0o022)  # a plain open() under this umask gives 0644, not mkstemp's owner-only 0600
    try:
        shortcut_checks.write_json(path, {"rows": []})
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    # a target the file cannot replace (a folder of that name): OSError out, no temporary file left
    (tmp_path / "taken.json").mkdir()
    try:
        shortcut_checks.write_json(tmp_path / "taken.json", {"rows": []})
    except OSError:
        pass
    else:
        raise AssertionError("write_json onto a folder must raise")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.json", "taken.json"]


def test_an_unwritable_json_path_is_refused_before_any_scoring(tmp_path, monkeypatch):
    import pytest

    for bad in (tmp_path / "missing" / "rows.json", tmp_path):
        monkeypatch.setattr(sys, "argv", ["shortcut_checks.py", "--model", "no-such-model", "--json", str(bad)])
        with pytest.raises(SystemExit) as exc:
            shortcut_checks.main()  # refused before the (missing) model is loaded
        assert str(exc.value).startswith(f"shortcut_checks: {bad}: cannot write the rows there")
