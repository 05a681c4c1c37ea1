"""Two models on the same dev calls: their EERs and the paired difference, with a 95 % interval.

    python scripts/compare_dev.py --models A B [--calls-dir data/calls] [--seed 0]
    python scripts/compare_dev.py --models A0 A1 vs B0 B1 --seed 0   # two recipes, each at two seeds

Both models score the same simulated dev calls (the seed's plan for A's channel recipe, as
scripts/evaluate.py picks them; B must cut its windows with the same VAD, else it refuses). The
interval of EER(A) - EER(B) comes from one cluster bootstrap (robot voices and human speakers
resampled with replacement, each replicate scoring both models on the same resampled calls), so
what the two models share (hard voices, easy speakers) cancels: a difference whose interval holds 0
is not one the dev split can tell from chance. Prints one Markdown table. With ``vs``, each side is
one recipe's models (seeds): the difference of the sides' mean EERs, paired the same way, each
model's EER on the same calls, each side's spread over its models and, with as many models on each
side, the paired difference of each pair by position (seed k against seed k). One run of a recipe
differs from the next by 1-2.5 dev points (session 26), and the interval resamples calls, not
training runs: it does not hold that spread, which the per-model rows show.

    python scripts/compare_dev.py --models A B --calls-dir DIR --measure eer caught@0.01 \
        --keep human:ns=yes --keep robot:ns=no [--by-group]

``--measure`` takes several measures, each printed from the same scores: ``eer`` and ``caught@F``
(robots caught at the score that flags F of these humans: the low-false-alarm end of the ROC, where
the product's target lies; a ranking measure, since the threshold is read on the same calls).
``--keep CLASS:STAGE=yes|no`` keeps only that class's calls with (without) a channel stage of the
call plan (``ns`` handset suppression, ``mp3``, ``resampled``): a channel mix in which the stage marks
a class, which shows whether a model's figures depend on which class a channel favours.
``--by-group`` adds the paired difference per robot family and per human source.
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
from robodetect.metrics import eer, threshold_for_false_alarm  # noqa: E402
from robodetect.protocol import bootstrap_ci  # noqa: E402
from robodetect.train import CallData  # noqa: E402


def eer_of(s: np.ndarray, y: np.ndarray) -> float:
    return eer(s, y)[0]


def caught_at(false_alarm: float):
    """The measure "robots caught at the score that flags <= ``false_alarm`` of these humans": a
    ranking measure of the low-false-alarm end of the ROC (the threshold is read on the same calls,
    so it is not an operating point a user gets; the calibrated threshold's figures are
    scripts/evaluate.py's)."""

    def measure(s: np.ndarray, y: np.ndarray) -> float:
        t = threshold_for_false_alarm(s[y == 0], false_alarm)
        return float(np.mean(s[y == 1] >= t))

    measure.false_alarm = false_alarm
    return measure


def parse_measure(text: str):
    """``eer`` or ``caught@F`` (0 < F < 1) as (callable, label); ValueError otherwise."""
    if text == "eer":
        return eer_of, "EER"
    if text.startswith("caught@"):
        try:
            f = float(text.split("@", 1)[1])
        except ValueError:
            f = float("nan")
        if 0 < f < 1:
            return caught_at(f), f"robots caught at {100 * f:g} % humans flagged (threshold read on these calls)"
    raise ValueError(f"--measure takes eer or caught@F with 0 < F < 1, not {text!r}")


def parse_keep(text: str):
    """``CLASS:STAGE=yes|no`` as a predicate on a call row: calls of another class pass; calls of
    CLASS pass when STAGE is in their plan (yes) or is not (no): the simulator records a stage only
    where it applied it, so presence is the test (an MP3 quality of 0.0 is an MP3 round trip, as in
    scripts/evaluate.py's channel stages). The predicate's ``stage`` is STAGE. ValueError otherwise."""
    try:
        cls, rest = text.split(":", 1)
        stage, want = rest.split("=", 1)
    except ValueError:
        raise ValueError(f"--keep takes CLASS:STAGE=yes|no, not {text!r}") from None
    if cls not in ("robot", "human") or want not in ("yes", "no") or not stage:
        raise ValueError(f"--keep takes robot|human:STAGE=yes|no, not {text!r}")

    def keep(c: dict) -> bool:
        return c.get("label") != cls or (stage in c) == (want == "yes")

    keep.stage = stage
    return keep


def paired_eer(scores_a: np.ndarray, scores_b: np.ndarray, labels: np.ndarray, clusters: np.ndarray) -> dict:
    """EER of each model and of their difference (A - B), each (value, low, high) over one paired
    cluster bootstrap of the calls both scored."""
    return paired_means(np.c_[scores_a], np.c_[scores_b], labels, clusters)


def paired_means(
    scores_a: np.ndarray, scores_b: np.ndarray, labels: np.ndarray, clusters: np.ndarray, measure=eer_of
) -> dict:
    """The mean EER over the models of each side (columns: one per model, rows: the same calls) and
    the difference of those means (A - B), each (value, low, high) over one paired cluster bootstrap:
    every replicate scores every model on the same resampled calls, so what the calls share cancels.
    The models are fixed: the interval holds the dev calls' sampling, not the spread between training
    runs of a recipe."""
    scores_a, scores_b = np.atleast_2d(scores_a.T).T, np.atleast_2d(scores_b.T).T
    na = scores_a.shape[1]
    both = np.c_[scores_a, scores_b]

    def mean_eer(s: np.ndarray, y: np.ndarray, cols: range) -> float:
        return float(np.mean([measure(s[:, k], y) for k in cols]))

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
    ap.add_argument(
        "--by-group",
        action="store_true",
        help="also the paired difference per robot family (against every human) and per human source "
        "(against every robot): where a difference comes from",
    )
    ap.add_argument(
        "--measure",
        nargs="+",
        default=["eer"],
        help="eer (default), and/or caught@F: robots caught at the score that flags <= F of the dev humans "
        "(e.g. caught@0.01; a ranking measure of the ROC's low-false-alarm end, threshold read on these calls)",
    )
    ap.add_argument(
        "--keep",
        action="append",
        default=[],
        metavar="CLASS:STAGE=yes|no",
        help="keep only the CLASS (robot / human) calls that did (yes) or did not (no) get channel STAGE "
        "(a call-plan field such as ns, mp3, resampled); repeatable, e.g. --keep human:ns=yes --keep robot:ns=no: "
        "a channel mix in which the stage marks a class",
    )
    ap.add_argument(
        "--mixes",
        default=None,
        metavar="STAGE",
        help="print every table three times from one scoring: every call, humans with STAGE and robots without "
        "it, and the reverse (e.g. --mixes ns: where the handset suppressor marks one class); not with --keep",
    )
    args = ap.parse_args(argv)
    if args.mixes is not None and args.keep:
        print("compare_dev: --mixes and --keep do not go together", file=sys.stderr)
        return 1
    selections = mix_selections(args.mixes, args.keep)
    try:
        measures = [parse_measure(m) for m in args.measure]
        keeps = [parse_keep(k) for _, texts in selections for k in texts]
    except ValueError as exc:
        print(f"compare_dev: {exc}", file=sys.stderr)
        return 1
    try:
        sides, models, path, note, data, scored, pick = common_dev(args.models, Path(args.calls_dir), args.seed)
    except LookupError as exc:
        print(f"compare_dev: {exc}", file=sys.stderr)
        return 1
    rows = [scored[0].rows[i] for i in pick[0]]
    absent = sorted({k.stage for k in keeps if not any(k.stage in c for c in rows)})
    if absent:
        print(f"compare_dev: no dev call has the stage {absent[0]!r} (a typo?)", file=sys.stderr)
        return 1
    rc = 0
    for n, (title, texts) in enumerate(selections):
        if title is not None:
            print(f"{'' if n == 0 else chr(10)}## {title}\n")
        rc = max(rc, report(sides, scored, pick, rows, path, note, texts, args, measures))
    return rc


def mix_selections(stage: str | None, keep: list[str]) -> list[tuple[str | None, list[str]]]:
    """(title, --keep specs) per block to print: with ``stage``, every call and the two mixes in which
    the stage marks one class; without, one untitled block of ``keep``."""
    if stage is None:
        return [(None, keep)]
    return [
        ("every call", []),
        (f"humans with {stage}, robots without", [f"human:{stage}=yes", f"robot:{stage}=no"]),
        (f"humans without {stage}, robots with", [f"human:{stage}=no", f"robot:{stage}=yes"]),
    ]


def report(sides, scored, pick, rows, path, note, keep_texts, args, measures) -> int:
    """Every measure's tables on the calls ``keep_texts`` (``--keep`` specs) keep; 1 when they hold
    no calls of both labels (said on stderr), else 0."""
    names = sides[0] + sides[1]
    keeps = [parse_keep(k) for k in keep_texts]
    sel = np.array([all(keep(c) for keep in keeps) for c in rows], bool)
    pick = [k[sel] for k in pick]
    y, cl = scored[0].y[pick[0]], scored[0].cluster[pick[0]]
    if len(np.unique(y)) < 2:
        after = f" after --keep {' '.join(keep_texts)}" if keeps else ""
        print(f"compare_dev: the models share no dev calls of both labels{after}: nothing to compare", file=sys.stderr)
        return 1
    n_humans = int((y == 0).sum())
    for text, (measure, _) in zip(args.measure, measures):
        if getattr(measure, "false_alarm", 1.0) * n_humans < 1:
            print(
                f"compare_dev: {text} with {n_humans} dev humans lets none of them be flagged: it reads the "
                "robots scored above every human",
                file=sys.stderr,
            )
    cols = np.stack([sc.mean[k] for sc, k in zip(scored, pick)], axis=1)
    print(
        f"dev calls: {path.name}{note}, the channel recipe of {names[0]} (the first model's); {len(y)} calls "
        f"({int(y.sum())} robot), {len(np.unique(cl))} voices/speakers"
    )
    if keeps:
        print(f"calls kept: {', '.join(keep_texts)} ({len(rows) - int(sel.sum())} left out)")
    groups = np.array([str(scored[0].rows[i].get("group")) for i in pick[0]]) if args.by_group else None
    for text, (measure, measure_name) in zip(args.measure, measures):
        print_measure(sides, cols, y, cl, text, measure, measure_name, groups)
    return 0


def pct(v: tuple[float, float, float], sign: str = "") -> str:
    return f"{100 * v[0]:{sign}.2f} [{100 * v[1]:{sign}.2f}, {100 * v[2]:{sign}.2f}]"


def print_measure(sides, cols, y, cl, short, measure, measure_name, groups=None) -> None:
    """The tables of one measure: the sides' means and their paired difference; with more than two
    models each model, each side's spread and each pair by position; with ``groups``, per group."""
    names = sides[0] + sides[1]
    na = len(sides[0])
    r = paired_means(cols[:, :na], cols[:, na:], y, cl, measure)
    if short != "eer":
        print(f"\nmeasure: {measure_name}")
    print()
    a_name, b_name = (f"mean({', '.join(side)})" if len(side) > 1 else side[0] for side in sides)
    what = "mean " if len(names) > 2 else ""
    short = "EER" if short == "eer" else short
    print(f"| dev call {what}{short}, % [95 % CI] | {a_name} | {b_name} | difference (first - second) |")
    print("|---|---|---|---|")
    print(f"| paired cluster bootstrap | {pct(r['a'])} | {pct(r['b'])} | {pct(r['a_minus_b'], '+')} |")
    if len(names) > 2:
        print(
            "\nThe interval resamples dev voices and speakers; the models are fixed, so run-to-run (seed) spread"
            " is not in it: read it with the spread below."
        )
        print(f"\n| model | side | dev call {short}, % [95 % CI] |\n|---|---|---|")
        single = []
        for k, name in enumerate(names):
            single.append(bootstrap_ci(measure, cols[:, k], y, cl))
            print(f"| {name} | {'first' if k < na else 'second'} | {pct(single[k])} |")
        for side, ks in (("first", range(na)), ("second", range(na, len(names)))):
            if len(ks) > 1:
                v = 100 * np.array([single[k][0] for k in ks])
                print(f"\nspread over the {side} side's models: sd {v.std(ddof=1):.2f} points (range {np.ptp(v):.2f})")
        if na == len(names) - na:  # seeds paired by position: A_k - B_k
            print("\n| pair (by position) | difference, % [95 % CI] |\n|---|---|")
            for k in range(na):
                d = bootstrap_ci(
                    lambda s_, y_: measure(s_[:, 0], y_) - measure(s_[:, 1], y_), cols[:, [k, na + k]], y, cl
                )
                print(f"| {names[k]} - {names[na + k]} | {pct(d, '+')} |")
    if groups is not None:
        print(
            "\n| group (robot family vs every human; human source vs every robot) | calls | first | second |"
            " difference (first - second) |\n|---|---|---|---|---|"
        )
        for label, group, g in by_group(cols, y, cl, groups, na, measure):
            print(f"| {label} {group} | {int(g['n'])} | {pct(g['a'])} | {pct(g['b'])} | {pct(g['a_minus_b'], '+')} |")


def by_group(cols: np.ndarray, y: np.ndarray, cl: np.ndarray, groups: np.ndarray, na: int, measure=eer_of):
    """Per robot family (its robots against every human) and per human source (its humans against
    every robot): (label, group, paired_means(...) plus the group's call count), robots first."""
    for label, cls in (("robot", 1), ("human", 0)):
        for group in sorted(set(groups[y == cls])):
            keep = (y != cls) | (groups == group)
            g = paired_means(cols[keep, :na], cols[keep, na:], y[keep], cl[keep], measure)
            g["n"] = int(((groups == group) & (y == cls)).sum())
            yield label, group, g


def common_dev(model_args: list[str], calls_dir: Path, seed: int | None, tool: str = "compare_dev"):
    """The dev calls every model of ``A B`` / ``A1 ... vs B1 ...`` scores: (sides, models, path of the
    calls, note on which, CallData, Scored per model, row picks from :func:`align`). Calls one model
    could not score are left out for all (said on stderr, after ``tool``). LookupError (one line) for anything that
    leaves nothing to compare: bad sides, an unloadable model, another VAD, no calls."""
    sides = split_sides(model_args)
    if sides is None:
        raise LookupError("--models takes A B, or A1 A2 ... vs B1 B2 ...")
    names = sides[0] + sides[1]
    try:
        models = [load(m).model for m in names]
    except (ModelError, OSError, ValueError) as exc:
        raise LookupError(" ".join(str(exc).split())) from None
    other = next((n for n, m in zip(names, models) if asdict(m.config.vad) != asdict(models[0].config.vad)), None)
    if other is not None:
        raise LookupError(f"{other} cuts windows with another VAD than {names[0]}: no common dev calls")
    path, note = eval_sets(models[0], calls_dir, seed, ("dev",))["dev"]
    if path is None:
        raise LookupError(f"no dev calls in {calls_dir} (scripts/train.py builds them)")
    data = CallData.load(path)
    scored = [Scored(m, data) for m in models]
    pick, dropped = align([[c["call_id"] for c in sc.rows] for sc in scored])
    for name, n in zip(names, dropped):
        if n:
            print(f"{tool}: {n} dev calls {name} scored, another model could not: left out", file=sys.stderr)
    return sides, models, path, note, data, scored, pick


def align(ids: list[list]) -> tuple[list[np.ndarray], list[int]]:
    """Index arrays that pick, from each model's rows, the calls every model scored (in the first
    model's order), and how many calls each model scored beyond those (left out for all)."""
    common = set(ids[0]).intersection(*ids[1:])
    keep = [k for k in ids[0] if k in common]
    pick = []
    for i in ids:
        at = {k: n for n, k in enumerate(i)}
        pick.append(np.array([at[k] for k in keep], int))
    return pick, [len(i) - len(keep) for i in ids]


if __name__ == "__main__":
    sys.exit(main())
