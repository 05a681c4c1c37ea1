"""Does the depth of the noise floor inside speech tell the classes apart on the dev calls, and do two
recipes still differ once it cannot?

    python scripts/floor_cue.py --models A0 A1 vs B0 B1 --seed 0 [--calls-dir data/calls] [--json PATH]

Human source recordings carry their own room and microphone noise inside utterances; synthesised
robots do not. A model may learn "a shallow floor between syllables = human", which the simulated
dev calls reward and a phone with noise suppression (a human with a clean floor) punishes. This
script measures that cue on the dev calls the first model's channel recipe reads (as
scripts/compare_dev.py picks them) and asks whether a difference between two recipes survives when
the cue is balanced between the classes.

Per call, from the windows the models score: each 20 ms frame's level (dB), per window the
**floor depth** = 10th minus 50th percentile of its frame levels, per call the median over its
windows (more negative = quieter pauses and gaps relative to the speech). Printed:

1. the floor depth alone as a detector (EER in its better direction, cluster bootstrap 95 %
   interval) and its median per robot family and human source;
2. every model's EER and the difference of the sides' mean EERs (first - second), on the calls as
   they are and **reweighted** so that the humans' floor-depth distribution matches the robots'
   (weights over quintile bins of the robots' floor depth, fixed on the full sample; robots weigh
   1): one paired cluster bootstrap, the same resampled calls for every model and both readings;
3. per model and class, the Spearman correlation of its call logit with the floor depth (how far
   the score follows the floor inside a class).

The reweighting balances the one statistic measured here, not every cue the floor carries: a
difference that survives it is not shown to be free of the floor, one that vanishes is evidence
that it was the floor. The interval resamples calls, not training runs.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from compare_dev import common_dev, pct  # noqa: E402

from robodetect import jsonio  # noqa: E402
from robodetect.metrics import eer  # noqa: E402
from robodetect.protocol import bootstrap_ci  # noqa: E402

FRAME = 160  # 20 ms at 8 kHz
N_BINS = 5


def window_floor_depth(windows: np.ndarray) -> np.ndarray:
    """Per window (rows of int16 or float samples): 10th minus 50th percentile of its 20 ms frame
    levels in dB (a frame of digital zeros counts at -120 dB)."""
    x = np.asarray(windows, np.float64) / 32768.0
    n = x.shape[1] // FRAME
    power = np.mean(x[:, : n * FRAME].reshape(len(x), n, FRAME) ** 2, axis=2)
    level = 10.0 * np.log10(power + 1e-12)
    p10, p50 = np.percentile(level, [10, 50], axis=1)
    return p10 - p50


def call_floor_depth(windows: np.ndarray, call_of_window: np.ndarray, call_ids) -> np.ndarray:
    """Per call id (in ``call_ids`` order): the median floor depth over its windows; NaN without any."""
    depth = np.empty(len(windows))
    for start in range(0, len(windows), 512):  # bounded memory on long dev sets
        depth[start : start + 512] = window_floor_depth(windows[start : start + 512])
    per = defaultdict(list)
    for cid, d in zip(call_of_window.tolist(), depth):
        per[int(cid)].append(d)
    return np.array([float(np.median(per[int(c)])) if per.get(int(c)) else np.nan for c in call_ids])


def match_weights(stat: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS) -> tuple[np.ndarray, list[dict]]:
    """Weights that give the humans the robots' distribution of ``stat`` over ``n_bins`` quantile bins
    of the robots' values (robots weigh 1; a human in bin b weighs robot share / human share of b,
    scaled so that the humans' weights sum to their count). Also the bins: edges, counts, weight.
    A bin with robots and no humans cannot be matched: ValueError."""
    stat, labels = np.asarray(stat, float), np.asarray(labels, int)
    inner = np.quantile(stat[labels == 1], np.linspace(0, 1, n_bins + 1)[1:-1])
    edges = np.concatenate([[-np.inf], np.unique(inner), [np.inf]])
    b = np.clip(np.searchsorted(edges, stat, side="right") - 1, 0, len(edges) - 2)
    w = np.ones(len(stat))
    bins = []
    n_rob, n_hum = int((labels == 1).sum()), int((labels == 0).sum())
    for k in range(len(edges) - 1):
        r, h = int(((b == k) & (labels == 1)).sum()), int(((b == k) & (labels == 0)).sum())
        if r and not h:
            raise ValueError(f"floor-depth bin {k} holds {r} robot calls and no human call: cannot match")
        wk = (r / n_rob) / (h / n_hum) if h else 0.0
        w[(b == k) & (labels == 0)] = wk
        bins.append({"low": float(edges[k]), "high": float(edges[k + 1]), "robots": r, "humans": h, "weight": wk})
    return w, bins


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (tied values share their mean rank); NaN when either is constant."""
    ra, rb = (rankdata(v) for v in (a, b))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def analyse(scores: np.ndarray, depth: np.ndarray, labels: np.ndarray, clusters: np.ndarray, n_a: int) -> dict:
    """Everything printed, from per-call model scores (calls x models; the first ``n_a`` columns are
    the first side), floor depths, labels (1 robot) and clusters (voice / speaker)."""
    w, bins = match_weights(depth, labels)
    direction = 1.0 if eer(depth, labels)[0] <= eer(-depth, labels)[0] else -1.0
    n = scores.shape[1]
    packed = np.c_[w, depth, scores]  # the bootstrap resamples rows: weights travel with their call

    def mean_eer(s, y, cols, weighted):
        return float(np.mean([eer(s[:, 2 + k], y, s[:, 0] if weighted else None)[0] for k in cols]))

    a_cols, b_cols = range(n_a), range(n_a, n)
    out = {
        "floor_alone": bootstrap_ci(lambda s, y: eer(direction * s[:, 1], y)[0], packed, labels, clusters),
        "floor_direction": "deeper floor = robot" if direction < 0 else "shallower floor = robot",
        "bins": bins,
        "models": [],
    }
    for weighted in (False, True):
        key = "reweighted" if weighted else "as_is"
        out[key] = {
            "a": bootstrap_ci(lambda s, y, wt=weighted: mean_eer(s, y, a_cols, wt), packed, labels, clusters),
            "b": bootstrap_ci(lambda s, y, wt=weighted: mean_eer(s, y, b_cols, wt), packed, labels, clusters),
            "a_minus_b": bootstrap_ci(
                lambda s, y, wt=weighted: mean_eer(s, y, a_cols, wt) - mean_eer(s, y, b_cols, wt),
                packed,
                labels,
                clusters,
            ),
        }
    for k in range(n):
        out["models"].append(
            {
                "eer": eer(scores[:, k], labels)[0],
                "eer_reweighted": eer(scores[:, k], labels, w)[0],
                "spearman_robots": spearman(scores[labels == 1, k], depth[labels == 1]),
                "spearman_humans": spearman(scores[labels == 0, k], depth[labels == 0]),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", required=True, metavar="MODEL", help="A B, or A1 A2 ... vs B1 B2 ...")
    ap.add_argument("--calls-dir", default=str(REPO / "data" / "calls"))
    ap.add_argument("--seed", type=int, default=None, help="the dev plan's seed (default: A's training seed)")
    ap.add_argument("--json", default=None, metavar="PATH", help="also write the figures as JSON")
    args = ap.parse_args(argv)
    try:
        sides, models, path, note, data, scored, pick = common_dev(
            args.models, Path(args.calls_dir), args.seed, "floor_cue"
        )
    except LookupError as exc:
        print(f"floor_cue: {exc}", file=sys.stderr)
        return 1
    names = sides[0] + sides[1]
    if len({m.config.frontend.hop_samples for m in models}) > 1:
        print("floor_cue: the models cut windows with different hops: no common windows", file=sys.stderr)
        return 1
    rows = [scored[0].rows[i] for i in pick[0]]
    y, cl = scored[0].y[pick[0]], scored[0].cluster[pick[0]]
    if len(np.unique(y)) < 2:
        print("floor_cue: no dev calls of both labels scored by every model", file=sys.stderr)
        return 1
    planned = data.replan(models[0].config.frontend.hop_samples)
    depth = call_floor_depth(planned.windows, planned.call_of_window, [c["call_id"] for c in rows])
    scores = np.stack([sc.mean[k] for sc, k in zip(scored, pick)], axis=1)
    try:
        r = analyse(scores, depth, y, cl, len(sides[0]))
    except ValueError as exc:
        print(f"floor_cue: {exc}", file=sys.stderr)
        return 1

    print(
        f"dev calls: {path.name}{note}; {len(y)} calls ({int(y.sum())} robot), {len(np.unique(cl))} voices/speakers\n"
    )
    print(f"floor depth alone: EER {pct(r['floor_alone'])} ({r['floor_direction']})\n")
    groups = defaultdict(list)
    for c, d in zip(rows, depth):
        groups[(c["label"], c.get("group"))].append(d)
    print("| class | family / source | calls | median floor depth, dB |\n|---|---|---|---|")
    for (label, group), ds in sorted(groups.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        print(f"| {label} | {group} | {len(ds)} | {np.median(ds):.1f} |")
    print("\n| bin (robots' quintiles), dB | robots | humans | human weight |\n|---|---|---|---|")
    for b in r["bins"]:
        print(f"| {b['low']:.1f} to {b['high']:.1f} | {b['robots']} | {b['humans']} | {b['weight']:.2f} |")
    a_name, b_name = (f"mean({', '.join(s)})" if len(s) > 1 else s[0] for s in sides)
    print(f"\n| dev call EER, % [95 % CI] | {a_name} | {b_name} | difference (first - second) |\n|---|---|---|---|")
    for key, label in (("as_is", "calls as they are"), ("reweighted", "humans reweighted to the robots' floor")):
        v = r[key]
        print(f"| {label} | {pct(v['a'])} | {pct(v['b'])} | {pct(v['a_minus_b'], '+')} |")
    print("\n| model | side | EER % | EER % reweighted | Spearman(logit, floor) robots / humans |")
    print("|---|---|---|---|---|")
    for k, (name, m) in enumerate(zip(names, r["models"])):
        side = "first" if k < len(sides[0]) else "second"
        print(
            f"| {name} | {side} | {100 * m['eer']:.2f} | {100 * m['eer_reweighted']:.2f} | "
            f"{m['spearman_robots']:+.2f} / {m['spearman_humans']:+.2f} |"
        )
    if args.json:
        r.update(dev_calls=path.name, models_first=sides[0], models_second=sides[1])
        for m, name in zip(r["models"], names):
            m["model"] = name
        try:
            Path(args.json).write_text(jsonio.dumps(r, indent=1) + "\n")
        except OSError as exc:
            print(f"floor_cue: cannot write {args.json}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
