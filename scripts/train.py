"""Train the shipped robodetect model (and, optionally, the leave-one-out and ablation models).

    python scripts/build_corpus.py --out data/corpus          # robot speech from the project's engines
    python scripts/train.py --out robodetect/models/robodetect-v2  # simulated calls -> train -> calibrate
    python scripts/train.py --loo --ablations --no-main       # the model card's generalisation tables

Simulated-call datasets are cached in data/calls/{train,dev}.npz (rebuilt when missing); every
step is seeded. Leave-one-out models are trained without one robot engine (or human source) and
scored on all of that group's calls against the dev calls of the other class.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from robodetect.metrics import eer  # noqa: E402
from robodetect.model import ModelConfig, RobotNet, count_parameters, save_model  # noqa: E402
from robodetect.simulate import SimConfig  # noqa: E402
from robodetect.train import (  # noqa: E402
    CallData,
    build_dataset,
    calibrate,
    call_scores,
    human_ranges,
    plan_calls,
    read_manifests,
    score_table,
    train_model,
)

SHARED_MANIFEST = REPO.parent / "shared" / "corpora" / "manifest.csv"


def datasets(args) -> tuple[CallData, CallData]:
    calls_dir = Path(args.calls_dir)
    calls_dir.mkdir(parents=True, exist_ok=True)
    rows = read_manifests([SHARED_MANIFEST, Path(args.corpus) / "tts_manifest.csv"])
    out = []
    for split, n, seed in (("train", args.train_calls, args.seed), ("dev", args.dev_calls, args.seed + 1)):
        path = calls_dir / f"{split}.npz"
        if not path.exists() or args.rebuild:
            plans = plan_calls(rows, split, n, seed)
            print(f"building {split}: {len(plans)} calls", flush=True)
            # speed perturbation is a training augmentation: dev calls stay as a real call would be
            sim = SimConfig(p_speed=args.speed_perturb) if split == "train" else None
            build_dataset(plans, path, workers=args.workers, sim=sim)
        out.append(CallData.load(path))
    return out[0], out[1]


def held_out_eer(model, train_data: CallData, dev: CallData, group: str) -> tuple[float, int]:
    """EER of a model trained without ``group``: all of that group's calls (both splits) against the
    dev calls of the other class."""
    label = next(c["label"] for c in dev.calls + train_data.calls if c["group"] == group)
    held = [d.subset(lambda c: c["group"] == group) for d in (train_data, dev)]
    other = dev.subset(lambda c: c["label"] != label)
    s, y = [], []
    for d in held + [other]:
        scores, labels, _ = score_table(call_scores(model, d)[0], d)
        s.append(scores)
        y.append(labels)
    return eer(np.concatenate(s), np.concatenate(y))[0], sum(len(h.calls) for h in held)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=str(REPO / "data" / "corpus"))
    ap.add_argument("--calls-dir", default=str(REPO / "data" / "calls"))
    ap.add_argument("--out", default=str(REPO / "robodetect" / "models" / "robodetect-v2"))
    ap.add_argument("--train-calls", type=int, default=3000, help="simulated train calls per label")
    ap.add_argument("--dev-calls", type=int, default=400, help="simulated dev calls per label")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rebuild", action="store_true", help="re-simulate the call datasets")
    ap.add_argument("--no-main", action="store_true", help="skip training the shipped model")
    ap.add_argument("--loo", action="store_true", help="leave-one-engine/source-out models")
    ap.add_argument("--ablations", action="store_true", help="spectral-only and prosody-only models")
    ap.add_argument("--loo-epochs", type=int, default=4)
    ap.add_argument("--loo-groups", nargs="+", default=None, help="only these groups in --loo")
    ap.add_argument("--eq-augment", action="store_true", help="random spectral-tilt/EQ augmentation")
    ap.add_argument("--lang-adversary", type=float, default=0.0, help="language-adversarial weight (0: off)")
    ap.add_argument("--filterbank", choices=("mel", "linear"), default="linear", help="spectral band spacing")
    ap.add_argument("--no-prosody", action="store_true", help="spectral CNN only (no prosody features)")
    ap.add_argument("--speed-perturb", type=float, default=0.0, help="share of train calls sped up/slowed by 0.9-1.1x")
    ap.add_argument("--loo-windows", type=int, default=12000, help="windows drawn per epoch for loo/ablation models")
    ap.add_argument("--results", default=str(REPO / "data" / "results"))
    args = ap.parse_args()
    t0 = time.time()
    train_data, dev = datasets(args)
    print(
        f"train: {len(train_data.calls)} calls / {len(train_data.windows)} windows; "
        f"dev: {len(dev.calls)} calls / {len(dev.windows)} windows",
        flush=True,
    )
    results_dir = Path(args.results)
    results_dir.mkdir(parents=True, exist_ok=True)

    def fit(data: CallData, version: str, reduced: bool, **config) -> RobotNet:
        """Train one model with the command line's front end and options (``reduced``: the
        leave-one-out/ablation recipe); ``config`` overrides ModelConfig fields."""
        config = {"filterbank": args.filterbank, "use_prosody": not args.no_prosody, **config}
        return train_model(
            data,
            ModelConfig(version=version, **config),
            epochs=args.loo_epochs if reduced else args.epochs,
            seed=args.seed,
            max_windows_per_epoch=args.loo_windows if reduced else None,
            eq_augment=args.eq_augment,
            lang_adversary=args.lang_adversary,
        )

    if not args.no_main:
        model = fit(train_data, f"robodetect-v2 ({date.today().isoformat()})", reduced=False)
        info = calibrate(model, dev)
        model.config.human_ranges = human_ranges(train_data, model)
        model.config.metrics = {
            "dev_call_eer": round(info["dev_eer"], 4),
            "parameters": count_parameters(model),
            "train_calls": len(train_data.calls),
            "train_windows": int(len(train_data.windows)),
            "epochs": args.epochs,
            "seed": args.seed,
        }
        weights, _ = save_model(model, args.out)
        print(
            f"saved {weights} ({weights.stat().st_size / 1e6:.2f} MB, {count_parameters(model)} parameters); "
            f"dev call EER {info['dev_eer']:.4f}, threshold {info['threshold']:.3f} ({time.time() - t0:.0f} s)"
        )

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

    if args.loo:
        groups = args.loo_groups or sorted({c["group"] for c in train_data.calls})
        table = {}
        for g in groups:
            sub = train_data.subset(lambda c, g=g: c["group"] != g)
            m = fit(sub, f"loo-{g}", reduced=True)
            e, n = held_out_eer(m, train_data, dev, g)
            table[g] = {"eer": e, "held_out_calls": n}
            print(f"leave-out {g}: EER {e:.4f} on {n} held-out calls ({time.time() - t0:.0f} s)", flush=True)
            (results_dir / "loo.json").write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
