"""Family leave-outs scored by an ensemble of leave-out models trained with different seeds.

A family the model never heard sits near the decision boundary, and which side it falls on moves
with the seed (model card, session 11-12: one recipe's leave-out mean moves by ~7 points between
seeds). Averaging the calibrated logits of K models trained with K seeds removes part of that
variance. This script loads the leave-out models that ``scripts/train.py --loo --loo-save`` kept
(``RESULTS/loo-models/loo-<group>``) for several seeds and scores the held-out calls of one seed's
datasets (``--seed``, the same flags as the training runs) with each member and with their mean
calibrated logit:

    python scripts/loo_ensemble.py --members RES_SEED1/loo-models RES_SEED2/loo-models \\
        --seed 1 <train.py's dataset flags> --loo-groups festvox vits ... [--json OUT]

A member whose seed is ``--seed`` was trained on those very datasets (minus the group); the others
were trained on other seeds' simulated calls, still without the group: every member is blind to
the held-out family. Every member is re-calibrated (Platt scaling, threshold) on this seed's
calibration calls without the group, so all members speak the same probability scale (and leave-
out models saved before Platt scaling was fixed get a sane one); the ensemble's own threshold is
fitted the same way on the mean of the members' calibrated logits (<= 1 % of calibration humans
flagged), and each row says how many held-out calls its threshold flags.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train as train_script  # noqa: E402  (scripts/train.py: datasets and leave-out sets)

from robodetect import scoring  # noqa: E402
from robodetect.metrics import robot_threshold  # noqa: E402
from robodetect.model import load_model  # noqa: E402
from robodetect.train import calibrate, call_scores  # noqa: E402


def calibrated_call_scores(model, data) -> dict[int, float]:
    """Mean calibrated window logit per call (Platt scaling is affine, so this is the calibrated
    mean of the raw window logits)."""
    raw, _ = call_scores(model, data)
    scale, bias = float(model.config.calib_scale), float(model.config.calib_bias)
    return {cid: scoring.calibrated_logit(z, scale=scale, bias=bias) for cid, z in raw.items()}


def ensemble_scores(members: list[list[dict[int, float]]]) -> list[dict[int, float]]:
    """Per call set, the mean over members of their per-call scores (every member scores every call)."""
    out = []
    for per_set in zip(*members):
        calls = per_set[0].keys()
        out.append({cid: float(np.mean([m[cid] for m in per_set])) for cid in calls})
    return out


def flagged(scores: list[dict[int, float]], threshold: float) -> float:
    """Share of the held-out calls (all sets but the last) whose probability reaches ``threshold``."""
    p = scoring.sigmoid([z for calls in scores[:-1] for z in calls.values()])
    return float((p >= threshold).mean())  # called robot: caught robots, or humans falsely flagged


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], add_help=False)
    ap.add_argument("--members", nargs="+", type=Path, required=True, help="loo-models folders, one per seed")
    ap.add_argument("--json", type=Path, help="write the table here")
    args, rest = ap.parse_known_args(argv)
    targs = train_script.parse_args(rest)
    rows = train_script.read_manifests(train_script.manifests(targs))
    data = [train_script.dataset(targs, rows, n) for n in ("train", "cal", "dev")]
    groups = targs.loo_groups or list(train_script.FAMILY_GROUPS)
    table: dict = {"_run": {"argv": sys.argv[1:] if argv is None else argv, "seed": targs.seed}}
    for g in groups:
        paths = [folder / f"loo-{g}" for folder in args.members]
        missing = [str(p) for p in paths if not p.with_suffix(".safetensors").is_file()]
        if missing:
            print(f"loo_ensemble: {g}: no model at {', '.join(missing)}; skipped", file=sys.stderr)
            continue
        models = [load_model(p).eval() for p in paths]
        label, sets = train_script.held_out_sets(data, data[2], g)
        cal = data[1].subset(lambda c, g=g: train_script.without_group(c, g) and c.get("view") is None)
        # every member scores the same calibration calls in the same order (score_table's)
        infos = [calibrate(m, cal) for m in models]  # fits with autograd: outside inference mode
        with torch.inference_mode():
            members = [[calibrated_call_scores(m, d) for d in sets] for m in models]
        cal_s = np.mean(
            [
                scoring.calibrated_logit(i["cal_scores"], scale=m.config.calib_scale, bias=m.config.calib_bias)
                for m, i in zip(models, infos)
            ],
            axis=0,
        )
        if any(i["cal_groups"] != infos[0]["cal_groups"] or len(i["cal_scores"]) != len(cal_s) for i in infos):
            raise ValueError(f"{g}: the members scored different calibration calls")
        threshold = robot_threshold(scoring.sigmoid(cal_s[infos[0]["cal_labels"] == 0]))
        row = {"members": []}
        for m, scores in zip(models, members):
            rates = train_script.held_out_rates(scores, sets, label)[0]
            rates["flagged_at_threshold"] = flagged(scores, m.config.threshold)
            row["members"].append(rates)
        mean = ensemble_scores(members)
        row["ensemble"] = train_script.held_out_rates(mean, sets, label)[0]
        row["ensemble"]["flagged_at_threshold"] = flagged(mean, threshold)
        row["ensemble"]["threshold"] = threshold
        table[g] = row
        each = ", ".join(f"{100 * r['eer']:.1f} ({100 * r['flagged_at_threshold']:.0f})" for r in row["members"])
        ens = row["ensemble"]
        print(
            f"{g}: EER (flagged) members {each} % -> ensemble {100 * ens['eer']:.1f} "
            f"({100 * ens['flagged_at_threshold']:.0f}) %",
            flush=True,
        )
        if args.json:
            args.json.write_text(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
