"""Train the shipped robodetect model (and, optionally, the leave-one-out and ablation models).

    python scripts/build_corpus.py --out data/corpus          # robot speech from the project's engines
    python scripts/train.py                                   # simulated calls -> train -> calibrate
    python scripts/train.py --loo --loo-humans --no-main      # the model card's generalisation tables

Splits (robodetect.protocol): train fits the weights, cal fits Platt scaling, the threshold and
the uncertain band, dev is only reported (scripts/evaluate.py). Simulated-call datasets are cached
in data/calls/<name>-<key>.npz, the key a hash of the manifest rows, the plan and the simulator
settings; every step is seeded. Leave-one-family-out models are trained (and calibrated) without
one robot family (or human source) and scored on all of that group's calls against the dev calls
of the other class.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict
from datetime import date
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from robodetect.config import HEADS, POOLS, TIME_POOLS  # noqa: E402
from robodetect.features import FINE_F_MAX, HOP_LENGTH, FrontEndConfig  # noqa: E402
from robodetect.metrics import eer  # noqa: E402
from robodetect.model import ModelConfig, ModelError, RobotNet, count_parameters, resolve_model, save_model  # noqa: E402
from robodetect.rawboost import RawBoostConfig  # noqa: E402
from robodetect.simulate import SimConfig  # noqa: E402
from robodetect.train import (  # noqa: E402
    CONSISTENCY_TARGETS,
    DATASET_FORMAT,
    PLAN_VERSION,
    SHORT_CALL_SHARE,
    CallData,
    build_dataset,
    calibrate,
    call_scores,
    distill_unsupported,
    human_ranges,
    plan_calls,
    read_manifests,
    score_table,
    train_model,
)
from robodetect.vad import VadConfig  # noqa: E402

FAMILY_GROUPS = ("festvox", "vits", "espeak-ng", "zs-tts", "kokoro", "neural-vocoder", "dsp-vocoder")

SHARED_MANIFEST = REPO.parent / "shared" / "corpora" / "manifest.csv"
#: simulated datasets: name -> (split, plan mode, seed offset); calls per label from the command line
DATASETS = {
    "train": ("train", "call", 0),
    "cal": ("cal", "call", 1),
    "dev": ("dev", "call", 2),
    "dev_clips": ("dev", "clip", 3),
    "dev_2party": ("dev", "two-party", 4),
    "cal_2party": ("cal", "two-party", 5),  # to choose a two-party call rule without looking at dev
    "train_2party": ("train", "two-party", 6),  # --train-2party: caller and callee channels to train on
    "train_extra": ("train", "call", 7),  # --extra-corpus: its robot calls join the training calls
}
#: the views of a training two-party call that join the training calls (the mono mix holds both
#: parties under the caller's label: a human callee's windows labelled robot)
TRAIN_2PARTY_VIEWS = ("caller", "callee")


def vad_of(args) -> VadConfig:
    """The VAD the datasets are cut with and the model is trained with (--vad)."""
    return VadConfig() if args.vad == "new" else VadConfig.legacy()


def dataset(args, rows: list[dict], name: str) -> CallData:
    """The simulated dataset ``name``, cached in --calls-dir under a key of everything that
    makes it (manifest rows, plan, simulator settings): a changed recipe never reuses old calls."""
    path, sim, n, short = dataset_path(args, rows, name)
    split, mode, offset = DATASETS[name]
    if not path.exists() or args.rebuild:
        plans = plan_calls(rows, split, n, args.seed + offset, mode=mode, short_share=short)
        print(f"building {name}: {len(plans)} {mode} plans -> {path.name}", flush=True)
        build_dataset(plans, path, workers=args.workers, sim=sim, vad=vad_of(args))
    return CallData.load(path)


def dataset_path(args, rows: list[dict], name: str) -> tuple[Path, SimConfig, int, float]:
    """Where :func:`dataset` caches ``name`` for these arguments (the key: manifest rows, calls,
    seed, plan, simulator and VAD settings), with the simulator settings, the number of calls and
    the short-call share it is built with."""
    split, mode, offset = DATASETS[name]
    n = {"train_2party": args.train_2party, "train_extra": args.extra_calls}.get(
        name, args.train_calls if split == "train" else args.eval_calls
    )
    # the resampler augmentation is a channel property (real calls pass through many resamplers):
    # every split gets it; speed perturbation makes new voices, so only the training split; the AGC
    # and the room (channel properties too) only in training, so that cal/dev stay the calls every
    # earlier model was measured on and the shortcut checks' AGC and room rows measure what they changed
    sim = SimConfig(
        p_resample=args.resample_augment,
        p_speed=args.speed_perturb if split == "train" else 0.0,
        p_mp3=args.mp3_augment,
        p_room=args.room_augment if split == "train" else 0.0,
        p_ns=args.ns_augment,
        p_agc=args.agc_augment if split == "train" else 0.0,
        agc_noise_gate_db=args.agc_noise_gate,
        p_pause_noise=args.pause_noise_augment if split == "train" else 0.0,
        pause_noise_from=args.pause_noise_from,
        join_below_seconds=args.join_short if split == "train" else 0.0,
        p_pieces=args.piece_augment if split == "train" else 0.0,
    )
    # settings added after a dataset was built stay out of its key while off (no needless rebuild)
    off = {"p_mp3"} if sim.p_mp3 == 0.0 else set()
    off |= {"p_room", "room_rt60_seconds", "room_drr_db"} if sim.p_room == 0.0 else set()
    off |= {"p_ns", "ns_floor_db", "ns_over"} if sim.p_ns == 0.0 else set()
    off |= {"p_agc", "agc_ratio", "agc_window_seconds", "agc_noise_gate_db"} if sim.p_agc == 0.0 else set()
    off |= {"agc_noise_gate_db"} if sim.agc_noise_gate_db is None else set()
    off |= {"p_pause_noise", "pause_noise_db", "pause_noise_from"} if sim.p_pause_noise == 0.0 else set()
    off |= {"pause_noise_from"} if sim.pause_noise_from == "signal" else set()
    join, pieces = {"join_below_seconds", "join_gap_median_seconds", "phrase_seconds"}, {"p_pieces", "piece_seconds"}
    off |= join if sim.join_below_seconds == 0 or mode == "two-party" else set()  # simulate_two_party has neither
    off |= pieces if sim.p_pieces == 0.0 or mode == "two-party" else set()
    settings = {k: v for k, v in sim.__dict__.items() if k not in off}
    short = args.train_short_share if split == "train" else SHORT_CALL_SHARE
    if short != SHORT_CALL_SHARE:
        settings["short_share"] = short
    key = json.dumps(
        [
            name,
            n,
            args.seed,
            PLAN_VERSION,
            DATASET_FORMAT,
            settings,
            asdict(vad_of(args)),
            sorted((r["path"], r["split"], r["label"]) for r in rows),
        ],
        default=str,
    )
    return Path(args.calls_dir) / f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:10]}.npz", sim, n, short


def manifests(args) -> list[Path]:
    """The manifests the train/cal/dev calls are planned from: the shared corpus and --corpus."""
    return [SHARED_MANIFEST, Path(args.corpus) / "tts_manifest.csv"]


def extra_rows(args, rows: list[dict]) -> list[dict]:
    """The train-split robot rows of --extra-corpus (voice identities checked against ``rows``'
    splits, the rows of :func:`manifests`: a copy of a human train speaker must stay in train)."""
    both = read_manifests(manifests(args) + [Path(d) / "tts_manifest.csv" for d in args.extra_corpus])
    extra = [r for r in both[len(rows) :] if r["label"] == "robot" and r["split"] == "train"]
    if not extra:
        raise SystemExit(f"--extra-corpus {' '.join(args.extra_corpus)}: no train-split robot rows")
    return extra


def without_group(c: dict, group: str) -> bool:
    """A call a model trained without ``group`` may see: not of the group, and (two-party) no
    callee from it either."""
    return c["group"] != group and c.get("callee_group") != group


def held_out_sets(data: list[CallData], dev: CallData, group: str) -> tuple[str, list[CallData]]:
    """The label of ``group`` and the call sets its leave-out is scored on: the group's one-party
    calls of every split in ``data``, then the dev calls of the other class (last)."""
    label = next(c["label"] for d in data for c in d.calls if c["group"] == group and c.get("view") is None)
    held = [d.subset(lambda c: c["group"] == group and c.get("view") is None) for d in data]
    return label, held + [dev.subset(lambda c: c["label"] != label and c.get("view") is None)]


def held_out_rates(
    scores: list[dict[int, float]], sets: list[CallData], label: str
) -> tuple[dict, np.ndarray, np.ndarray, list[dict]]:
    """EER (and Mandarin-only EER) of per-call scores of :func:`held_out_sets`' sets, one dict per
    set; returns the row, the scores and the labels in one array each, and the calls in that order."""
    s, y, rows = [], [], []
    for d, calls in zip(sets, scores):
        part, labels, r = score_table(calls, d)
        s.append(part)
        y.append(labels)
        rows += r
    s, y = np.concatenate(s), np.concatenate(y)
    out = {"eer": eer(s, y)[0], "held_out_calls": int(sum(len(d.calls) for d in sets[:-1]))}
    zh = np.array([r["lang"] == "zh" for r in rows])
    if len(set(y[zh])) == 2:
        out["eer_zh"] = eer(s[zh], y[zh])[0]
        out["held_out_zh_calls"] = int((zh & (y == (label == "robot"))).sum())
    return out, s, y, rows


def held_out_eer(model, data: list[CallData], dev: CallData, group: str) -> tuple[dict, dict]:
    """A model trained without ``group``: all of that group's one-party calls (every split)
    against the dev calls of the other class; also its Mandarin-only EER and, at the model's own
    threshold (fitted on calibration calls without the group), how many of them it flags.
    Returns the row and the per-call raw scores (``score``, ``label``, ``group``, ``lang``)."""
    label, sets = held_out_sets(data, dev, group)
    out, s, y, rows = held_out_rates([call_scores(model, d)[0] for d in sets], sets, label)
    p = model.config.probability(s)
    flagged = p[y == (label == "robot")] >= model.config.threshold
    out["flagged_at_threshold"] = float(flagged.mean())
    calls = {"score": s, "label": y, "group": [r["group"] for r in rows], "lang": [r["lang"] for r in rows]}
    return out, calls


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=str(REPO / "data" / "corpus"))
    ap.add_argument("--calls-dir", default=str(REPO / "data" / "calls"))
    # defaults = the recipe of the shipped robodetect-v3 (README; its cal/dev sets now hold plan 4's
    # short calls, so a rerun is statistically, not bit-, identical); the model card gives the flags
    # of the v4 and v5 experiments
    ap.add_argument("--out", default=str(REPO / "robodetect" / "models" / "robodetect-v3"))
    ap.add_argument("--version", default="robodetect-v3")
    ap.add_argument("--train-calls", type=int, default=2000, help="simulated train calls per label")
    ap.add_argument("--eval-calls", type=int, default=400, help="simulated cal and dev calls per label")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rebuild", action="store_true", help="re-simulate the call datasets")
    ap.add_argument("--no-main", action="store_true", help="skip training the shipped model")
    ap.add_argument("--loo", action="store_true", help="leave-one-family-out models (robot families)")
    ap.add_argument("--loo-humans", action="store_true", help="also leave each human source out")
    ap.add_argument("--ablations", action="store_true", help="spectral-only and prosody-only models")
    ap.add_argument("--loo-epochs", type=int, default=None, help="default: --epochs (the full recipe)")
    ap.add_argument("--loo-groups", nargs="+", default=None, help="only these groups in --loo")
    ap.add_argument(
        "--extra-corpus",
        nargs="+",
        default=[],
        metavar="DIR",
        help="generated corpora (DIR/tts_manifest.csv, e.g. build_corpus.py --engines vocoder-hifigan-tts "
        "--out DIR) whose train-split robots join the training calls as a dataset of their own: train, "
        "cal, dev and every leave-out's held-out calls stay the calls they were without it",
    )
    ap.add_argument("--extra-calls", type=int, default=250, help="simulated robot calls from --extra-corpus")
    ap.add_argument(
        "--train-2party",
        type=int,
        default=0,
        help="two-party train calls per label whose caller and callee channels join the training calls (0: none)",
    )
    ap.add_argument("--eq-augment", action="store_true", help="random spectral-tilt/EQ augmentation")
    ap.add_argument("--lang-adversary", type=float, default=0.0, help="language-adversarial weight (0: off)")
    ap.add_argument(
        "--source-adversary",
        type=float,
        default=0.0,
        help="source-adversarial weight: the CNN is pushed to forget which human corpus / robot family a call is from (0: off)",
    )
    ap.add_argument(
        "--source-classes",
        choices=("human", "both"),
        default="both",
        help="whose groups the source discriminator tells apart: human corpora only, or robot families too",
    )
    ap.add_argument(
        "--rawboost",
        type=float,
        default=0.0,
        help="share of training windows (both classes) through RawBoost convolutive + additive noise (0: off)",
    )
    ap.add_argument(
        "--rawboost-filter",
        choices=("stop", "pass"),
        default="stop",
        help="RawBoost's band filters: stop = RawBoost's notch cascades; pass = session 15's measured (buggy) band-pass variant",
    )
    ap.add_argument(
        "--consistency",
        type=float,
        default=0.0,
        help="weight of the squared logit gap between a window and its channel view (noise, MP3 or "
        "noise suppression; 0: off)",
    )
    ap.add_argument("--consistency-p", type=float, default=0.3, help="share of training windows given a channel view")
    ap.add_argument(
        "--sam",
        type=float,
        default=0.0,
        help="sharpness-aware minimisation with this radius rho (0: off; 0.05 is Foret et al.'s default); "
        "twice the training time",
    )
    ap.add_argument(
        "--consistency-target",
        choices=CONSISTENCY_TARGETS,
        default="both",
        help="the logit gap's gradient reaches both views, or only the channel view (the window's own "
        "logit a fixed target), or the same in probabilities (clean-prob: bounded)",
    )
    ap.add_argument("--filterbank", choices=("mel", "linear"), default="linear", help="spectral band spacing")
    ap.add_argument("--no-prosody", action="store_true", help="spectral CNN only (no prosody features)")
    ap.add_argument("--speed-perturb", type=float, default=0.0, help="share of train calls sped up/slowed by 0.9-1.1x")
    ap.add_argument("--loo-windows", type=int, default=None, help="windows per epoch for loo/ablation (default: all)")
    ap.add_argument(
        "--resample-augment", type=float, default=0.5, help="share of call legs through a random resampler round trip"
    )
    ap.add_argument(
        "--mp3-augment",
        type=float,
        default=0.0,
        help="share of call legs through an MP3 round trip (both classes, every split: a channel property)",
    )
    ap.add_argument(
        "--ns-augment",
        type=float,
        default=0.0,
        help="share of call legs through a handset noise suppressor (both classes, every split: a channel property)",
    )
    ap.add_argument(
        "--agc-augment",
        type=float,
        default=0.0,
        help="share of training call legs through an automatic gain control (both classes; training "
        "only, so cal/dev stay the calls other models are measured on; the shortcut checks' AGC row "
        "measures it)",
    )
    ap.add_argument(
        "--room-augment",
        type=float,
        default=0.0,
        help="share of training call legs heard through a synthetic room (RT60 0.15-1 s, both classes; "
        "training only, as --agc-augment; the shortcut checks' room row measures it)",
    )
    ap.add_argument(
        "--agc-noise-gate",
        type=float,
        default=None,
        help="the AGC stage's gate at least this many dB above each leg's noise floor, so that only speech "
        "is compressed (default: the gate relative to the speech only; line noise in pauses is boosted)",
    )
    ap.add_argument(
        "--pause-noise-augment",
        type=float,
        default=0.0,
        help="share of training call legs whose line noise is raised 5-20 dB in the pauses only "
        "(both classes; training only, as --agc-augment)",
    )
    ap.add_argument(
        "--pause-noise-from",
        choices=("signal", "gaps"),
        default="signal",
        help="--pause-noise-augment's pauses: decided on the source's level (signal; session 23's M), or the "
        "gaps the simulator put between its utterances (gaps; the noise never raised inside a source utterance)",
    )
    ap.add_argument(
        "--join-short",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="training calls: source clips shorter than this joined into phrases with short gaps (spoken "
        "digits read as a number, not one digit per pause; session 25's Q; 0: off)",
    )
    ap.add_argument(
        "--piece-augment",
        type=float,
        default=0.0,
        help="share of one-party training calls whose utterances are cut into ~0.5 s pieces with pauses "
        "between (both classes; training only; the shortcut checks' pieces row measures it)",
    )
    ap.add_argument(
        "--vad",
        choices=("new", "legacy"),
        default="legacy",
        help="VAD that cuts every dataset and that the model is trained with: legacy = robodetect-v2/v3's, "
        "new = level-normalised (VadConfig(); the v4/v5 experiments)",
    )
    ap.add_argument(
        "--eval-sets-only",
        action="store_true",
        help="only build the dev sets scripts/evaluate.py reads (with --vad legacy: to measure v2/v3 on their own VAD)",
    )
    ap.add_argument(
        "--hop-seconds",
        type=float,
        default=1.0,
        help="window hop of the scoring plan (calibration, threshold and dev scores use it; training sees every 1 s window)",
    )
    ap.add_argument(
        "--train-short-share",
        type=float,
        default=0.0,
        help="share of train calls hearing < 2 s of speech (cal and dev keep the plan's, so models compare)",
    )
    ap.add_argument("--pool", choices=POOLS, default=ModelConfig.pool, help="2x2 pools between conv blocks")
    ap.add_argument(
        "--time-pool", choices=TIME_POOLS, default=ModelConfig.time_pool, help="pooling of the CNN's time axis"
    )
    ap.add_argument(
        "--head",
        choices=HEADS,
        default=ModelConfig.head,
        help="last layer: linear (cross-entropy) or cosine (one-class softmax: unlike known humans = robot)",
    )
    ap.add_argument(
        "--shift-copies",
        type=int,
        default=1,
        help="train on this many cuts of each call's speech at random offsets (1: the plan's cut only)",
    )
    ap.add_argument(
        "--stft-hop",
        type=int,
        default=HOP_LENGTH,
        help="STFT hop of the front end in samples (80 = 10 ms, v2/v3's; 160 halves the frames and the CNN's cost)",
    )
    ap.add_argument("--f-max", type=float, default=3800.0, help="top of the spectral bands, Hz (band-edge cues above)")
    ap.add_argument(
        "--fine-bands",
        type=int,
        default=0,
        help="multi-resolution front end: this many bands from 64 ms frames (harmonic detail) stacked below the 32 ms ones (0: off)",
    )
    ap.add_argument("--fine-f-max", type=float, default=FINE_F_MAX, help="top of the fine bands, Hz")
    ap.add_argument(
        "--group-delay",
        action="store_true",
        help="stack each band's group delay (phase dispersion) below its log energy",
    )
    ap.add_argument(
        "--band-norm",
        action="store_true",
        help="subtract each band's mean over the window's frames (a stationary colouring of the line cancels)",
    )
    ap.add_argument("--results", default=str(REPO / "data" / "results"))
    ap.add_argument(
        "--loo-save",
        action="store_true",
        help="also keep each leave-out model in RESULTS/loo-models/loo-<group> (scripts/loo_ensemble.py)",
    )
    ap.add_argument(
        "--channels",
        default=",".join(map(str, ModelConfig.channels)),
        help="conv channels per block, comma-separated (the CNN's width and cost)",
    )
    ap.add_argument(
        "--freq-mixstyle",
        type=float,
        default=0.0,
        help="share of training batches whose windows' per-band spectral statistics are mixed with "
        "another window's (Freq-MixStyle, Beta(0.3, 0.3); 0: off)",
    )
    ap.add_argument(
        "--distill",
        type=float,
        default=0.0,
        help="knowledge distillation: weight (0-1] of the teacher's soft labels against the true ones "
        "(needs --teacher for the main model, --loo-teachers for leave-outs; 0: off)",
    )
    ap.add_argument("--teacher", help="the trained model (stem or .json) the main model distils from")
    ap.add_argument(
        "--loo-teachers",
        metavar="DIR",
        help="leave-out models (DIR/loo-<group>, from --loo-save) each leave-out distils from: "
        "a teacher that never heard the held-out group either",
    )
    args = ap.parse_args(argv)
    if args.distill and not 0 < args.distill <= 1:
        ap.error(f"--distill {args.distill}: a weight in (0, 1]")
    if args.distill and args.sam > 0:
        ap.error("--distill: not with --sam")
    if args.distill and not args.no_main and not args.teacher:
        ap.error("--distill: the main model needs --teacher (or --no-main)")
    if args.distill and (args.loo or args.loo_humans) and not args.loo_teachers:
        ap.error("--distill: leave-outs need --loo-teachers (a teacher that heard the held-out group would leak it)")
    if args.distill and args.ablations:
        ap.error("--distill: not with --ablations (no teacher per ablation)")
    if not 0 <= args.room_augment <= 1:
        ap.error(f"--room-augment {args.room_augment}: a share in [0, 1]")
    if not 0 <= args.freq_mixstyle <= 1:
        ap.error(f"--freq-mixstyle {args.freq_mixstyle}: a share in [0, 1]")
    if args.band_norm and (args.eq_augment or args.freq_mixstyle):
        # both add a per-band offset constant over the frames after the front end: the very colouring
        # --band-norm removes, so the model would train on features it never sees when scoring
        ap.error("--band-norm: not with --eq-augment or --freq-mixstyle (they re-add the band means it removes)")
    if args.sam < 0:
        ap.error(f"--sam {args.sam}: a radius, >= 0")
    if args.sam > 0 and (args.consistency > 0 or args.lang_adversary > 0 or args.source_adversary > 0):
        ap.error("--sam: only with the plain loss (not with --consistency, --lang-adversary or --source-adversary)")
    return args


def model_config(args, **config) -> ModelConfig:
    """The ModelConfig the command line's architecture and front-end flags give; ``config``
    overrides its fields."""
    config = {
        "filterbank": args.filterbank,
        "use_prosody": not args.no_prosody,
        "frontend": FrontEndConfig(
            f_max=args.f_max,
            hop_seconds=args.hop_seconds,
            hop_length=args.stft_hop,
            fine_bands=args.fine_bands,
            fine_f_max=args.fine_f_max,
            group_delay=args.group_delay,
            band_norm=args.band_norm,
        ),
        "vad": vad_of(args),
        "channels": tuple(int(c) for c in args.channels.split(",")),
        "pool": args.pool,
        "time_pool": args.time_pool,
        "head": args.head,
        **config,
    }
    return ModelConfig(**config)


def distillation(args, config: ModelConfig, teacher: str | None) -> dict:
    """``train_model``'s distillation arguments for a model of ``config``: none without --distill;
    else the ``teacher`` model loaded and checked (a clear exit when it cannot serve)."""
    if not args.distill:
        return {}
    if teacher is None:  # never the shipped default: it heard every group
        raise SystemExit("train.py: --distill: no teacher given")
    try:
        model = resolve_model(teacher)
    except (ModelError, OSError, ValueError, RuntimeError) as e:
        raise SystemExit(f"train.py: --distill: teacher {teacher}: {e}") from None
    problem = distill_unsupported(config, model, args.distill, args.sam)
    if problem:
        raise SystemExit(f"train.py: teacher {teacher}: {problem}")
    return {"teacher": model, "distill": args.distill}


def loo_distillation(args, group: str) -> dict:
    """:func:`distillation` for the leave-out of ``group``: its teacher is --loo-teachers DIR/loo-<group>,
    refused unless it is that group's leave-out model (trained without it); none without --distill."""
    if not args.distill:
        return {}
    path = str(Path(args.loo_teachers) / f"loo-{group}")
    got = distillation(args, model_config(args, version=f"loo-{group}"), path)
    version = got["teacher"].config.version
    if version != f"loo-{group}":
        raise SystemExit(f"train.py: teacher {path} is {version!r}, not the leave-out model of {group}")
    return got


def source_classes(args) -> tuple[float, ...]:
    """The labels whose groups --source-classes sets the source discriminator on (0 human, 1 robot)."""
    return (0.0,) if args.source_classes == "human" else (0.0, 1.0)


def main() -> None:
    args = parse_args()
    t0 = time.time()
    # teachers are loaded and checked once, now: one that cannot serve fails before the datasets are built
    main_distillation = {} if args.no_main else distillation(args, model_config(args), args.teacher)
    Path(args.calls_dir).mkdir(parents=True, exist_ok=True)
    rows = read_manifests(manifests(args))
    if args.eval_sets_only:  # what scripts/evaluate.py reads, cut with --vad
        for name in ("dev", "dev_clips", "dev_2party", "cal_2party"):
            print(f"{name}: {len(dataset(args, rows, name).calls)} calls", flush=True)
        return
    train_data, cal, dev = (dataset(args, rows, n) for n in ("train", "cal", "dev"))
    scored_train = train_data  # the training calls leave-outs score their held-out family on
    if args.extra_corpus:
        train_data = train_data.merged(dataset(args, extra_rows(args, rows), "train_extra"))
    if args.train_2party:
        two = dataset(args, rows, "train_2party")
        train_data = train_data.merged(two.subset(lambda c: c.get("view") in TRAIN_2PARTY_VIEWS))
        del two
    for name, d in (("train", train_data), ("cal", cal), ("dev", dev)):
        print(f"{name}: {len(d.calls)} calls / {len(d.windows)} windows", flush=True)
    results_dir = Path(args.results)
    results_dir.mkdir(parents=True, exist_ok=True)

    def fit(data: CallData, version: str, reduced: bool, distilled: dict | None = None, **config) -> RobotNet:
        """Train one model with the command line's front end and options (``reduced``: the
        leave-one-out/ablation recipe; ``distilled``: :func:`distillation`'s teacher arguments);
        ``config`` overrides ModelConfig fields."""
        return train_model(
            data,
            model_config(args, version=version, **config),
            epochs=(args.loo_epochs or args.epochs) if reduced else args.epochs,
            seed=args.seed,
            max_windows_per_epoch=args.loo_windows if reduced else None,
            eq_augment=args.eq_augment,
            lang_adversary=args.lang_adversary,
            source_adversary=args.source_adversary,
            source_classes=source_classes(args),
            rawboost_p=args.rawboost,
            rawboost_config=RawBoostConfig(notch=args.rawboost_filter == "stop"),
            shift_copies=args.shift_copies,
            consistency=args.consistency,
            consistency_p=args.consistency_p,
            consistency_target=args.consistency_target,
            sam_rho=args.sam,
            freq_mixstyle_p=args.freq_mixstyle,
            **(distilled or {}),
        )

    if not args.no_main:
        model = fit(
            train_data, f"{args.version} ({date.today().isoformat()})", reduced=False, distilled=main_distillation
        )
        info = calibrate(model, cal)
        model.config.human_ranges = human_ranges(train_data, model)
        s, y, _ = score_table(call_scores(model, dev)[0], dev)
        model.config.metrics = {
            "dev_call_eer": round(eer(s, y)[0], 4),
            "cal_call_eer": round(info["cal_eer"], 4),
            "parameters": count_parameters(model),
            "train_calls": len(train_data.calls),
            "train_windows": int(len(train_data.windows)),
            "epochs": args.epochs,
            "seed": args.seed,
            "recipe": {
                "resample_augment": args.resample_augment,
                "mp3_augment": args.mp3_augment,
                "ns_augment": args.ns_augment,
                "agc_augment": args.agc_augment,
                "room_augment": args.room_augment,
                "agc_noise_gate": args.agc_noise_gate,
                "pause_noise_augment": args.pause_noise_augment,
                "pause_noise_from": args.pause_noise_from,
                "join_short": args.join_short,
                "piece_augment": args.piece_augment,
                "speed_perturb": args.speed_perturb,
                "shift_copies": args.shift_copies,
                "head": args.head,
                "eq_augment": args.eq_augment,
                "lang_adversary": args.lang_adversary,
                "source_adversary": args.source_adversary,
                "source_classes": args.source_classes,
                "rawboost": args.rawboost,
                "rawboost_filter": args.rawboost_filter,
                "consistency": args.consistency,
                "consistency_p": args.consistency_p,
                "consistency_target": args.consistency_target,
                "sam": args.sam,
                "freq_mixstyle": args.freq_mixstyle,
                **({"distill": args.distill, "teacher": Path(args.teacher).name} if args.distill else {}),
                "plan_version": PLAN_VERSION,
                "train_short_share": args.train_short_share,
                "train_2party": args.train_2party,
                **({"extra_corpus_calls": args.extra_calls} if args.extra_corpus else {}),
            },
        }
        weights, _ = save_model(model, args.out)
        print(
            f"saved {weights} ({weights.stat().st_size / 1e6:.2f} MB, {count_parameters(model)} parameters); "
            f"cal EER {info['cal_eer']:.4f}, dev EER {model.config.metrics['dev_call_eer']:.4f}, "
            f"threshold {info['threshold']:.3f}, band {info['uncertain_low']:.3f}-{info['uncertain_high']:.3f} "
            f"({time.time() - t0:.0f} s)",
            flush=True,
        )

        for name in ("dev_clips", "dev_2party"):  # for scripts/evaluate.py
            dataset(args, rows, name)

    if args.ablations:
        table = {}
        ablations = (
            ("fused", {"use_prosody": True}),
            ("spectral-only", {"use_prosody": False}),
            ("prosody-only", {"use_prosody": True, "use_spectral": False}),
        )
        for name, cfg in ablations:
            m = fit(train_data, name, reduced=True, **cfg)
            s, y, _ = score_table(call_scores(m, dev)[0], dev)
            table[name] = eer(s, y)[0]
            print(f"ablation {name}: dev call EER {table[name]:.4f}", flush=True)
        (results_dir / "ablations.json").write_text(json.dumps(table, indent=2))

    if args.loo or args.loo_humans:
        groups = list(args.loo_groups or [])
        present = {c["group"] for c in train_data.calls + dev.calls + cal.calls}
        if not groups:
            groups = [g for g in FAMILY_GROUPS if g in present] if args.loo else []
            if args.loo_humans:
                groups += sorted(
                    {c["group"] for c in train_data.calls if c["label"] == "human" and c.get("view") is None}
                )
        path = results_dir / "loo.json"
        table = json.loads(path.read_text()) if path.exists() else {}
        # what produced the rows (scripts/loo_seeds.py groups runs by recipe and seed)
        table["_run"] = {"argv": sys.argv[1:], "seed": args.seed, "loo_epochs": args.loo_epochs or args.epochs}
        teachers = {g: loo_distillation(args, g) for g in groups}  # every fold's teacher checked before any trains
        for g in groups:
            m = fit(
                train_data.subset(lambda c, g=g: without_group(c, g)), f"loo-{g}", reduced=True, distilled=teachers[g]
            )
            info = calibrate(m, cal.subset(lambda c, g=g: without_group(c, g)))
            if args.loo_save:
                save_model(m, results_dir / "loo-models" / f"loo-{g}")
            table[g], calls = held_out_eer(m, [scored_train, cal, dev], dev, g)
            if args.loo_save:
                # the per-call raw scores: held-out calls and this model's own calibration calls
                # (what scripts/transfer_threshold.py needs, without re-scoring)
                np.savez(
                    results_dir / "loo-models" / f"loo-{g}.scores.npz",
                    held_score=calls["score"],
                    held_label=calls["label"],
                    held_group=np.array(calls["group"]),
                    held_lang=np.array(calls["lang"]),
                    cal_score=info["cal_scores"],
                    cal_label=info["cal_labels"],
                    cal_group=np.array(info["cal_groups"]),
                )
            table[g]["epochs"] = args.loo_epochs or args.epochs
            print(f"leave-out {g}: {json.dumps(table[g])} ({time.time() - t0:.0f} s)", flush=True)
            path.write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
