"""Rank training recipes on their family leave-outs over several seeds.

One leave-out run per recipe is not a ranking: the same recipe's mean over the seven robot families
moved 7.4 points between two seeds (model card, session 11), more than any recipe difference
measured before. This script reads ``scripts/train.py --loo --results DIR`` outputs (``loo.json``)
named ``<recipe>-seed<k>.json`` and prints, per family and for the mean over families, each
recipe's mean, standard deviation and range over its seeds, then the paired difference between
every two recipes over the seeds both ran: the same seed simulates the same calls for every recipe,
so the pair differs only in the recipe (and the initialisation it implies).

    python scripts/loo_seeds.py docs/leaveouts/*.json
    python scripts/loo_seeds.py docs/leaveouts/*.json --families festvox vits espeak-ng

A ``scripts/loo_ensemble.py --json`` output of **one** member reads as that member's leave-outs
scored on ``--seed``'s calls: how leave-out models of one recipe score the calls simulated for
another (e.g. a channel augmentation's models on calls without it), paired with that recipe's own
run of the same seed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from pathlib import Path

import numpy as np

FAMILIES = ("festvox", "vits", "espeak-ng", "zs-tts", "kokoro", "neural-vocoder", "dsp-vocoder")
NAME = re.compile(r"^(?P<recipe>.+)-seed(?P<seed>\d+)$")


def load_runs(paths: list[Path], measure: str = "eer") -> dict[str, dict[int, dict[str, float]]]:
    """{recipe: {seed: {group: value}}} from files named ``<recipe>-seed<k>.json``; ``measure`` is
    a key of the groups' rows (``eer``, ``eer_zh``, ``flagged_at_threshold``)."""
    runs: dict[str, dict[int, dict[str, float]]] = {}
    for path in paths:
        m = NAME.match(path.stem)
        if not m:
            raise ValueError(f"{path}: name must be <recipe>-seed<k>.json")
        data = json.loads(path.read_text())
        try:
            rows = {g: _member_row(v) for g, v in data.items() if isinstance(v, dict)}
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
        eers = {g: float(v[measure]) for g, v in rows.items() if measure in v}
        runs.setdefault(m["recipe"], {})[int(m["seed"])] = eers
    return runs


def option_set(flags: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """``flags`` as options with their values, in sorted order: the same recipe given in another
    order is the same recipe."""
    groups: list[tuple[str, ...]] = []
    for token in flags:
        if token.startswith("--") or not groups:
            groups.append((token,))
        else:
            groups[-1] += (token,)
    return tuple(sorted(groups))


def _member_row(row: dict) -> dict:
    """A group's row: train.py's as it is; loo_ensemble.py's of one member, that member's (an
    ensemble of several is not one recipe's leave-out: its rows are refused)."""
    if "members" not in row:
        return row
    if len(row["members"]) != 1:
        raise ValueError(f"a loo_ensemble output of {len(row['members'])} members is not one recipe's run")
    return row["members"][0]


def recipe_flags(path: Path) -> tuple[str, ...] | None:
    """The training flags a result file records (``_run.argv`` of newer runs) without the ones that
    differ between seeds of one recipe (--seed, --results, --loo-groups; loo_ensemble's --members,
    --json); None when not recorded."""
    run = json.loads(path.read_text()).get("_run")
    if not isinstance(run, dict) or "argv" not in run:
        return None
    flags, drop = [], None  # drop: "one" (the option's value) or "many" (values up to the next option)
    for token in run["argv"]:
        if token.startswith("--"):
            drop = {"--seed": "one", "--results": "one", "--json": "one", "--loo-groups": "many", "--members": "many"}
            drop = drop.get(token)
            if drop is None:
                flags.append(token)
        elif drop == "one":
            drop = None
        elif drop is None:
            flags.append(token)
    return tuple(flags)


def family_mean(eers: dict[str, float], families: tuple[str, ...]) -> float | None:
    """Mean EER over ``families`` (None unless the run has every one of them)."""
    if not all(f in eers for f in families):
        return None
    return float(np.mean([eers[f] for f in families]))


def spread(values: list[float]) -> dict[str, float]:
    """n, mean, sample standard deviation (0 for one value), min, max."""
    a = np.asarray(values, dtype=float)
    return {
        "n": len(a),
        "mean": float(a.mean()),
        "sd": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
        "min": float(a.min()),
        "max": float(a.max()),
    }


def summarise(runs: dict[str, dict[int, dict[str, float]]], families: tuple[str, ...], worst=max) -> dict:
    """Per recipe: spread over seeds of each family's value and of the family mean (and of the worst
    family's, ``worst`` picking it from a run's families);
    per pair of recipes: the per-seed differences of the family mean over their common seeds."""
    out: dict = {"recipes": {}, "pairs": {}}
    for recipe, seeds in runs.items():
        rows = {
            f: spread([s[f] for s in seeds.values() if f in s]) for f in families if any(f in s for s in seeds.values())
        }
        means = [m for m in (family_mean(s, families) for s in seeds.values()) if m is not None]
        worst_rows = [
            worst(s[f] for f in families) for s in seeds.values() if worst and family_mean(s, families) is not None
        ]
        out["recipes"][recipe] = {"families": rows, "seeds": sorted(seeds)}
        if means:
            out["recipes"][recipe]["mean"] = spread(means)
            if worst_rows:
                out["recipes"][recipe]["worst"] = spread(worst_rows)
    for a, b in itertools.combinations(sorted(runs), 2):
        common = sorted(set(runs[a]) & set(runs[b]))
        diffs = {}
        for seed in common:
            ma, mb = family_mean(runs[a][seed], families), family_mean(runs[b][seed], families)
            if ma is not None and mb is not None:
                diffs[seed] = ma - mb
        if diffs:
            out["pairs"][f"{a} - {b}"] = {"per_seed": diffs, **spread(list(diffs.values()))}
    return out


def worst_of(measure: str, groups: tuple[str, ...]):
    """How a run's worst group is picked: the highest EER; for the share flagged at the threshold,
    the lowest among robot families (fewest caught) but the highest among human sources (most
    false alarms); None (no worst row) for a mix of the two."""
    if measure != "flagged_at_threshold":
        return max
    robots = {g in FAMILIES for g in groups}
    return None if len(robots) > 1 else min if robots == {True} else max


def _pct(s: dict) -> str:
    if s["n"] == 1:
        return f"{100 * s['mean']:5.1f}      (1 seed)    "
    return f"{100 * s['mean']:5.1f} ± {100 * s['sd']:4.1f} [{100 * s['min']:4.1f}-{100 * s['max']:4.1f}]"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path, help="<recipe>-seed<k>.json leave-out results")
    ap.add_argument("--families", nargs="+", default=list(FAMILIES), help="groups averaged into the mean")
    ap.add_argument(
        "--measure",
        default="eer",
        choices=("eer", "eer_zh", "flagged_at_threshold"),
        help="the row to rank on: EER, Mandarin-only EER, or the share of the held-out calls flagged "
        "at the threshold fitted without them (the catch rate of an unseen family)",
    )
    ap.add_argument("--json", type=Path, help="also write the summary here")
    args = ap.parse_args(argv)
    try:
        runs = load_runs(args.files, args.measure)
    except (OSError, ValueError) as e:
        print(f"loo_seeds: {e}", file=sys.stderr)
        return 2
    families = tuple(args.families)
    by_recipe: dict[str, set] = {}
    for path in args.files:
        m = NAME.match(path.stem)
        flags = recipe_flags(path)
        if flags is not None:
            by_recipe.setdefault(m["recipe"], set()).add(option_set(flags))
    for recipe, seen in sorted(by_recipe.items()):
        if len(seen) > 1:
            print(f"loo_seeds: warning: the runs of {recipe!r} were trained with different flags", file=sys.stderr)
    summary = summarise(runs, families, worst=worst_of(args.measure, families))
    recipes = sorted(summary["recipes"])
    width = 32
    print(f"family leave-out {args.measure}, % (mean ± sd [min-max] over seeds)\n")
    print(
        f"{'held out':<16}"
        + "".join(
            f"{r + ' (seeds ' + ','.join(map(str, summary['recipes'][r]['seeds'])) + ')':<{width}}" for r in recipes
        )
    )
    for f in families:
        cells = [summary["recipes"][r]["families"].get(f) for r in recipes]
        print(f"{f:<16}" + "".join(f"{_pct(c) if c else '-':<{width}}" for c in cells))
    for key in ("mean", "worst"):  # over the --families
        cells = [summary["recipes"][r].get(key) for r in recipes]
        if not any(cells):
            continue
        label = f"{key} of {len(families)}"
        print(f"{label:<16}" + "".join(f"{_pct(c) if c else '-':<{width}}" for c in cells))
    if summary["pairs"]:
        print("\npaired difference of the family mean (same seed = same simulated calls), points:")
        for pair, d in summary["pairs"].items():
            per_seed = ", ".join(f"seed {k}: {100 * v:+.1f}" for k, v in d["per_seed"].items())
            print(f"  {pair:<12} mean {100 * d['mean']:+5.1f} (sd {100 * d['sd']:.1f}; {per_seed})")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
