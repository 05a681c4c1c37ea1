"""Two models on the same dev calls: their EERs and the paired difference, with a 95 % interval.

    python scripts/compare_dev.py --models A B [--calls-dir data/calls] [--seed 0]

Both models score the same simulated dev calls (the seed's plan for A's channel recipe, as
scripts/evaluate.py picks them; B must cut its windows with the same VAD, else it refuses). The
interval of EER(A) - EER(B) comes from one cluster bootstrap (robot voices and human speakers
resampled with replacement, each replicate scoring both models on the same resampled calls), so
what the two models share (hard voices, easy speakers) cancels: a difference whose interval holds 0
is not one the dev split can tell from chance. Prints one Markdown table.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from evaluate import Scored, eval_sets  # noqa: E402

from robodetect.config import ModelError  # noqa: E402
from robodetect.detector import load  # noqa: E402
from robodetect.metrics import eer  # noqa: E402
from robodetect.protocol import bootstrap_ci  # noqa: E402
from robodetect.train import CallData  # noqa: E402


def paired_eer(scores_a: np.ndarray, scores_b: np.ndarray, labels: np.ndarray, clusters: np.ndarray) -> dict:
    """EER of each model and of their difference (A - B), each (value, low, high) over one paired
    cluster bootstrap of the calls both scored."""
    both = np.c_[scores_a, scores_b]
    out = {}
    for name, stat in (
        ("a", lambda s, y: eer(s[:, 0], y)[0]),
        ("b", lambda s, y: eer(s[:, 1], y)[0]),
        ("a_minus_b", lambda s, y: eer(s[:, 0], y)[0] - eer(s[:, 1], y)[0]),
    ):
        out[name] = bootstrap_ci(stat, both, labels, clusters)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs=2, required=True, metavar=("A", "B"))
    ap.add_argument("--calls-dir", default=str(REPO / "data" / "calls"))
    ap.add_argument("--seed", type=int, default=None, help="the dev plan's seed (default: A's training seed)")
    args = ap.parse_args(argv)
    try:
        a, b = (load(m).model for m in args.models)
    except (ModelError, OSError, ValueError) as exc:
        print(f"compare_dev: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    if asdict(a.config.vad) != asdict(b.config.vad):
        print("compare_dev: the two models cut windows with different VADs: no common dev calls", file=sys.stderr)
        return 1
    path, note = eval_sets(a, Path(args.calls_dir), args.seed, ("dev",))["dev"]
    if path is None:
        print(f"compare_dev: no dev calls in {args.calls_dir} (scripts/train.py builds them)", file=sys.stderr)
        return 1
    data = CallData.load(path)
    sa, sb = Scored(a, data), Scored(b, data)
    ids_a, ids_b = [c["call_id"] for c in sa.rows], [c["call_id"] for c in sb.rows]
    if ids_a != ids_b:  # a call either model could not score is left out of both
        keep = sorted(set(ids_a) & set(ids_b))
        pick = [np.array([ids.index(k) for k in keep], int) for ids in (ids_a, ids_b)]
        ma, mb, y, cl = sa.mean[pick[0]], sb.mean[pick[1]], sa.y[pick[0]], sa.cluster[pick[0]]
    else:
        ma, mb, y, cl = sa.mean, sb.mean, sa.y, sa.cluster
    r = paired_eer(ma, mb, y, cl)

    def pct(v: tuple[float, float, float], sign: str = "") -> str:
        return f"{100 * v[0]:{sign}.2f} [{100 * v[1]:{sign}.2f}, {100 * v[2]:{sign}.2f}]"

    print(
        f"dev calls: {path.name}{note}; {len(y)} calls ({int(y.sum())} robot), {len(np.unique(cl))} voices/speakers\n"
    )
    print(f"| dev call EER, % [95 % CI] | {args.models[0]} | {args.models[1]} | difference (first - second) |")
    print("|---|---|---|---|")
    print(f"| paired cluster bootstrap | {pct(r['a'])} | {pct(r['b'])} | {pct(r['a_minus_b'], '+')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
