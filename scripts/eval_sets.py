"""Build the dev clip and two-party sets for scripts/evaluate.py without training
(scripts/train.py builds them after the main model; this is the same step on its own).

    python scripts/eval_sets.py [--eval-calls 400]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from train import dataset, manifests  # noqa: E402

from robodetect.train import read_manifests  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=str(REPO / "data" / "corpus"))
    ap.add_argument("--calls-dir", default=str(REPO / "data" / "calls"))
    ap.add_argument("--eval-calls", type=int, default=400)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resample-augment", type=float, default=0.5, help="as scripts/train.py (same dataset keys)")
    args = ap.parse_args()
    args.train_calls, args.speed_perturb, args.rebuild = 0, 0.0, False
    rows = read_manifests(manifests(args))
    for name in ("dev_clips", "dev_2party"):
        d = dataset(args, rows, name)
        print(f"{name}: {len(d.calls)} rows / {len(d.windows)} windows", flush=True)


if __name__ == "__main__":
    main()
