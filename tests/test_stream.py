"""StreamingDetector: same final score as Detector.score, chunking-independent decisions, bounded state."""

from __future__ import annotations

import csv
import warnings

import numpy as np
import pytest
import soundfile as sf
import soxr
from conftest import REPO, SAMPLES, corpus_files

from robodetect.stream import HUMAN, ROBOT, UNDECIDED, StreamingDetector, stream_file


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Single-window forwards, as a streaming server runs them: one torch thread."""


def _same_score(update, result) -> None:
    assert update.final and update.label == result.label
    assert update.speech_seconds == pytest.approx(result.speech_seconds, abs=1e-3)
    if result.robot_probability is None:
        assert update.robot_probability is None
    else:  # Result rounds to 6 decimals
        assert update.robot_probability == pytest.approx(result.robot_probability, abs=2e-6)
        assert update.windows == len(result.windows)


@pytest.mark.parametrize(
    ("name", "rate"),
    [("human_en_librispeech.wav", 16000), ("robot_zh_fastspeech2.wav", 22050), ("robot_en_piper.wav", 48000)],
)
def test_final_probability_equals_detector_score(detector, tmp_path, name, rate):
    """A sample written at a wide-band rate: the stream's final score equals Detector.score_file."""
    x, sr = sf.read(SAMPLES / name, dtype="float32")
    path = tmp_path / name
    sf.write(path, soxr.resample(x, sr, rate), rate, subtype="PCM_16")
    result = detector.score_file(path)
    _same_score(stream_file(path, detector, chunk_seconds=1.0)[-1], result)


@pytest.mark.corpus
@pytest.mark.parametrize(
    "source",
    ["librispeech", "zs-tts-zh", "speechocean762", "commonvoice-zh"],  # 16 / 22.05 / 16 / 48 kHz originals
)
def test_final_probability_equals_detector_score_on_corpus(detector, source):
    path = corpus_files(source)[0]
    result = detector.score_file(path)
    _same_score(stream_file(path, detector, chunk_seconds=1.0)[-1], result)


def test_native_rate_push_resamples_like_batch(detector, robot_8k):
    """A 22.05 kHz stream, pushed as int16 in odd-sized chunks, equals Detector.score on that array."""
    x = robot_8k
    x22 = (np.clip(np.interp(np.arange(0, len(x), 8000 / 22050), np.arange(len(x)), x), -1, 1) * 32767).astype(np.int16)
    result = detector.score(x22, 22050)
    stream = StreamingDetector(detector, sample_rate=22050)
    for i in range(0, len(x22), 3001):
        stream.push(x22[i : i + 3001])
    _same_score(stream.finish(), result)


def test_chunking_does_not_change_anything(detector, speech_8k):
    x = speech_8k[: 8000 * 6]
    result = detector.score(x, 8000)
    finals = []
    for sizes in ([len(x)], [240], [8000], [1, 239, 241, 5000, 77]):
        stream = StreamingDetector(detector, speech_budget_seconds=3.0)
        i = k = 0
        while i < len(x):
            n = sizes[k % len(sizes)]
            stream.push(x[i : i + n])
            i, k = i + n, k + 1
        finals.append(stream.finish())
        _same_score(finals[-1], result)
    first = finals[0]
    for f in finals[1:]:
        assert (f.decision, f.decision_reason, f.decided_at_speech_seconds, f.decided_at_seconds) == (
            first.decision,
            first.decision_reason,
            first.decided_at_speech_seconds,
            first.decided_at_seconds,
        )
        assert f.robot_probability == first.robot_probability


def test_int16_bytes_and_stereo_inputs(detector, speech_8k):
    x = speech_8k[: 8000 * 3]
    pcm = (x * 32767).astype(np.int16)
    result = detector.score(pcm, 8000)
    by_bytes = StreamingDetector(detector)
    by_bytes.push(pcm.tobytes())
    _same_score(by_bytes.finish(), result)

    stereo = np.stack([pcm, (pcm // 2).astype(np.int16)], axis=1)  # (n, 2)
    result = detector.score(stereo, 8000, channel="mix")  # the stream mixes the channels
    interleaved = StreamingDetector(detector, channels=2)
    for i in range(0, stereo.size, 1002):  # interleaved 1-D chunks, whole frames
        interleaved.push(stereo.reshape(-1)[i : i + 1002])
    _same_score(interleaved.finish(), result)
    with pytest.raises(ValueError):
        StreamingDetector(detector, channels=2).push(np.zeros((10, 3), np.float32))


def _constant(logit: float):
    """A fake window scorer (calibrated logit) to test the decision rule and buffering quickly."""
    seen = []

    def score(windows: np.ndarray) -> np.ndarray:
        assert windows.shape[1:] == (16000,) and windows.dtype == np.float32
        seen.append(len(windows))
        return np.full(len(windows), logit)

    score.seen = seen
    score.threshold = 0.5
    return score


@pytest.mark.parametrize(
    "logit, decision, reason, at_speech",
    [(5.0, ROBOT, "confident", 1.0), (-5.0, HUMAN, "confident", 1.0), (0.1, ROBOT, "budget", 4.0)],
)
def test_decision_rule(speech_8k, logit, decision, reason, at_speech):
    stream = StreamingDetector(window_logits=_constant(logit))
    stream.warmup()
    updates = [stream.push(speech_8k[i : i + 800]) for i in range(0, len(speech_8k), 800)]
    assert updates[0].decision == UNDECIDED and updates[0].robot_probability is None
    taken = [u for u in updates if u.new_decision]
    assert len(taken) == 1 and taken[0].decision == decision and taken[0].decision_reason == reason
    assert taken[0].decided_at_speech_seconds == at_speech
    assert taken[0].decided_at_seconds <= taken[0].audio_seconds
    assert all(u.decision == decision for u in updates[updates.index(taken[0]) :])  # never revised
    final = stream.finish()
    assert final.decision == decision and not final.new_decision


def test_short_call_is_decided_at_the_end_and_silence_is_no_speech(speech_8k):
    stream = StreamingDetector(window_logits=_constant(0.2), speech_budget_seconds=30)
    stream.push(speech_8k[: 8000 * 3])
    final = stream.finish()
    assert final.decision == ROBOT and final.decision_reason == "call_end"
    assert final.label == "uncertain"  # p = sigmoid(0.2) = 0.55: inside the default band around 0.5

    stream = StreamingDetector(window_logits=_constant(0.2))
    stream.push(np.zeros(8000 * 5, np.float32))
    final = stream.finish()
    assert final.label == "no_speech" and final.decision == UNDECIDED and final.robot_probability is None
    with pytest.raises(RuntimeError):
        stream.push(np.zeros(10, np.float32))
    stream.reset()
    assert stream.push(np.zeros(80, np.float32)).audio_seconds == 0.01  # a fresh call


def test_state_is_bounded_over_a_long_call(speech_8k):
    score = _constant(0.0)
    stream = StreamingDetector(window_logits=score, speech_budget_seconds=1e9)
    rng = np.random.default_rng(0)
    peak = 0
    for _ in range(12):  # ~100 s of call, ~50 s of speech
        stream.push(speech_8k)
        stream.push(np.zeros(int(rng.integers(0, 16000)), np.float32))
        peak = max(peak, stream.buffered_samples)
    final = stream.finish()
    assert final.speech_seconds > 40
    assert peak <= 16000 + 8000 * 2 + 240  # 2 s of speech + < 2 s of undecided call audio + a frame
    assert sum(score.seen) == final.windows + 1  # + the tiled window scored at the 1 s checkpoint


def _labels_csv():
    path = REPO / "samples" / "labels.csv"
    if not path.exists():
        return []
    return [REPO / "samples" / row["file"] for row in csv.DictReader(open(path))]


@pytest.mark.parametrize("path", _labels_csv() or [pytest.param(None, marks=pytest.mark.skip("samples/ is empty"))])
def test_samples_stream_takes_the_same_decisions_as_score(path, detector):
    import robodetect

    try:
        detector = robodetect.load()  # the shipped model when there is one, else the seeded fixture
    except FileNotFoundError:
        pass
    result = detector.score_file(path)
    _same_score(stream_file(path, detector, chunk_seconds=0.5)[-1], result)


def _accuracy_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("accuracy_vs_seconds", REPO / "scripts" / "accuracy_vs_seconds.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_checkpoint_probabilities_match_accuracy_vs_seconds(detector, speech_8k):
    """The stream's probability at N s of speech is the score of the first N s of speech, as
    scripts/accuracy_vs_seconds.py computes it (and the whole call is Detector.score)."""
    script = _accuracy_script()
    x = speech_8k  # ~4.4 s of speech
    stream = StreamingDetector(detector, min_speech_seconds=1.0, speech_budget_seconds=2.5)
    seen = {}
    for i in range(0, len(x), 400):
        u = stream.push(x[i : i + 400])
        if u.robot_probability is not None:
            seen[u.probability_speech_seconds] = u.robot_probability
    final = stream.finish()
    expected, speech_seconds = script.prefix_probabilities(detector, x, [1.0, 2.0, 2.5, 3.0, 4.0, float("inf")])
    assert speech_seconds > 4.0 and final.speech_seconds == pytest.approx(speech_seconds)
    got = [seen[1.0], seen[2.0], seen[2.5], seen[3.0], seen[4.0], final.robot_probability]
    assert got == pytest.approx(expected, abs=1e-6)  # batch-of-1 vs batched forward: float32 rounding
    assert final.robot_probability == pytest.approx(detector.score(x, 8000).robot_probability, abs=2e-6)


def test_accuracy_vs_seconds_script_runs(model_stem, tmp_path, capsys):
    script = _accuracy_script()
    manifest = tmp_path / "dev.csv"
    rows = [(SAMPLES / f, "robot") for f in ("robot_zh_fastspeech2.wav", "robot_en_piper.wav")]
    rows += [(SAMPLES / f, "human") for f in ("human_en_speechocean.wav", "human_zh_aishell.wav")]
    manifest.write_text("path,label,source\n" + "".join(f"{p},{lab},x\n" for p, lab in rows))
    out_json = tmp_path / "o.json"
    assert script.main(["--manifest", str(manifest), "--model", str(model_stem), "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "whole" in out and "4 calls (2 robot, 2 human)" in out and out_json.exists()


@pytest.mark.parametrize("name", ["human_en_librispeech.wav", "robot_en_vits.wav"])
def test_default_stream_runs_the_onnx_engine_like_torch(name):
    """StreamingDetector() with no detector streams on the shipped model's ONNX engine (one thread)
    when onnxruntime is installed: every update equals the torch detector's within float32 rounding."""
    pytest.importorskip("onnxruntime")
    import robodetect
    from robodetect.onnxengine import OnnxDetector

    default = StreamingDetector()
    assert isinstance(default.detector, OnnxDetector)
    assert default.detector.session.get_session_options().intra_op_num_threads == 1
    onnx = stream_file(SAMPLES / name, chunk_seconds=0.7)
    torch_updates = stream_file(SAMPLES / name, robodetect.load(), chunk_seconds=0.7)
    assert len(onnx) == len(torch_updates)
    for a, b in zip(onnx, torch_updates):
        assert (a.decision, a.decided_at_seconds, a.windows, a.label) == (
            b.decision,
            b.decided_at_seconds,
            b.windows,
            b.label,
        )
        if b.robot_probability is None:
            assert a.robot_probability is None
        else:
            assert a.robot_probability == pytest.approx(b.robot_probability, abs=1e-5)


def test_default_stream_falls_back_to_torch_and_says_why(monkeypatch):
    """A refused ONNX engine (a graph stale after the JSON changed, say) leaves the stream on torch,
    with a warning naming the reason; no onnxruntime at all: torch without a word."""
    import robodetect
    from robodetect import onnxengine, stream

    def refuse(self, *args, **kwargs):
        raise onnxengine.EngineUnavailable("graph made from other weights")

    monkeypatch.setattr(onnxengine.OnnxDetector, "__init__", refuse)
    monkeypatch.setattr(stream.importlib.util, "find_spec", lambda name: object())
    with pytest.warns(UserWarning, match="other weights"):
        assert isinstance(stream.default_stream_detector(), robodetect.Detector)
    monkeypatch.setattr(stream.importlib.util, "find_spec", lambda name: None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(StreamingDetector().detector, robodetect.Detector)
