"""Shortcut rows over many models of one recipe: how far a row moves between training runs.

    for f in festvox vits espeak-ng zs-tts kokoro neural-vocoder dsp-vocoder; do
        python scripts/shortcut_checks.py --model DIR/loo-models/loo-$f --calls 40 > OUT/NAME-$f.md
    done
    python scripts/rows_over_models.py OUT --recipes control R Q

Reads the saved outputs of scripts/shortcut_checks.py (OUT/<recipe>-<family>.md, one per leave-out
model), and prints per row and recipe the mean ± sd [min-max] of the mean |dlogit| over the models
with the mean shift at the threshold, and each recipe's difference from the first one paired by
family (the same held-out family: the same training data but for the recipe). One full model per
recipe cannot tell a recipe's effect on a row from run-to-run spread; seven models per recipe can.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROWS = {
    "MP3 round trip": "MP3 round trip",
    "handset noise suppression": "handset noise suppression",
    "speech cut into pieces": "speech cut into",
    "noisy pauses": "noisy pauses",
    "AGC / compressor": "AGC /",
    "VAD frame phase": "VAD frame phase",
}


def read_rows(path: Path) -> dict[str, tuple[float, float]]:
    """{row: (mean |dlogit|, shift at threshold)} from one shortcut_checks.py output."""
    out = {}
    for line in path.read_text(errors="replace").splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) < 9:
            continue
        for name, prefix in ROWS.items():
            if cells[1].startswith(prefix):
                try:
                    out[name] = (float(cells[5]), float(cells[7].split("/")[0]))
                except ValueError:
                    pass
    return out


def summarise(folder: Path, recipes: list[str]) -> list[str]:
    """The Markdown table (lines) for ``recipes``' outputs in ``folder``."""
    values: dict[tuple[str, str], dict[str, tuple[float, float]]] = defaultdict(dict)
    for recipe in recipes:
        for path in sorted(folder.glob(f"{recipe}-*.md")):
            family = path.stem[len(recipe) + 1 :]
            for row, v in read_rows(path).items():
                values[(recipe, row)][family] = v
    head = ["row: mean abs dlogit over the models, mean ± sd [min-max] (mean shift at threshold)", *recipes]
    head += [f"{r} − {recipes[0]}, paired by family" for r in recipes[1:]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in ROWS:
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
            cells.append(f"{d.mean():+.3f} ± {d.std(ddof=1):.3f}, n={len(d)}" if len(d) > 1 else "-")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path, help="the folder of <recipe>-<family>.md outputs")
    ap.add_argument("--recipes", nargs="+", required=True, help="recipe names; the first is the reference")
    args = ap.parse_args(argv)
    if not args.folder.is_dir():
        print(f"rows_over_models: {args.folder}: not a folder", file=sys.stderr)
        return 1
    print("\n".join(summarise(args.folder, args.recipes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
