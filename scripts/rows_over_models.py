"""Shortcut rows over many models of one recipe: how far a row moves between training runs.

    for f in festvox vits espeak-ng zs-tts kokoro neural-vocoder dsp-vocoder; do
        python scripts/shortcut_checks.py --model DIR/loo-models/loo-$f --calls 40 --json OUT/NAME-$f.json > OUT/NAME-$f.md
    done
    python scripts/rows_over_models.py OUT [OUT2 ...] --recipes control R Q

Reads the saved outputs of scripts/shortcut_checks.py (OUT/<recipe>-<family>.json from its --json,
else its printed OUT/<recipe>-<family>.md, one per leave-out model; a recipe's files may lie in any of
the folders), and prints for every row and recipe the mean ± sd [min-max] of the mean |dlogit| over the models
with the mean shift at the threshold, and each recipe's difference from the first one paired by
family (the same held-out family: the same training data but for the recipe). One full model per
recipe cannot tell a recipe's effect on a row from run-to-run spread; seven models per recipe can.
The last lines give the ship rule's C (session 26) per recipe against the first: a row fails where the
paired mean difference is above --margin (0.10) and its lower bound (mean - t(0.975, n-1) sd/sqrt(n))
above 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy import stats

#: the short names of the rows, matched by prefix; any other row keeps the name shortcut_checks.py gives it
SHORT = {
    "MP3 round trip": "MP3 round trip",
    "handset noise suppression": "handset noise suppression",
    "speech cut into": "speech cut into pieces",
    "noisy pauses": "noisy pauses",
    "AGC /": "AGC / compressor",
    "VAD frame phase": "VAD frame phase",
    "room reverberation": "room reverberation",
}


def row_name(variation: str) -> str:
    return next((name for prefix, name in SHORT.items() if variation.startswith(prefix)), variation)


def read_rows(path: Path) -> dict[str, tuple[float, float]]:
    """{row: (mean |dlogit|, shift at threshold)} for every row of one shortcut_checks.py output:
    its --json file, or its printed Markdown table."""
    if path.suffix == ".json":
        return _json_rows(path)
    out = {}
    for line in path.read_text(errors="replace").splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) < 9 or cells[1] in ("variation", "") or cells[1].startswith("-"):
            continue
        try:
            v = (float(cells[5]), float(cells[7].split("/")[0]))
        except ValueError:
            continue
        if np.isfinite(v).all():
            out[row_name(cells[1])] = v
    return out


def _json_rows(path: Path) -> dict[str, tuple[float, float]]:
    def number(x) -> float:
        if x is None:  # how --json writes NaN (a shift fitted on too few calls): the row is left out
            return float("nan")
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise TypeError(f"{x!r} is not a number")
        return float(x)

    try:
        out = {}
        for r in json.loads(path.read_text(errors="replace"))["rows"]:
            name = r["variation"]
            if not isinstance(name, str):
                raise TypeError(f"variation {name!r} is not text")
            name.encode("utf-8")  # a lone surrogate would fail only when the table is printed
            v = (number(r["mean_abs_dlogit"]), number(r["shift"]))
            if np.isfinite(v).all():
                out[row_name(name)] = v
        return out
    except (ValueError, KeyError, TypeError, ArithmeticError, RecursionError) as exc:  # JSONDecodeError: ValueError
        raise ValueError(f"{path}: not a shortcut_checks.py --json output ({exc.__class__.__name__}: {exc})") from None


#: a run's --json file is written just before its printed table ends; a .md this much newer is a later run
SAME_RUN_SECONDS = 60.0


def worse(d: np.ndarray, margin: float) -> tuple[float, bool]:
    """The paired differences' one-sided lower bound (mean - t(0.975, n-1) sd/sqrt(n)) and whether the
    row is worse: mean above ``margin`` and that bound above 0 (the ship rule's C, session 26)."""
    if len(d) < 2:
        return float("nan"), False
    low = float(d.mean() - stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    return low, bool(d.mean() > margin and low > 0)


def outputs(folders: list[Path], recipe: str, recipes: list[str]) -> dict[str, Path]:
    """{family: file} of ``recipe``'s outputs in ``folders``, the first folder's where two hold one
    family (said on stderr); a file of another given recipe whose name extends this one (``R-s1-vits``
    for recipes R and R-s1) is that recipe's."""
    longer = [r for r in recipes if r != recipe and r.startswith(recipe + "-")]
    found: dict[str, Path] = {}
    for folder in folders:
        stems = sorted({p.stem for p in (*folder.glob(f"{recipe}-*.json"), *folder.glob(f"{recipe}-*.md"))})
        for stem in stems:
            if any(stem.startswith(r + "-") for r in longer):
                continue
            path = pick_output(folder / f"{stem}.json", folder / f"{stem}.md")
            if path is None:
                continue
            family = path.stem[len(recipe) + 1 :]
            if family in found:
                print(f"rows_over_models: {path}: {recipe}-{family} already read from {found[family]}", file=sys.stderr)
                continue
            found[family] = path
    return found


def pick_output(js: Path, md: Path) -> Path | None:
    """Of one run's two outputs, the --json file, unless the .md was written by a later run (more
    than SAME_RUN_SECONDS newer: said on stderr); None when neither is a plain file."""
    if not js.is_file():
        return md if md.is_file() else None
    if md.is_file() and md.stat().st_mtime - js.stat().st_mtime > SAME_RUN_SECONDS:
        print(f"rows_over_models: {md} is newer than {js.name}: reading the .md", file=sys.stderr)
        return md
    return js


def summarise(folders: list[Path], recipes: list[str], margin: float = 0.10, min_n: int = 7) -> list[str]:
    """The Markdown table (lines) for ``recipes``' outputs in ``folders`` (a recipe's files may be in
    any of them; the first found per family counts), and the verdict of rule C per recipe: a recipe
    that cannot be paired with the first on ``min_n`` families for every row of the first is not
    judged. Raises ValueError naming a recipe without outputs, OSError for an unreadable one."""
    values: dict[tuple[str, str], dict[str, tuple[float, float]]] = defaultdict(dict)
    order: list[str] = []
    for recipe in recipes:
        found = outputs(folders, recipe, recipes)
        if not found:
            raise ValueError(
                f"no outputs of recipe {recipe!r} ({recipe}-<family>.json or .md) in {', '.join(map(str, folders))}"
            )
        for family, path in found.items():
            for row, v in read_rows(path).items():
                values[(recipe, row)][family] = v
                order += [] if row in order else [row]
    head = ["row: mean abs dlogit over the models, mean ± sd [min-max] (mean shift at threshold)", *recipes]
    head += [f"{r} − {recipes[0]}, paired by family [lower bound]" for r in recipes[1:]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    failed: dict[str, list[str]] = defaultdict(list)
    unpaired: dict[str, list[str]] = defaultdict(list)
    for row in order:
        cells = []
        for recipe in recipes:
            v = values[(recipe, row)]
            a = np.array([x[0] for x in v.values()])
            s = np.array([x[1] for x in v.values()])
            cells.append(
                f"{a.mean():.3f} ± {a.std(ddof=1):.3f} [{a.min():.2f}-{a.max():.2f}] ({s.mean():+.2f}), n={len(a)}"
                if len(a) > 1
                else "-"
            )
        base = values[(recipes[0], row)]
        for recipe in recipes[1:]:
            v = values[(recipe, row)]
            d = np.array([v[f][0] - base[f][0] for f in v if f in base])
            low, bad = worse(d, margin)
            if bad:
                failed[recipe].append(row)
            if base and len(d) < min_n:
                unpaired[recipe].append(f"{row} (n={len(d)})")
            cells.append(
                f"{d.mean():+.3f} ± {d.std(ddof=1):.3f} [{low:+.3f}]{' **worse**' if bad else ''}, n={len(d)}"
                if len(d) > 1
                else "-"
            )
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    lines.append("")
    for recipe in recipes[1:]:
        verdict = (
            f"fails on {', '.join(failed[recipe])}"
            if failed[recipe]
            else f"cannot judge: fewer than {min_n} families paired on {', '.join(unpaired[recipe])}"
            if unpaired[recipe]
            else "holds"
        )
        lines.append(
            f"rule C, {recipe} vs {recipes[0]} (no row worse by > {margin} with its paired lower bound > 0): {verdict}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", type=Path, nargs="+", help="folders of <recipe>-<family>.json / .md outputs")
    ap.add_argument("--recipes", nargs="+", required=True, help="recipe names; the first is the reference")
    ap.add_argument("--margin", type=float, default=0.10, help="rule C: a row worse by more than this")
    ap.add_argument("--min-n", type=int, default=7, help="rule C: families paired on every row, at least")
    args = ap.parse_args(argv)
    if not (np.isfinite(args.margin) and args.margin >= 0) or args.min_n < 2:
        print("rows_over_models: --margin must be >= 0 and --min-n >= 2", file=sys.stderr)
        return 1
    for folder in args.folders:
        if not folder.is_dir():
            print(f"rows_over_models: {folder}: not a folder", file=sys.stderr)
            return 1
    try:
        lines = summarise(args.folders, args.recipes, args.margin, args.min_n)
    except (ValueError, OSError) as exc:
        print(f"rows_over_models: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
