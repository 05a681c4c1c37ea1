"""How much of a leave-out model's verdict on its held-out group comes from the prosody vector?

    python scripts/probe_prosody.py --models RESULTS/loo-models <train.py's dataset flags> --seed S \\
        --loo-groups librispeech speechocean762 espeak-ng

For each group, the leave-out model trained without it (``scripts/train.py --loo-save``) scores the
group's one-party calls (every split) and the dev calls of the other class twice: as trained, and
with every window's prosody vector replaced by the training mean (so only the spectral CNN
speaks). Prints the mean window logit of both sides each time, and the held-out windows' mean
z-scored prosody features beside the dev humans' and the other side's: a held-out group whose logit
hardly moves is judged by its spectrum.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train as train_script  # noqa: E402  (scripts/train.py: datasets and leave-out sets)

from robodetect.features import PROSODY_NAMES  # noqa: E402
from robodetect.model import load_model  # noqa: E402


@torch.inference_mode()
def window_logits(model, data, neutral_prosody: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Raw window logits of ``data`` (the model's window plan) and the z-scored prosody."""
    data = data.replan(model.config.frontend.hop_samples)
    mel, pros = data.features_for(model)
    z = (pros - model.prosody_mean) / model.prosody_std
    if neutral_prosody:
        pros = model.prosody_mean.expand_as(pros)
    return model.classify(model.embed(mel.float(), pros)).numpy(), z.numpy()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], add_help=False)
    ap.add_argument("--models", type=Path, required=True, help="a loo-models folder of scripts/train.py --loo-save")
    args, rest = ap.parse_known_args(argv)
    targs = train_script.parse_args(rest)
    rows = train_script.read_manifests(train_script.manifests(targs))
    data = [train_script.dataset(targs, rows, n) for n in ("train", "cal", "dev")]
    dev = data[2]
    humans = dev.subset(lambda c: c["label"] == "human" and c.get("view") is None)
    for g in targs.loo_groups or []:
        stem = args.models / f"loo-{g}"
        if not stem.with_suffix(".safetensors").is_file():
            print(f"probe_prosody: no model at {stem}; skipped", file=sys.stderr)
            continue
        model = load_model(stem).eval()
        label, sets = train_script.held_out_sets(data, dev, g)
        held, other = sets[:-1], sets[-1]
        z = {}  # z-scored prosody of the held-out windows and of the other class (as trained)
        for neutral in (False, True):
            h = [window_logits(model, d, neutral) for d in held]
            o = window_logits(model, other, neutral)
            if not neutral:
                z = {"held": np.concatenate([zz for _, zz in h]), "other": o[1]}
            how = "prosody at its training mean" if neutral else "as trained"
            print(
                f"{g} ({label}), {how}: held-out mean logit {np.concatenate([lg for lg, _ in h]).mean():+.2f}, "
                f"other class {o[0].mean():+.2f}"
            )
        hz, oz, dz = z["held"], z["other"], window_logits(model, humans)[1]
        for i, name in enumerate(PROSODY_NAMES):
            print(
                f"    {name:<22} held out {hz[:, i].mean():+.2f}  dev humans {dz[:, i].mean():+.2f}  other {oz[:, i].mean():+.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
