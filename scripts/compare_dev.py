"""Two models on the same dev calls: their EERs and the paired difference, with a 95 % interval.

    python scripts/compare_dev.py --models A B [--calls-dir data/calls] [--seed 0]
    python scripts/compare_dev.py --models A0 A1 vs B0 B1 --seed 0   # two recipes, each at two seeds

Both models score the same simulated dev calls (the seed's plan for A's channel recipe, as
scripts/evaluate.py picks them; B must cut its windows with the same VAD, else it refuses). The
interval of EER(A) - EER(B) comes from one cluster bootstrap (robot voices and human speakers
resampled with replacement, each replicate scoring both models on the same resampled calls), so
what the two models share (hard voices, easy speakers) cancels: a difference whose interval holds 0
is not one the dev split can tell from chance. Prints one Markdown table. With ``vs``, each side is
one recipe's models (seeds): the difference of the sides' mean EERs, paired the same way, then each
model's EER on the same calls (one run of a recipe differs from the next by 1-2.5 dev points,
session 26: a recipe is read from its mean over seeds).
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
    return paired_means(np.c_[scores_a], np.c_[scores_b], labels, clusters)


def paired_means(scores_a: np.ndarray, scores_b: np.ndarray, labels: np.ndarray, clusters: np.ndarray) -> dict:
    """The mean EER over the models of each side (columns: one per model, rows: the same calls) and
    the difference of those means (A - B), each (value, low, high) over one paired cluster bootstrap:
    every replicate scores every model on the same resampled calls, so a recipe run at two seeds is
    compared with another run at two seeds on what the calls share, its seeds' spread inside the
    interval only as far as it moves the mean."""
    scores_a, scores_b = np.atleast_2d(scores_a.T).T, np.atleast_2d(scores_b.T).T
    na = scores_a.shape[1]
    both = np.c_[scores_a, scores_b]

    def mean_eer(s: np.ndarray, y: np.ndarray, cols: range) -> float:
        return float(np.mean([eer(s[:, k], y)[0] for k in cols]))

    a_cols, b_cols = range(na), range(na, both.shape[1])
    out = {}
    for name, stat in (
        ("a", lambda s, y: mean_eer(s, y, a_cols)),
        ("b", lambda s, y: mean_eer(s, y, b_cols)),
        ("a_minus_b", lambda s, y: mean_eer(s, y, a_cols) - mean_eer(s, y, b_cols)),
    ):
        out[name] = bootstrap_ci(stat, both, labels, clusters)
    return out


def split_sides(models: list[str]) -> tuple[list[str], list[str]] | None:
    """``A B`` or ``A1 A2 ... vs B1 B2 ...`` as the two sides; None when that is not what was given."""
    if "vs" not in models:
        return ([models[0]], [models[1]]) if len(models) == 2 else None
    k = models.index("vs")
    a, b = models[:k], models[k + 1 :]
    return (a, b) if a and b and "vs" not in b else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--models",
        nargs="+",
        required=True,
        metavar="MODEL",
        help="A B, or A1 A2 ... vs B1 B2 ... (the mean EER of each side: one recipe at several seeds)",
    )
    ap.add_argument("--calls-dir", default=str(REPO / "data" / "calls"))
    ap.add_argument("--seed", type=int, default=None, help="the dev plan's seed (default: A's training seed)")
    args = ap.parse_args(argv)
    sides = split_sides(args.models)
    if sides is None:
        print("compare_dev: --models takes A B, or A1 A2 ... vs B1 B2 ...", file=sys.stderr)
        return 1
    names = sides[0] + sides[1]
    try:
        models = [load(m).model for m in names]
    except (ModelError, OSError, ValueError) as exc:
        print(f"compare_dev: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    if any(asdict(m.config.vad) != asdict(models[0].config.vad) for m in models[1:]):
        print("compare_dev: the models cut windows with different VADs: no common dev calls", file=sys.stderr)
        return 1
    path, note = eval_sets(models[0], Path(args.calls_dir), args.seed, ("dev",))["dev"]
    if path is None:
        print(f"compare_dev: no dev calls in {args.calls_dir} (scripts/train.py builds them)", file=sys.stderr)
        return 1
    data = CallData.load(path)
    scored = [Scored(m, data) for m in models]
    ids = [[c["call_id"] for c in s.rows] for s in scored]
    # a call any model could not score is left out of all
    keep = sorted(set(ids[0]).intersection(*ids[1:])) if any(i != ids[0] for i in ids) else ids[0]
    pick = [np.array([i.index(k) for k in keep], int) if i != keep else np.arange(len(i)) for i in ids]
    cols = np.stack([s.mean[p] for s, p in zip(scored, pick)], axis=1)
    y, cl = scored[0].y[pick[0]], scored[0].cluster[pick[0]]
    na = len(sides[0])
    r = paired_means(cols[:, :na], cols[:, na:], y, cl)

    def pct(v: tuple[float, float, float], sign: str = "") -> str:
        return f"{100 * v[0]:{sign}.2f} [{100 * v[1]:{sign}.2f}, {100 * v[2]:{sign}.2f}]"

    print(
        f"dev calls: {path.name}{note}; {len(y)} calls ({int(y.sum())} robot), {len(np.unique(cl))} voices/speakers\n"
    )
    a_name, b_name = (" + ".join(side) if len(side) > 1 else side[0] for side in sides)
    what = "mean " if len(names) > 2 else ""
    print(f"| dev call {what}EER, % [95 % CI] | {a_name} | {b_name} | difference (first - second) |")
    print("|---|---|---|---|")
    print(f"| paired cluster bootstrap | {pct(r['a'])} | {pct(r['b'])} | {pct(r['a_minus_b'], '+')} |")
    if len(names) > 2:  # each model on its own, on the same calls
        print("\n| model | side | dev call EER, % [95 % CI] |\n|---|---|---|")
        for k, name in enumerate(names):
            one = bootstrap_ci(lambda s, yy: eer(s, yy)[0], cols[:, k], y, cl)
            print(f"| {name} | {'first' if k < na else 'second'} | {pct(one)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
