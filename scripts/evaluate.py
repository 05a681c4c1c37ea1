"""Evaluate a model on the simulated-telephone dev calls (never trained on).

    python scripts/evaluate.py                      # shipped model, data/calls/dev.npz
    python scripts/evaluate.py --model STEM --markdown docs/eval.md

Prints call-level EER, accuracy, human false-alarm rate and robot detection at the model's
threshold, then per group (robot engine / human source), per language, per codec and by the
amount of speech heard (first 1, 2, 3, 4, 6, 8 s and the whole call).
Note: calibration and the threshold were fitted on this same dev split, so the at-threshold
rates are tuned-on; EERs are threshold-free. Leave-one-out numbers come from scripts/train.py --loo.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from robodetect.metrics import eer, rates_at  # noqa: E402
from robodetect.model import resolve_model  # noqa: E402
from robodetect.train import CallData, score_table, truncated_call_scores  # noqa: E402

SECONDS = (1, 2, 3, 4, 6, 8, None)


def fmt(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def evaluate(model, dev: CallData) -> list[str]:
    out = []
    whole = truncated_call_scores(model, dev, None)
    s, y, rows = score_table(whole, dev)
    p = model.config.probability(s)
    thr = model.config.threshold
    e = eer(s, y)[0]
    r = rates_at(p, y, thr)
    out += [
        f"## Dev split: {len(rows)} simulated calls ({int(y.sum())} robot, {int((1 - y).sum())} human)",
        "",
        "| metric | value |",
        "|---|---|",
        f"| call EER | {fmt(e)} |",
        f"| accuracy at threshold {thr:.3f} | {fmt(r['accuracy'])} |",
        f"| human false alarms at threshold | {fmt(r['human_false_alarm'])} |",
        f"| robots caught at threshold | {fmt(r['robot_detection'])} |",
        "",
        "### Per group (robot groups: EER vs all dev humans; human sources: EER vs all dev robots)",
        "",
        "| group | label | calls | EER | at threshold: caught (robots) / false alarms (humans) |",
        "|---|---|---|---|---|",
    ]
    groups = sorted({(c["label"], c["group"]) for c in rows})
    for label, g in groups:
        sel = np.array([c["group"] == g for c in rows])
        other = y != (label == "robot")
        m = sel | other
        eg = eer(s[m], y[m])[0]
        at = p[sel] >= thr
        out.append(f"| {g} | {label} | {int(sel.sum())} | {fmt(eg)} | {fmt(float(at.mean()))} |")
    for key, title in (("lang", "language"), ("codec", "codec")):
        out += [
            "",
            f"### Per {title} (both classes of that {title})",
            "",
            f"| {title} | calls | EER |",
            "|---|---|---|",
        ]
        for v in sorted({str(c.get(key)) for c in rows}):
            sel = np.array([str(c.get(key)) == v for c in rows])
            if len(set(y[sel])) == 2:
                out.append(f"| {v} | {int(sel.sum())} | {fmt(eer(s[sel], y[sel])[0])} |")
    out += ["", "### By seconds of speech heard", "", "| speech | calls | EER |", "|---|---|---|"]
    for sec in SECONDS:
        sc = truncated_call_scores(model, dev, sec)
        ss, yy, rr = score_table(sc, dev)
        out.append(f"| {'whole call' if sec is None else f'first {sec} s'} | {len(rr)} | {fmt(eer(ss, yy)[0])} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="shipped model name or model stem (default: the shipped model)")
    ap.add_argument("--dev", default=str(REPO / "data" / "calls" / "dev.npz"))
    ap.add_argument("--markdown", default=None, help="also write the tables to this file")
    args = ap.parse_args()
    model = resolve_model(args.model)
    lines = [f"# Evaluation of {model.config.version}", ""] + evaluate(model, CallData.load(Path(args.dev)))
    print("\n".join(lines))
    if args.markdown:
        Path(args.markdown).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
