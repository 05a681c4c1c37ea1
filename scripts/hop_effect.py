"""What a longer window hop at scan time would cost in accuracy (issue 12's proposal, measured).

    python scripts/hop_effect.py [--model NAME|STEM] [--dev data/calls/dev-*.npz] [--hops 1 2 3]

The model scores 2 s windows every HOP_SECONDS (1 s) of speech; the model stage is most of a
scan's CPU time, so a hop of K seconds divides it by about K. This scores the dev calls' windows
once and forms each call's score from every K-th window (plus the call's last window, as the
end-aligned tail would be), then reports the call EER (95 % bootstrap CI over voices/speakers) and,
at the model's own threshold and calibration (fitted on the calibration split at hop 1), the share
of humans flagged and robots caught, with the share of windows the model would score. Nothing is
chosen here: the numbers say what the change would cost before a retraining adopts it.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from robodetect.detector import load  # noqa: E402
from robodetect.metrics import eer  # noqa: E402
from robodetect.protocol import bootstrap_ci  # noqa: E402
from robodetect.train import CallData, call_scores  # noqa: E402


def hop_scores(per_call: dict[int, list[float]], k: int) -> dict[int, float]:
    """Each call's mean logit over windows 0, k, 2k, ... and its last window."""
    out = {}
    for cid, z in per_call.items():
        idx = sorted(set(range(0, len(z), k)) | {len(z) - 1})
        out[cid] = float(np.mean([z[i] for i in idx]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="robodetect-v3")
    ap.add_argument("--dev", type=Path, default=None, help="dev calls (default: newest data/calls/dev-*.npz)")
    ap.add_argument("--hops", type=int, nargs="+", default=[1, 2, 3])
    args = ap.parse_args()
    dev_path = args.dev or max((REPO / "data" / "calls").glob("dev-*.npz"), key=lambda p: p.stat().st_mtime)
    det = load(args.model)
    model, cfg = det.model, det.model.config
    data = CallData.load(dev_path)
    means, logits = call_scores(model, data)
    per_call: dict[int, list[float]] = defaultdict(list)
    for cid, z in zip(data.call_of_window, logits):
        per_call[int(cid)].append(float(z))
    rows = [c for c in data.calls if c["call_id"] in per_call]
    y = np.array([c["label"] == "robot" for c in rows], int)
    cl = np.array([c.get("identity") or c["speaker"] for c in rows])
    total = sum(len(v) for v in per_call.values())
    print(
        f"model {cfg.version}; {dev_path.name}: {len(rows)} dev calls, {total} windows; threshold {cfg.threshold:.3f}"
    )
    print("\n| hop | windows scored | call EER [95 % CI] | humans flagged | robots caught |\n|---|---|---|---|---|")
    for k in args.hops:
        sc = hop_scores(per_call, k)
        if k == 1:  # the detector's own call score
            assert all(abs(sc[c] - means[c]) < 1e-5 for c in sc)
        s = np.array([sc[c["call_id"]] for c in rows])
        p = cfg.probability(s)
        used = sum(len(sorted(set(range(0, len(v), k)) | {len(v) - 1})) for v in per_call.values())
        e = bootstrap_ci(lambda a, b: eer(a, b)[0], s, y, cl)
        fa, caught = float((p[y == 0] >= cfg.threshold).mean()), float((p[y == 1] >= cfg.threshold).mean())
        print(
            f"| {k} s | {100 * used / total:.0f} % | {100 * e[0]:.2f} % [{100 * e[1]:.2f}, {100 * e[2]:.2f}] | "
            f"{100 * fa:.2f} % | {100 * caught:.1f} % |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
