"""What a longer window hop at scan time would cost in accuracy (issue 12's proposal, measured).

    python scripts/hop_effect.py [--model NAME|STEM] [--dev data/calls/dev-*.npz] [--hops 1 1.5 2]

The model scores 2 s windows every ``frontend.hop_seconds`` of speech (1 s for v2 and v3); the
model stage is most of a scan's CPU time, so a hop of K seconds divides it by about K. This scores
the dev calls with the exact window plan of each hop (:meth:`robodetect.train.CallData.replan`:
regular windows every K s and the end-aligned tail, re-cut from the stored speech), then reports the
call EER (95 % bootstrap CI over voices/speakers) and, at the model's own threshold and calibration
(fitted on the calibration split at the model's hop), the share of humans flagged and robots
caught, with the share of windows the model scores. Nothing is chosen here: the numbers say what
the change costs before a model adopts it (train.py --hop-seconds).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from robodetect.detector import load  # noqa: E402
from robodetect.metrics import eer  # noqa: E402
from robodetect.protocol import bootstrap_ci  # noqa: E402
from robodetect.train import CallData, call_scores  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="robodetect-v3")
    ap.add_argument("--dev", type=Path, default=None, help="dev calls (default: newest data/calls/dev-*.npz)")
    ap.add_argument("--hops", type=float, nargs="+", default=[1, 1.5, 2], help="hops in seconds (up to the 2 s window)")
    args = ap.parse_args()
    dev_path = args.dev or max((REPO / "data" / "calls").glob("dev-*.npz"), key=lambda p: p.stat().st_mtime)
    det = load(args.model)
    model, cfg = det.model, det.model.config
    own = cfg.frontend
    data = CallData.load(dev_path)
    base = data.replan(own.hop_samples)
    rows = [c for c in data.calls if c["call_id"] in set(base.call_of_window.tolist())]
    y = np.array([c["label"] == "robot" for c in rows], int)
    cl = np.array([c.get("identity") or c["speaker"] for c in rows])
    print(
        f"model {cfg.version} (hop {own.hop_seconds:g} s); {dev_path.name}: {len(rows)} dev calls; threshold {cfg.threshold:.3f}"
    )
    print("\n| hop | windows scored | call EER [95 % CI] | humans flagged | robots caught |\n|---|---|---|---|---|")
    try:
        for k in args.hops:
            cfg.frontend = replace(own, hop_seconds=float(k))
            means, _ = call_scores(model, data)
            s = np.array([means[c["call_id"]] for c in rows])
            p = cfg.probability(s)
            used = len(data.replan(cfg.frontend.hop_samples).windows) / len(base.windows)
            e = bootstrap_ci(lambda a, b: eer(a, b)[0], s, y, cl)
            fa, caught = float((p[y == 0] >= cfg.threshold).mean()), float((p[y == 1] >= cfg.threshold).mean())
            print(
                f"| {k:g} s | {100 * used:.0f} % | {100 * e[0]:.2f} % [{100 * e[1]:.2f}, {100 * e[2]:.2f}] | "
                f"{100 * fa:.2f} % | {100 * caught:.1f} % |"
            )
    finally:
        cfg.frontend = own
    return 0


if __name__ == "__main__":
    sys.exit(main())
