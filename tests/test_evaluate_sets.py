"""scripts/evaluate.py measures a model on the dev calls of its own training seed and channel recipe
(the cache key train.py builds them under), not on whichever dev set was simulated last."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))

import evaluate  # noqa: E402
import train  # noqa: E402

from robodetect.model import ModelConfig, RobotNet, save_model  # noqa: E402
from robodetect.vad import VadConfig  # noqa: E402

HEADER = "path,label,source,engine,speaker,lang,text,duration_s,orig_sr,split,license,settings\n"


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    manifest = tmp_path / "tts_manifest.csv"
    manifest.write_text(
        HEADER
        + "a.flac,robot,tts-espeak-ng,espeak-ng,en-us,en,hello,1.0,8000,dev,GPL,{}\n"
        + "b.flac,robot,tts-espeak-ng,espeak-ng,en-gb,en,bye,1.0,8000,dev,GPL,{}\n"
    )
    monkeypatch.setattr(train, "manifests", lambda args: [manifest])
    return tmp_path


def _model(recipe: dict, seed: int = 0, vad: VadConfig | None = None):
    config = ModelConfig(vad=vad or VadConfig(), metrics={"seed": seed, "recipe": recipe})
    return SimpleNamespace(config=config)


def _train_path(corpus, name: str, *flags: str):
    args = train.parse_args(["--calls-dir", str(corpus), *flags])
    return train.dataset_path(args, train.read_manifests(train.manifests(args)), name)[0]


def test_the_dev_sets_of_the_models_seed_and_channel_recipe(corpus):
    recipe = {"resample_augment": 0.5, "mp3_augment": 0.3, "rawboost": 0.5}
    got = evaluate.planned(_model(recipe), corpus, seed=0)
    for name in ("dev", "dev_clips", "dev_2party"):
        want = _train_path(corpus, name, "--vad", "new", "--resample-augment", "0.5", "--mp3-augment", "0.3")
        assert got[name] == want
    other_seed = evaluate.planned(_model(recipe), corpus, seed=1)
    assert other_seed["dev"] != got["dev"]
    no_mp3 = evaluate.planned(_model({"resample_augment": 0.5}), corpus, seed=0)
    assert no_mp3["dev"] != got["dev"]


def test_a_legacy_vad_model_gets_the_legacy_cut_and_a_foreign_vad_none(corpus):
    legacy = train.vad_of(train.parse_args(["--vad", "legacy"]))
    got = evaluate.planned(_model({}, vad=legacy), corpus, seed=0)
    assert got["dev"] == _train_path(corpus, "dev", "--vad", "legacy")
    odd = VadConfig(aggressiveness=0)
    assert evaluate.planned(_model({}, vad=odd), corpus, seed=0) is None


def test_eval_sets_prefers_the_seeds_calls_over_a_newer_set(corpus):
    model = _model({"resample_augment": 0.5, "mp3_augment": 0.3})
    own = evaluate.planned(model, corpus, seed=0)["dev"]
    newer = corpus / "dev-ffffffffff.npz"  # another seed's dev set, simulated later
    vad = np.array(json.dumps(asdict(VadConfig())))
    for path, mtime in ((own, 1_000_000), (newer, 2_000_000)):
        np.savez(path, vad=vad)
        os.utime(path, (mtime, mtime))
    path, note = evaluate.eval_sets(model, corpus, 0, ("dev",))["dev"]
    assert path == own and "seed 0" in note
    path, note = evaluate.eval_sets(model, corpus, 1, ("dev",))["dev"]
    assert path == newer and "newest" in note  # no seed-1 set: the newest with the model's VAD, said so


def test_eval_sets_defaults_to_the_models_training_seed(corpus):
    model = _model({"resample_augment": 0.5}, seed=2)
    seed2 = evaluate.planned(model, corpus, seed=2)["dev"]
    np.savez(seed2, vad=np.array(json.dumps(asdict(VadConfig()))))
    path, note = evaluate.eval_sets(model, corpus, None, ("dev",))["dev"]
    assert path == seed2 and "seed 2" in note


def test_the_agc_stage_changes_only_the_training_sets_keys(corpus):
    """--agc-augment is a training-only stage: cal, dev and two-party dev stay the calls other models
    are measured on; while off (or with its gate unset) no key changes, so old datasets are reused."""
    agc = ("--agc-augment", "0.3")
    for name in ("cal", "dev", "dev_2party"):
        assert _train_path(corpus, name, *agc) == _train_path(corpus, name)
        assert _train_path(corpus, name, *agc, "--agc-noise-gate", "6") == _train_path(corpus, name)
    assert _train_path(corpus, "train", *agc) != _train_path(corpus, "train")
    gated = _train_path(corpus, "train", *agc, "--agc-noise-gate", "6")
    assert gated not in (_train_path(corpus, "train", *agc), _train_path(corpus, "train"))
    assert _train_path(corpus, "train", "--agc-augment", "0") == _train_path(corpus, "train")
    assert _train_path(corpus, "train", "--agc-noise-gate", "6") == _train_path(corpus, "train")
    model = _model({"agc_augment": 0.3, "agc_noise_gate": 6.0})
    assert evaluate.planned(model, corpus, seed=0)["dev"] == evaluate.planned(_model({}), corpus, seed=0)["dev"]
    pause = ("--pause-noise-augment", "0.3")  # the same contract for the pause-noise stage
    for name in ("cal", "dev", "dev_2party"):
        assert _train_path(corpus, name, *pause) == _train_path(corpus, name)
    assert _train_path(corpus, "train", *pause) not in (
        _train_path(corpus, "train"),
        _train_path(corpus, "train", *agc),
    )
    assert _train_path(corpus, "train", "--pause-noise-augment", "0") == _train_path(corpus, "train")
    room = ("--room-augment", "0.3")  # and for the room stage
    for name in ("cal", "dev", "dev_2party"):
        assert _train_path(corpus, name, *room) == _train_path(corpus, name)
    assert _train_path(corpus, "train", *room) not in (
        _train_path(corpus, "train"),
        _train_path(corpus, "train", *agc),
        _train_path(corpus, "train", *pause),
    )
    assert _train_path(corpus, "train", "--room-augment", "0") == _train_path(corpus, "train")
    model = _model({"room_augment": 0.3})  # evaluate.py finds the plain dev calls for such a model
    assert evaluate.planned(model, corpus, seed=0)["dev"] == evaluate.planned(_model({}), corpus, seed=0)["dev"]
    with pytest.raises(SystemExit):
        train.parse_args(["--room-augment", "1.5"])


def test_sam_is_refused_with_the_other_loss_terms_and_below_zero():
    with pytest.raises(SystemExit):
        train.parse_args(["--sam", "-0.1"])
    with pytest.raises(SystemExit):
        train.parse_args(["--sam", "0.05", "--consistency", "0.5"])
    assert train.parse_args(["--sam", "0.05"]).sam == 0.05


def test_distillation_flags_need_their_teachers():
    for bad in (
        ["--distill", "0.5"],  # the main model without --teacher
        ["--distill", "1.5", "--teacher", "t"],
        ["--distill", "0.5", "--teacher", "t", "--sam", "0.05"],
        ["--distill", "0.5", "--no-main", "--loo"],  # leave-outs without their own teachers
        ["--distill", "0.5", "--teacher", "t", "--loo"],  # the main teacher heard every family
        ["--distill", "0.5", "--teacher", "t", "--loo-teachers", "d", "--ablations"],
    ):
        with pytest.raises(SystemExit):
            train.parse_args(bad)
    args = train.parse_args(["--distill", "0.5", "--no-main", "--loo", "--loo-teachers", "d"])
    assert (args.distill, args.loo_teachers) == (0.5, "d")
    assert train.parse_args(["--teacher", "t"]).distill == 0.0  # a teacher alone changes nothing


def test_a_teacher_that_cannot_serve_stops_the_run_with_its_reason(tmp_path):
    args = train.parse_args(["--distill", "0.5", "--teacher", str(tmp_path / "missing")])
    with pytest.raises(SystemExit, match="missing"):
        train.distillation(args, train.model_config(args), args.teacher)
    other = train.parse_args(["--stft-hop", "160"])  # a teacher on another front end (default hop 80)
    save_model(RobotNet(train.model_config(other)), tmp_path / "hop80")
    with pytest.raises(SystemExit, match="front end"):
        train.distillation(args, train.model_config(args), str(tmp_path / "hop80"))
    mel = train.parse_args(["--filterbank", "mel"])  # the same STFT, other bands
    save_model(RobotNet(train.model_config(mel)), tmp_path / "mel")
    with pytest.raises(SystemExit, match="front end"):
        train.distillation(args, train.model_config(args), str(tmp_path / "mel"))
    with pytest.raises(SystemExit, match="no teacher"):  # never falls back to the shipped default
        train.distillation(args, train.model_config(args), None)
    save_model(RobotNet(train.model_config(args, channels=(8, 8, 8, 8))), tmp_path / "narrow")
    got = train.distillation(args, train.model_config(args), str(tmp_path / "narrow"))
    assert got["distill"] == 0.5 and got["teacher"].config.channels == (8, 8, 8, 8)
    assert train.distillation(train.parse_args([]), train.model_config(args), None) == {}


def test_freq_mixstyle_is_a_share():
    with pytest.raises(SystemExit):
        train.parse_args(["--freq-mixstyle", "1.5"])
    assert train.parse_args(["--freq-mixstyle", "0.4"]).freq_mixstyle == 0.4


def test_every_leave_outs_teacher_must_be_that_groups_leave_out_model(tmp_path):
    loo = ["--distill", "0.5", "--no-main", "--loo", "--loo-teachers", str(tmp_path)]
    args = train.parse_args(loo)
    assert train.loo_distillation(train.parse_args([]), "vits") == {}  # no --distill: no teacher
    with pytest.raises(SystemExit, match="loo-vits"):  # missing
        train.loo_distillation(args, "vits")
    save_model(RobotNet(train.model_config(args, version="loo-zs-tts")), tmp_path / "loo-vits")
    with pytest.raises(SystemExit, match="not the leave-out model of vits"):  # another fold's model
        train.loo_distillation(args, "vits")
    save_model(RobotNet(train.model_config(args, version="loo-vits")), tmp_path / "loo-vits")
    got = train.loo_distillation(args, "vits")
    assert got["distill"] == 0.5 and got["teacher"].config.version == "loo-vits"


def test_band_norm_is_refused_with_augmentations_that_re_add_band_means():
    for extra in (["--eq-augment"], ["--freq-mixstyle", "0.3"]):
        with pytest.raises(SystemExit):
            train.parse_args(["--band-norm", *extra])
    assert train.parse_args(["--band-norm"]).band_norm is True
