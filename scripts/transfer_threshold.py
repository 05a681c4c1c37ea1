"""A robot threshold that transfers to human recording chains and robot families the model never heard.

The shipped threshold flags <= 1 % of the *calibration* humans; those come from the same six human
sources (recording chains) as the training humans, and a source left out of training is flagged
far more often at the threshold fitted without it (model card: LibriSpeech 55 %, Common Voice 22 %).
So the in-sample threshold does not transfer (issue 10: "choose it ... from scores the model
produced on families it did not train on (cross-fitted over family folds)").

Cross-fitting, from the leave-out models that ``scripts/train.py --loo --loo-humans --loo-save``
keeps (``RESULTS/loo-models/loo-<group>.json`` + ``.scores.npz``: each model trained and
calibrated without one group, with the raw scores of that group's calls):

- every fold model puts its held-out calls on its own calibrated log-odds scale; the *excess* of a
  held-out human call is its calibrated logit minus the logit of the fold model's own in-sample
  point (its threshold for the 1 % level, its band edges for 5 % and 0.5 %);
- the margin for a level is the excess that the held-out humans of all human folds (each source
  weighing the same, whatever its number of calls) reach at that false-alarm rate;
- the transferred threshold of a model = its in-sample point raised by that margin, in calibrated
  logit (never lowered).

How well the rule transfers is measured out of sample twice over: each human source's false alarms
at the margin fitted on the *other* sources' folds (nested leave-one-source-out), and each robot
family's catch rate, its calls scored by the model trained without it, at the margin (robots never
choose the margin). Both at the in-sample threshold too, for comparison.

    python scripts/transfer_threshold.py RESULTS/loo-models [RESULTS_SEED1/loo-models ...]   # the table
    python scripts/transfer_threshold.py RESULTS/loo-models --model robodetect-v6 \\
        --write robodetect/models/robodetect-v6.json --json docs/leaveouts/transfer-v6-seed0.json

The margins assume the shipped model's out-of-sample shift (in calibrated logit, above its own
in-sample point) is like that of the reduced-recipe fold models of the same recipe; say so where
the figures are reported.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from robodetect import scoring  # noqa: E402
from robodetect.config import ModelConfig, find_model  # noqa: E402
from robodetect.metrics import robot_threshold, weighted_threshold_for_false_alarm  # noqa: E402

#: false-alarm level -> the model JSON field holding the in-sample point for it (robodetect.train.calibrate)
LEVELS = {0.01: "threshold", 0.05: "uncertain_low", 0.005: "uncertain_high"}


@dataclass
class Fold:
    """One leave-out model's held-out calls of its group, on its own calibrated scale."""

    group: str
    label: int  # 1: a robot family, 0: a human source
    logits: np.ndarray  # calibrated logits of the group's held-out calls
    anchors: dict[float, float]  # level -> calibrated logit of the model's in-sample point


def load_folds(folder: Path) -> list[Fold]:
    """Every ``loo-<group>`` in ``folder``: its JSON and its ``.scores.npz``, checked to belong
    together (the npz's calibration scores give the JSON's threshold)."""
    stems = {p.name[len("loo-") : -len(".json")] for p in folder.glob("loo-*.json")}
    scored = {p.name[len("loo-") : -len(".scores.npz")] for p in folder.glob("loo-*.scores.npz")}
    if not stems:
        raise ValueError("no leave-out models (loo-<group>.json) here")
    if stems != scored:
        raise ValueError(
            f"models without per-call scores: {sorted(stems - scored) or '-'}; scores without a model: "
            f"{sorted(scored - stems) or '-'} (scores are kept by train.py --loo-save since session 13)"
        )
    folds = []
    for group in sorted(stems):
        cfg = json.loads((folder / f"loo-{group}.json").read_text())
        scale, bias = float(cfg["calib_scale"]), float(cfg["calib_bias"])
        with np.load(folder / f"loo-{group}.scores.npz") as z:
            mine = z["held_group"] == group
            labels = set(z["held_label"][mine].tolist())
            if len(labels) != 1:
                raise ValueError(f"loo-{group}: the group's held-out calls carry labels {sorted(labels)}")
            raw = z["held_score"][mine]
            cal_humans = z["cal_score"][z["cal_label"] == 0]
        p = scoring.sigmoid(scoring.calibrated_logit(cal_humans, scale=scale, bias=bias))
        if not np.isclose(robot_threshold(p), float(cfg["threshold"]), rtol=0, atol=1e-6):
            raise ValueError(f"loo-{group}: its scores do not give its JSON's threshold (files of different runs?)")
        logits = scoring.calibrated_logit(raw, scale=scale, bias=bias)
        anchors = {level: scoring.logit(float(cfg[field])) for level, field in LEVELS.items()}
        folds.append(Fold(group, int(labels.pop()), np.asarray(logits, float), anchors))
    return folds


def excess(fold: Fold, level: float) -> np.ndarray:
    return fold.logits - fold.anchors[level]


def margin(human_folds: list[Fold], level: float) -> float:
    """The calibrated-logit margin above each fold's in-sample point that flags ``level`` of the
    held-out humans, each human source weighing the same (its folds of several runs share it); never
    negative (the rule only raises)."""
    runs = Counter(f.group for f in human_folds)  # a source's folds share its weight
    e = np.concatenate([excess(f, level) for f in human_folds])
    w = np.concatenate([np.full(len(f.logits), 1.0 / (len(f.logits) * runs[f.group])) for f in human_folds])
    return max(0.0, weighted_threshold_for_false_alarm(e, w, level))


def flagged(fold: Fold, level: float, m: float) -> float:
    """Share of the fold's held-out calls at or above its in-sample point raised by ``m``."""
    return float((excess(fold, level) >= m).mean())


def _groups(folds: list[Fold]) -> list[str]:
    return list(dict.fromkeys(f.group for f in folds))


def cross_fit(folds: list[Fold]) -> dict:
    """Margins per level and their out-of-sample checks. Folds of several runs (seeds) pool: every
    source weighs the same, and the nested check leaves a source out of every run at once."""
    humans = [f for f in folds if f.label == 0]
    robots = [f for f in folds if f.label == 1]
    if len(_groups(humans)) < 2:
        raise ValueError(f"cross-fitting needs >= 2 human sources left out, found {len(_groups(humans))}")
    out: dict = {"human_sources": _groups(humans), "robot_families": _groups(robots), "folds": len(folds)}
    for level in LEVELS:
        m = margin(humans, level)
        nested = {}
        for g in _groups(humans):  # the margin fitted without this source, applied to it
            without = margin([f for f in humans if f.group != g], level)
            mine = [f for f in humans if f.group == g]
            nested[g] = {
                "margin_without": without,
                "flagged_out_of_sample": float(np.mean([flagged(f, level, without) for f in mine])),
                "flagged_in_sample_point": float(np.mean([flagged(f, level, 0.0) for f in mine])),
            }
        catch = {}
        for g in _groups(robots):
            mine = [f for f in robots if f.group == g]
            catch[g] = {
                "caught_at_margin": float(np.mean([flagged(f, level, m) for f in mine])),
                "caught_in_sample_point": float(np.mean([flagged(f, level, 0.0) for f in mine])),
            }
        mean = lambda rows, k: float(np.mean([r[k] for r in rows.values()])) if rows else None  # noqa: E731
        out[str(level)] = {
            "margin_logit": m,
            "humans": nested,
            "humans_flagged_out_of_sample_mean": mean(nested, "flagged_out_of_sample"),
            "humans_flagged_in_sample_point_mean": mean(nested, "flagged_in_sample_point"),
            "robots": catch,
            "robots_caught_at_margin_mean": mean(catch, "caught_at_margin"),
            "robots_caught_in_sample_point_mean": mean(catch, "caught_in_sample_point"),
        }
    return out


def transferred(cfg: dict, result: dict) -> dict[str, float]:
    """A model JSON's threshold and band raised by the cross-fitted margins (band kept around the
    threshold)."""
    new = {
        field: float(scoring.sigmoid(scoring.logit(float(cfg[field])) + result[str(level)]["margin_logit"]))
        for level, field in LEVELS.items()
    }
    new["uncertain_low"] = min(new["uncertain_low"], new["threshold"])
    new["uncertain_high"] = max(new["uncertain_high"], new["threshold"])
    return new


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:5.1f} %"


def report(result: dict) -> str:
    lines = []
    for level in LEVELS:
        r = result[str(level)]
        lines.append(f"level {100 * level:g} % human false alarms: margin {r['margin_logit']:+.3f} calibrated logit")
        lines.append("  human source (left out)   flagged: in-sample point | margin fitted on the other sources")
        for g, row in r["humans"].items():
            lines.append(
                f"    {g:22s} {_pct(row['flagged_in_sample_point'])} | {_pct(row['flagged_out_of_sample'])}"
                f"  (margin {row['margin_without']:+.3f})"
            )
        lines.append(
            f"    {'mean':22s} {_pct(r['humans_flagged_in_sample_point_mean'])} |"
            f" {_pct(r['humans_flagged_out_of_sample_mean'])}"
        )
        lines.append("  robot family (left out)   caught: in-sample point | margin")
        for g, row in r["robots"].items():
            lines.append(f"    {g:22s} {_pct(row['caught_in_sample_point'])} | {_pct(row['caught_at_margin'])}")
        lines.append(
            f"    {'mean':22s} {_pct(r['robots_caught_in_sample_point_mean'])} | {_pct(r['robots_caught_at_margin_mean'])}"
        )
    return "\n".join(lines)


def _rebuild_engine(config_path: Path) -> None:
    """The ONNX engine graph beside a model JSON records the JSON's digest: a rewritten JSON needs
    its graph rebuilt, or the ONNX engine refuses it (and score / the stream fall back to torch)."""
    stem = config_path.with_suffix("")
    if not stem.with_suffix(".safetensors").is_file():
        print(f"note: no weights beside {config_path}; copy them there and run scripts/build_engines.py")
        return
    from robodetect.export import export_engine

    print(f"rebuilt the ONNX engine graph {export_engine(stem)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "folders",
        type=Path,
        nargs="+",
        help="RESULTS/loo-models of train.py --loo --loo-humans --loo-save runs (seeds)",
    )
    ap.add_argument("--model", help="a model name or JSON path whose threshold and band to raise by the margins")
    ap.add_argument("--write", type=Path, help="write --model's JSON with the transferred threshold and band here")
    ap.add_argument("--json", type=Path, help="write the cross-fitting table here")
    args = ap.parse_args(argv)
    if args.write and not args.model:
        ap.error("--write needs --model")
    folders = list(dict.fromkeys(p.resolve() for p in args.folders))  # a folder named twice counts once
    try:
        folds = [f for folder in folders for f in load_folds(folder)]
        result = cross_fit(folds)
        source = None
        if args.model:
            config_file, _, source = find_model(args.model)
            cfg = json.loads(config_file.read_text())
    except (OSError, ValueError, KeyError) as e:
        print(f"transfer_threshold: {' '.join(map(str, args.folders))}: {e}", file=sys.stderr)
        return 2
    print(report(result))
    if source:
        before = {field: cfg[field] for field in LEVELS.values()}
        if "in_sample" in cfg.get("metrics", {}).get("threshold_transfer", {}):
            before = cfg["metrics"]["threshold_transfer"]["in_sample"]  # re-running starts from the in-sample values
            cfg.update(before)
        new = transferred(cfg, result)
        print(f"{source}: " + ", ".join(f"{k} {before[k]:.4f} -> {v:.4f}" for k, v in new.items()))
        result["model"] = {"json": source, "in_sample": before, "transferred": new}
        if args.write:
            config = ModelConfig.from_dict(cfg, source=source)  # validated, written as save_model writes it
            for field, value in new.items():
                setattr(config, field, value)
            config.metrics = dict(config.metrics or {})
            config.metrics["threshold_transfer"] = {
                "method": "scripts/transfer_threshold.py: in-sample points raised by cross-fitted margins",
                "in_sample": before,
                "margins_logit": {str(level): result[str(level)]["margin_logit"] for level in LEVELS},
                "human_sources": result["human_sources"],
                "folds": result["folds"],
                "humans_flagged_out_of_sample_mean": result["0.01"]["humans_flagged_out_of_sample_mean"],
                "robots_caught_at_margin_mean": result["0.01"]["robots_caught_at_margin_mean"],
            }
            config.to_json(args.write)
            _rebuild_engine(args.write)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
