"""Training loop pieces: per-window flags and the language-adversarial option."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from robodetect.model import ModelConfig
from robodetect.model import RobotNet as RobotNetLike
from robodetect.train import CallData, _GradReverse, train_model


def _toy_data(n_calls: int = 8) -> CallData:
    rng = np.random.default_rng(0)
    calls, windows, owner = [], [], []
    for cid in range(n_calls):
        robot, zh = cid % 2 == 1, cid % 4 >= 2
        calls.append({"call_id": cid, "label": "robot" if robot else "human", "lang": "zh" if zh else "en"})
        t = np.arange(16000) / 8000
        tone = np.sin(2 * np.pi * (150 + 100 * robot) * t) * 0.3
        for _ in range(2):
            windows.append((tone + rng.normal(0, 0.02, 16000)) * 32767 * 0.5)
            owner.append(cid)
    return CallData(np.array(windows).astype(np.int16), np.array(owner, np.int32), calls)


def test_window_flags_follow_calls():
    data = _toy_data()
    assert data.window_labels().tolist() == [0, 0, 1, 1, 0, 0, 1, 1] * 2
    assert data.window_flags("lang", "zh").tolist() == [0, 0, 0, 0, 1, 1, 1, 1] * 2


def test_gradient_reversal():
    x = torch.ones(3, requires_grad=True)
    (_GradReverse.apply(x, 0.5) * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([-0.5, -1.0, -1.5]))


def test_language_adversary_trains_and_is_not_saved():
    data = _toy_data()
    model = train_model(data, ModelConfig(), epochs=2, batch_size=8, lang_adversary=1.0, log=lambda *_: None)
    assert not model.training
    assert not any("advers" in k for k in model.state_dict())
    with torch.no_grad():
        out = model(torch.from_numpy(data.windows.astype(np.float32) / 32768))
    assert out.shape == (len(data.windows),) and torch.isfinite(out).all()


def test_datasets_record_the_vad_that_cut_them_and_evaluate_picks_the_models(tmp_path):
    """A model is measured on windows cut by its own VAD: build_dataset records the VAD settings,
    evaluate.latest picks the newest dataset cut with the model's, and the two VADs cut differently."""
    import importlib.util
    import json
    import os
    from dataclasses import asdict

    from conftest import REPO, SAMPLES

    from robodetect.train import CallData, CallPlan, build_dataset
    from robodetect.vad import VadConfig

    spec = importlib.util.spec_from_file_location("evaluate", REPO / "scripts" / "evaluate.py")
    evaluate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(evaluate)

    paths = [str(SAMPLES / n) for n in ("human_en_librispeech.wav", "robot_en_piper.wav", "human_en_speechocean.wav")]
    plans = [
        CallPlan(i, "human", "dev", "g", "e", "s", "en", [p], 6.0, 100 + i, "id", "call") for i, p in enumerate(paths)
    ]
    built = {}
    for k, (name, vad) in enumerate((("legacy", VadConfig.legacy()), ("new", VadConfig()))):
        path = build_dataset(plans, tmp_path / f"dev-{name}.npz", workers=1, vad=vad)
        os.utime(path, (1000 + k, 1000 + k))  # the new-VAD set is the newer one
        built[name] = CallData.load(path)
        assert built[name].vad == json.loads(json.dumps(asdict(vad), sort_keys=True))
    assert not np.array_equal(built["legacy"].windows, built["new"].windows)
    assert evaluate.latest(tmp_path, "dev", asdict(VadConfig.legacy())).name == "dev-legacy.npz"
    assert evaluate.latest(tmp_path, "dev", asdict(VadConfig())).name == "dev-new.npz"
    assert evaluate.latest(tmp_path, "dev").name == "dev-new.npz"
    assert evaluate.latest(tmp_path, "dev", asdict(VadConfig(aggressiveness=0))) is None


def test_shifted_copies_are_the_same_speech_at_other_offsets(speech_8k):
    """``with_shifted_windows``: each extra window is the call's own speech at an offset off the
    plan's grid (per call and copy); the windows keep their call, the plan's cut comes first."""
    from robodetect import train
    from robodetect.detector import analyze_speech

    sr = 8000
    x = np.concatenate([np.zeros(2000, np.float32), speech_8k, np.zeros(4000, np.float32)])
    windows, speech_s, _, cover = train._windows_int16(x)
    calls = [{"call_id": 3, "speech_samples": int(round(speech_s * sr))}]
    data = train.CallData(
        windows, np.full(len(windows), 3, np.int32), calls, covers={3: cover} if cover is not None else {}
    )
    speech = train._int16(analyze_speech(x)[1])
    more = train.with_shifted_windows(data, 3, seed=0)
    assert train.with_shifted_windows(data, 1) is data
    np.testing.assert_array_equal(more.windows[: len(windows)], windows)
    extra = more.windows[len(windows) :]
    assert len(extra) >= 2 * (len(windows) - 1) and set(more.call_of_window.tolist()) == {3}
    starts = set()
    for w in extra:
        heads = np.lib.stride_tricks.sliding_window_view(speech[: len(speech) - len(w) + 64], 64)
        found = [o for o in np.flatnonzero((heads == w[:64]).all(1)) if np.array_equal(speech[o : o + len(w)], w)]
        assert found, "a shifted window is not a cut of the call's speech"
        starts.add(int(found[0]) % sr)
    assert len(starts) >= 2 and starts != {0}  # off the 1 s grid, at more than one phase


def test_one_class_loss_margins():
    """The cosine head's loss: softplus(a (0.9 - cos)) for humans, softplus(a (cos - 0.2)) for robots."""
    from robodetect.config import COSINE_SCALE
    from robodetect.model import RobotNet
    from robodetect.train import OC_HUMAN_MARGIN, OC_ROBOT_MARGIN, head_loss

    torch.manual_seed(0)
    model = RobotNet(ModelConfig(head="cosine")).eval()
    emb = torch.randn(6, model.head_mlp[0].in_features)
    y = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    cos = -model.classify(emb) / COSINE_SCALE
    a = COSINE_SCALE
    expected = torch.where(
        y > 0.5,
        torch.nn.functional.softplus(a * (cos - OC_ROBOT_MARGIN)),
        torch.nn.functional.softplus(a * (OC_HUMAN_MARGIN - cos)),
    ).mean()
    torch.testing.assert_close(head_loss(model, emb, y), expected)
    linear = RobotNet(ModelConfig()).eval()
    torch.testing.assert_close(
        head_loss(linear, emb, y), torch.nn.functional.binary_cross_entropy_with_logits(linear.classify(emb), y)
    )


def test_one_class_head_learns_the_toy_task():
    data = _toy_data()
    model = train_model(data, ModelConfig(head="cosine"), epochs=6, batch_size=8, log=lambda *_: None)
    with torch.no_grad():
        out = model(torch.from_numpy(data.windows.astype(np.float32) / 32768)).numpy()
    robot = data.window_labels() == 1
    assert out[robot].min() > out[~robot].max()  # robots score above every human


def test_merged_datasets_keep_every_window_with_its_own_call():
    """``CallData.merged``: the second set's call ids (and two-party pair ids) move past the first's,
    each window stays with its call, and sets cut with another window hop are refused."""
    import pytest

    a, b = _toy_data(4), _toy_data(6)
    b.calls = [{**c, "pair": c["call_id"] // 3} for c in b.calls]
    m = a.merged(b)
    ids = [c["call_id"] for c in m.calls]
    assert len(ids) == len(set(ids)) == 10
    assert len(m.windows) == len(a.windows) + len(b.windows)
    for c in m.calls:
        own = m.windows[m.call_of_window == c["call_id"]]
        src = a if c in a.calls else b
        old = c["call_id"] - (0 if src is a else 4)
        np.testing.assert_array_equal(own, src.windows[src.call_of_window == old])
    assert [c["pair"] for c in m.calls[4:]] == [c["pair"] + 4 for c in b.calls]
    np.testing.assert_array_equal(m.window_labels(), np.concatenate([a.window_labels(), b.window_labels()]))
    b.hop = a.hop * 2
    with pytest.raises(ValueError):
        a.merged(b)


def test_two_party_plans_name_the_callee_source():
    """A two-party plan records its callee's source, so a human leave-out can drop those calls."""
    from robodetect.train import plan_calls

    rows = []
    for g, lang in (("src-a", "en"), ("src-b", "en"), ("tts", "en")):
        for spk in range(2):
            for u in range(2):
                label = "robot" if g == "tts" else "human"
                ident = f"{g}-{spk}"
                rows.append(
                    {
                        "path": f"{ident}-{u}.flac",
                        "split": "train",
                        "label": label,
                        "lang": lang,
                        "group": g,
                        "engine": g,
                        "speaker": ident,
                        "identity": ident,
                    }
                )
    plans = plan_calls(rows, "train", 6, 0, mode="two-party")
    assert plans and all(p.callee_group in ("src-a", "src-b") for p in plans)
    for p in plans:
        assert all(path.startswith(p.callee_group) for path in p.callee_paths)
    assert all(p.callee_group is None for p in plan_calls(rows, "train", 6, 0))


def test_a_leave_out_drops_calls_whose_callee_is_of_the_group():
    """scripts/train.py's leave-out filter: a human source left out takes with it the two-party
    training calls whose callee it voiced (the callee channel is that source's speech)."""
    import importlib.util

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("train_script", REPO / "scripts" / "train.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    calls = [
        {"group": "librispeech"},
        {"group": "espeak-ng", "callee_group": "librispeech", "view": "callee"},
        {"group": "espeak-ng", "callee_group": "fsdd", "view": "caller"},
        {"group": "fsdd"},
    ]
    assert [script.without_group(c, "librispeech") for c in calls] == [False, False, True, True]
    assert [script.without_group(c, "espeak-ng") for c in calls] == [True, False, False, True]


def test_platt_scaling_converges_on_scores_piled_at_the_cosine_bound():
    """Calibration scores of a one-class leave-out model (session 12): humans at cos ~ 1 (raw -20),
    robots spread towards -1. Plain L-BFGS diverged here (a = -1.7e22); the fit must be the
    logistic-loss minimum: finite, increasing with the robot score, and not beaten by nearby (a, b)."""
    import torch.nn.functional as F

    from robodetect.train import fit_calibration

    case = np.load(Path(__file__).parent / "fixtures" / "platt_divergent.npz")  # 797 calls' scores
    s, y = case["scores"].astype(np.float64), case["labels"].astype(np.float64)
    a, b = fit_calibration(s, y)
    assert np.isfinite(a) and np.isfinite(b) and 0 < a < 10

    def loss(a, b):
        return float(F.binary_cross_entropy_with_logits(torch.tensor(a * s + b), torch.tensor(y)))

    best = loss(a, b)
    for da, db in ((0.01, 0), (-0.01, 0), (0, 0.05), (0, -0.05)):
        assert best <= loss(a + da, b + db) + 1e-9

    def gradient(s, y, a, b):  # of the mean log loss: zero at the minimum
        p = 1.0 / (1.0 + np.exp(-(a * s + b)))
        return np.mean((p - y) * s), np.mean(p - y)

    assert np.abs(gradient(s, y, a, b)).max() < 1e-4
    # well-behaved, overlapping scores: the ordinary logistic-regression minimum as well
    rng = np.random.default_rng(0)
    s2 = np.concatenate([rng.normal(-2, 6, 400), rng.normal(3, 6, 400)])
    y2 = np.repeat([0.0, 1.0], 400)
    a2, b2 = fit_calibration(s2, y2)
    assert a2 > 0 and np.abs(gradient(s2, y2, a2, b2)).max() < 1e-4


def test_evaluate_splits_flags_by_channel_stage():
    """evaluate.channel_stages: humans flagged / robots caught among calls a stage touched and the
    others, so a stage that pushes humans over the threshold shows even when the EER hides it."""
    import importlib.util
    from types import SimpleNamespace

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("evaluate", REPO / "scripts" / "evaluate.py")
    evaluate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(evaluate)
    rows = [{"ns": [-30, 2]}, {"ns": [-20, 1]}, {}, {}, {"ns": [-40, 3]}, {}]
    dev = SimpleNamespace(rows=rows, y=np.array([0, 0, 0, 0, 1, 1]))
    p = np.array([0.99, 0.10, 0.10, 0.20, 0.95, 0.30])
    res: dict = {}
    lines = evaluate.channel_stages(dev, p, 0.9, res)
    st = res["channel_stages"]
    assert st["ns yes"] == {"humans": 2, "robots": 1, "flagged": 0.5, "caught": 1.0}
    assert st["ns no"] == {"humans": 2, "robots": 1, "flagged": 0.0, "caught": 0.0}
    assert "mp3 yes" not in st  # a stage no call went through has no row
    assert any("handset noise suppression | yes | 50.00 % of 2 | 100.00 % of 1" in line for line in lines)


def test_probe_prosody_neutralises_only_the_prosody():
    """scripts/probe_prosody.window_logits: with neutral prosody the logits are those of the model
    fed its training-mean prosody vector; as trained they are the model's own."""
    import sys

    from conftest import REPO

    sys.path.insert(0, str(REPO / "scripts"))
    import probe_prosody

    from robodetect.model import RobotNet

    torch.manual_seed(0)
    model = RobotNet(ModelConfig()).eval()
    model.prosody_std.fill_(0.5)
    model.prosody_mean.copy_(torch.arange(6, dtype=torch.float32))
    rng = np.random.default_rng(0)
    windows = (rng.standard_normal((3, 16000)) * 3000).astype(np.int16)
    data = CallData(windows, np.array([0, 0, 1], np.int32), [{"call_id": 0}, {"call_id": 1}])
    trained, z = probe_prosody.window_logits(model, data)
    neutral, _ = probe_prosody.window_logits(model, data, neutral_prosody=True)
    mel, pros = data.features_for(model)
    with torch.inference_mode():
        own = model.classify(model.embed(mel.float(), pros)).numpy()
        mean = model.classify(model.embed(mel.float(), model.prosody_mean.expand_as(pros))).numpy()
    assert np.allclose(trained, own) and np.allclose(neutral, mean) and not np.allclose(trained, neutral)
    assert z.shape == (3, 6) and np.allclose(z, ((pros - model.prosody_mean) / 0.5).numpy())


def _sourced_data(n_calls: int = 24) -> CallData:
    """Toy calls from four groups (two per class): the second group of each class has a loud
    high-frequency hiss (a recording-chain cue that says the group, not the class) over the class's tone."""
    rng = np.random.default_rng(1)
    calls, windows, owner = [], [], []
    t = np.arange(16000) / 8000
    for cid in range(n_calls):
        robot, g = cid % 2 == 1, (cid // 2) % 2
        group = f"{'robot' if robot else 'human'}-{g}"
        calls.append({"call_id": cid, "label": "robot" if robot else "human", "lang": "en", "group": group})
        tone = np.sin(2 * np.pi * (150 + 100 * robot) * t) * 0.3
        for _ in range(2):
            hiss = rng.normal(0, 0.02 + 0.1 * g, 16000)  # group 1's chain is hissy
            windows.append((tone + np.diff(hiss, prepend=0.0)) * 32767 * 0.5)
            owner.append(cid)
    return CallData(np.array(windows).astype(np.int16), np.array(owner, np.int32), calls)


def test_window_codes_index_sorted_values():
    data = _sourced_data(8)
    codes, names = data.window_codes("group")
    assert names == ["human-0", "human-1", "robot-0", "robot-1"]
    assert codes.tolist() == [0, 0, 2, 2, 1, 1, 3, 3, 0, 0, 2, 2, 1, 1, 3, 3]


def test_source_chance_is_the_largest_group_per_class():
    from robodetect.train import _source_chance

    source = torch.tensor([0, 0, 1, 2, 2, 2, 3])
    y = torch.tensor([0.0, 0, 0, 1, 1, 1, 1])
    # humans: group 0 holds 2/3 of the class; robots: group 2 holds 3/4; each class weighs half
    w = torch.tensor([1 / 3, 1 / 3, 1 / 3, 0.25, 0.25, 0.25, 0.25], dtype=torch.float64)
    assert abs(_source_chance(source, y, w) - (0.5 * 2 / 3 + 0.5 * 3 / 4)) < 1e-9


def test_source_adversary_reaches_the_cnn_only_through_the_chosen_classes():
    """The reversed gradient of the group discriminator changes the CNN (a stronger weight trains
    another network), except where every window is of a class the discriminator does not see;
    its accuracy is logged against chance and the discriminator is not saved."""

    def cnn(data, weight, classes, lines=None):
        model = train_model(
            data,
            ModelConfig(),
            epochs=2,
            batch_size=8,
            source_adversary=weight,
            source_classes=classes,
            log=(lines.append if lines is not None else lambda *_: None),
        )
        assert not model.training and set(model.state_dict()) == set(RobotNetLike(ModelConfig()).state_dict())
        return torch.cat([p.detach().flatten() for p in model.cnn.parameters()])

    data = _sourced_data(16)
    lines = []
    a = cnn(data, 0.5, (0.0, 1.0), lines)
    assert not torch.equal(a, cnn(data, 5.0, (0.0, 1.0)))
    assert not torch.equal(cnn(data, 0.5, (0.0,)), cnn(data, 5.0, (0.0,)))
    epoch_lines = [s for s in lines if "epoch" in s]
    assert len(epoch_lines) == 2 and all("source discriminator" in s and "(chance 50.0%)" in s for s in epoch_lines)
    robots = data.subset(lambda c: c["label"] == "robot")
    # robots only, discriminator on human corpora only: nothing reaches the CNN, whatever the weight
    assert torch.equal(cnn(robots, 0.5, (0.0,)), cnn(robots, 5.0, (0.0,)))
    assert not torch.equal(cnn(robots, 0.5, (1.0,)), cnn(robots, 5.0, (1.0,)))


def test_source_of_a_callee_channel_is_the_callees_corpus():
    from robodetect.train import source_of

    caller = {"call_id": 0, "group": "espeak-ng", "view": "caller", "callee_group": "librispeech"}
    callee = {**caller, "call_id": 1, "view": "callee", "label": "human"}
    one_party = {"call_id": 2, "group": "fsdd"}
    data = CallData(np.zeros((3, 16000), np.int16), np.array([0, 1, 2], np.int32), [caller, callee, one_party])
    codes, names = data.window_codes(source_of)
    assert names == ["espeak-ng", "fsdd", "librispeech"]
    assert codes.tolist() == [0, 2, 1]


def test_source_adversary_says_when_it_has_nothing_to_separate():
    data = _sourced_data(8).subset(lambda c: c["group"] in ("human-0", "robot-0", "robot-1"))
    lines = []
    train_model(
        data, ModelConfig(), epochs=1, batch_size=8, source_adversary=1.0, source_classes=(0.0,), log=lines.append
    )
    assert any("source adversary off" in s for s in lines)
    assert not any("source discriminator" in s for s in lines)


def test_probe_source_reads_a_source_off_features_that_carry_it():
    import sys

    from conftest import REPO

    sys.path.insert(0, str(REPO / "scripts"))
    import probe_source

    gen = torch.Generator().manual_seed(0)
    codes = torch.arange(300) % 3
    fit = torch.arange(300) < 200
    informative = torch.randn(300, 4, generator=gen) + 3.0 * F.one_hot(codes, 4).float()
    noise = torch.randn(300, 4, generator=gen)
    assert probe_accuracy_of(probe_source, informative, codes, fit) > 0.95
    assert probe_accuracy_of(probe_source, noise, codes, fit) < 0.55  # chance is 1/3


def probe_accuracy_of(module, x, codes, fit):
    right = module.probe_accuracy(x, codes, fit)
    assert right.shape == (int((~fit).sum()),)
    return float(right.float().mean())


def test_extra_corpus_rows_are_its_train_robots_checked_against_the_main_splits(tmp_path, monkeypatch):
    """scripts/train.py --extra-corpus: the extra manifest's train-split robots, nothing of the main
    manifests; a copy whose voice identity sits in another split than its human is refused."""
    import csv
    import importlib.util
    import types

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("train_script", REPO / "scripts" / "train.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    human_cols = ["path", "label", "source", "engine", "speaker", "lang", "text", "duration_s", "orig_sr"]
    tts_cols = [*human_cols, "split", "license", "settings"]

    def write(path, cols, rows):
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, cols)
            w.writeheader()
            w.writerows([dict(zip(cols, r)) for r in rows])

    humans = [
        [f"a/{i}.flac", "human", "librispeech", "human", str(s), "en", "t", "3", "16000"]
        for i, s in enumerate((11, 12, 13, 14) * 2)
    ]
    write(tmp_path / "shared" / "manifest.csv", human_cols, humans)
    monkeypatch.setattr(script, "SHARED_MANIFEST", tmp_path / "shared" / "manifest.csv")
    main_tts = [["x.flac", "robot", "tts-flite", "flite", "flite:slt", "en", "t", "2", "16000", "train", "l", "{}"]]
    write(tmp_path / "corpus" / "tts_manifest.csv", tts_cols, main_tts)
    rows = script.read_manifests([script.SHARED_MANIFEST, tmp_path / "corpus" / "tts_manifest.csv"])
    split = {r["identity"]: r["split"] for r in rows}
    train_speaker = next(i for i, s in split.items() if s == "train" and i.startswith("librispeech:"))
    copy = ["c.flac", "robot", "tts-vocoder-hifigan-tts", "vocoder-hifigan-tts", train_speaker, "en", "t", "2", "8000"]
    dev_robot = ["d.flac", "robot", "tts-flite", "flite", "flite:rms", "en", "t", "2", "16000", "dev", "l", "{}"]
    write(tmp_path / "extra" / "tts_manifest.csv", tts_cols, [[*copy, "train", "l", "{}"], dev_robot])
    args = types.SimpleNamespace(corpus=str(tmp_path / "corpus"), extra_corpus=[str(tmp_path / "extra")])
    extra = script.extra_rows(args, rows)
    assert [r["path"] for r in extra] == [str((tmp_path / "extra" / "c.flac").resolve())]
    assert extra[0]["group"] == "neural-vocoder" and extra[0]["identity"] == train_speaker
    other = next(i for i, s in split.items() if s != "train" and i.startswith("librispeech:"))
    bad = [*copy[:4], other, *copy[5:], "train", "l", "{}"]
    write(tmp_path / "extra" / "tts_manifest.csv", tts_cols, [bad])
    with pytest.raises(ValueError, match="splits"):
        script.extra_rows(args, rows)


def test_sam_perturb_moves_by_rho_along_the_gradient_and_restores_exactly():
    from robodetect.train import sam_perturb

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 1))
    x = torch.randn(16, 4)
    model(x).pow(2).mean().backward()
    before = [p.detach().clone() for p in model.parameters()]
    grads = [p.grad.clone() for p in model.parameters()]
    stats = model[1].running_mean.clone()
    gnorm = torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads]))
    with sam_perturb(model, 0.05):
        step = torch.cat([(p.detach() - w).flatten() for p, w in zip(model.parameters(), before)])
        torch.testing.assert_close(torch.linalg.vector_norm(step), torch.tensor(0.05))
        torch.testing.assert_close(step, torch.cat([g.flatten() for g in grads]) * 0.05 / gnorm)
        model(x)  # a training-mode pass inside: the batch-norm statistics must not move
        torch.testing.assert_close(model[1].running_mean, stats)
    for p, w in zip(model.parameters(), before):
        assert torch.equal(p.detach(), w)  # bit-exact, not a subtraction's rounding
    assert model[1].momentum == 0.1  # unfrozen again
    assert int(model[1].num_batches_tracked) == 1  # the pass inside was not counted
    model(x)
    assert not torch.equal(model[1].running_mean, stats)


def test_sam_training_runs_and_takes_other_steps_than_plain_training():
    data = _toy_data()
    quiet = dict(epochs=2, batch_size=8, log=lambda *_: None)
    plain = train_model(data, ModelConfig(), **quiet)
    sam = train_model(data, ModelConfig(), sam_rho=0.05, **quiet)
    again = train_model(data, ModelConfig(), sam_rho=0.05, **quiet)
    sd_plain, sd_sam, sd_again = plain.state_dict(), sam.state_dict(), again.state_dict()
    assert any(not torch.equal(sd_plain[k], sd_sam[k]) for k in sd_plain)
    assert all(torch.equal(sd_sam[k], sd_again[k]) for k in sd_sam)  # deterministic
    with pytest.raises(ValueError, match="sam_rho"):
        train_model(data, ModelConfig(), sam_rho=0.05, consistency=1.0, **quiet)


def test_sam_gradients_are_the_losss_gradients_at_the_perturbed_weights():
    from robodetect.train import sam_gradients, sam_perturb

    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    x, y = torch.randn(32, 5), torch.randn(32, 1)

    def loss_fn():
        return F.mse_loss(model(x), y)

    loss_fn().backward()
    g = [p.grad.clone() for p in model.parameters()]
    w = [p.detach().clone() for p in model.parameters()]
    norm = torch.linalg.vector_norm(torch.cat([t.flatten() for t in g]))
    # independently: a copy of the model at w + rho * g / |g|, and its gradients there
    moved = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    with torch.no_grad():
        for q, wi, gi in zip(moved.parameters(), w, g):
            q.copy_(wi + 0.1 * gi / norm)
    F.mse_loss(moved(x), y).backward()
    sam_gradients(model, loss_fn, 0.1)
    for p, q, wi, gi in zip(model.parameters(), moved.parameters(), w, g):
        torch.testing.assert_close(p.grad, q.grad)  # replaced, not added to the first gradient
        assert not torch.allclose(p.grad, gi)
        assert torch.equal(p.detach(), wi)  # the optimiser steps from the original weights
    model.zero_grad()
    with sam_perturb(model, 0.1):  # no gradients at all: nothing moves, nothing fails
        assert all(torch.equal(p.detach(), wi) for p, wi in zip(model.parameters(), w))


def test_distill_loss_is_the_labels_loss_blended_with_the_teachers_soft_labels():
    from robodetect.train import distill_loss

    torch.manual_seed(0)
    teacher = RobotNetLike(ModelConfig()).eval()
    mel, pros = torch.randn(6, 64, 99), torch.randn(6, 6)
    y = torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0, 0.0])
    with torch.no_grad():
        t = teacher.head(mel, pros)
    raw = torch.randn(6, requires_grad=True)
    labels = F.binary_cross_entropy_with_logits(raw, y)
    torch.testing.assert_close(distill_loss(raw, teacher, mel, pros, y, 0.0, 2.0), labels)
    soft = -(torch.sigmoid(t / 3) * F.logsigmoid(raw / 3) + torch.sigmoid(-t / 3) * F.logsigmoid(-raw / 3)).mean() * 9
    torch.testing.assert_close(distill_loss(raw, teacher, mel, pros, y, 0.25, 3.0), 0.75 * labels + 0.25 * soft)
    # the soft term alone is minimal where the student says what the teacher says
    at_teacher = t.clone().requires_grad_(True)
    distill_loss(at_teacher, teacher, mel, pros, y, 1.0, 2.0).backward()
    assert at_teacher.grad.abs().max() < 1e-6
    assert not any(p.grad is not None for p in teacher.parameters())  # the teacher is not trained


def test_a_distilled_student_follows_its_teacher_not_the_labels():
    data = _toy_data()
    wav = torch.from_numpy(data.windows.astype(np.float32) / 32768)
    robot = torch.from_numpy(data.window_labels()) > 0.5
    quiet = dict(batch_size=8, log=lambda *_: None)

    def margin(model):  # robots' mean logit minus humans'
        with torch.no_grad():
            out = model(wav)
        return float(out[robot].mean() - out[~robot].mean())

    teacher = train_model(data, ModelConfig(), epochs=12, **quiet)
    with torch.no_grad():  # a teacher that has it backwards: its logits negated
        teacher.head_mlp[-1].weight.neg_()
        teacher.head_mlp[-1].bias.neg_()
    assert margin(teacher) < 0
    student = train_model(data, ModelConfig(), epochs=12, teacher=teacher, distill=1.0, **quiet)
    plain = train_model(data, ModelConfig(), epochs=12, **quiet)
    assert margin(plain) > 0 > margin(student)
    assert not teacher.training
    for bad, match in (
        (dict(teacher=None, distill=0.5), "teacher"),
        (dict(teacher=teacher, distill=0.5, sam_rho=0.05), "SAM"),
        (dict(teacher=teacher, distill=2.0), r"\(0, 1\]"),
    ):
        with pytest.raises(ValueError, match=match):
            train_model(data, ModelConfig(), epochs=1, **bad, **quiet)
    with pytest.raises(ValueError, match="linear head"):
        train_model(data, ModelConfig(head="cosine"), epochs=1, teacher=teacher, distill=0.5, **quiet)


def test_freq_mixstyle_keeps_each_bands_shape_and_mixes_band_statistics_with_one_other_window():
    from robodetect.train import freq_mixstyle

    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 8, 50, generator=g)
    z = (z - z.mean(-1, keepdim=True)) / z.std(-1, keepdim=True)  # unit shapes per band
    mu = torch.stack([torch.linspace(0, 1, 8), torch.linspace(5, 2, 8)])[..., None]
    sig = torch.stack([torch.linspace(1, 2, 8), torch.linspace(3, 0.5, 8)])[..., None]
    mel = (z * sig + mu).requires_grad_(True)
    mixed_any = False
    for seed in range(6):
        out = freq_mixstyle(mel, torch.Generator().manual_seed(seed)).detach()
        o_mu, o_sig = out.mean(-1, keepdim=True), out.std(-1, keepdim=True)
        torch.testing.assert_close((out - o_mu) / o_sig, z, atol=1e-4, rtol=0)  # the dynamics stay
        for i in range(2):
            # one weight lam and one partner j for every band, for means and spreads alike
            fits = []
            for j in range(2):
                if j == i:
                    fits.append(
                        torch.allclose(o_mu[i], mu[i], atol=1e-4) and torch.allclose(o_sig[i], sig[i], atol=1e-3)
                    )
                    continue
                lam = (o_mu[i] - mu[j]) / (mu[i] - mu[j])
                ok = torch.allclose(lam, lam[0].expand_as(lam), atol=1e-3) and -1e-4 <= float(lam[0]) <= 1 + 1e-4
                ok = ok and torch.allclose(o_sig[i], lam * sig[i] + (1 - lam) * sig[j], atol=1e-3)
                fits.append(ok)
                mixed_any |= ok and 0.01 < float(lam[0]) < 0.99
            assert any(fits), (seed, i)
    assert mixed_any
    # the statistics carry no gradient: d out / d mel = the mixed spread over the window's own
    out = freq_mixstyle(mel, torch.Generator().manual_seed(1))
    out.sum().backward()
    ratio = out.detach().std(-1, keepdim=True) / mel.detach().std(-1, keepdim=True)
    torch.testing.assert_close(mel.grad, ratio.expand_as(mel.grad), atol=1e-3, rtol=1e-3)
    alone = torch.randn(1, 8, 50)
    torch.testing.assert_close(freq_mixstyle(alone, torch.Generator().manual_seed(0)), alone, atol=1e-5, rtol=1e-5)


def test_freq_mixstyle_training_is_seeded_and_changes_the_model(monkeypatch):
    import robodetect.train as rt

    data = _toy_data()
    quiet = dict(epochs=2, batch_size=8, log=lambda *_: None)
    a = train_model(data, ModelConfig(), freq_mixstyle_p=1.0, **quiet).state_dict()
    b = train_model(data, ModelConfig(), freq_mixstyle_p=1.0, **quiet).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    real = rt.freq_mixstyle

    def draws_only(mel, gen):  # the same generator draws, the input unchanged
        real(mel, gen)
        return mel

    monkeypatch.setattr(rt, "freq_mixstyle", draws_only)
    same_draws = train_model(data, ModelConfig(), freq_mixstyle_p=1.0, **quiet).state_dict()
    assert any(not torch.equal(a[k], same_draws[k]) for k in a)  # the mixing itself, not the draws
