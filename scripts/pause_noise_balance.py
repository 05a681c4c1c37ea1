"""Is the pause-noise stage (``train.py --pause-noise-augment``) neutral between the classes?

Two measurements (model card, session 23, "M"):

1. ``--paired``: the training calls simulated with and without the stage are the same call plans, so
   pairing them by call shows what the stage changes after the VAD: per class, on the calls that got
   it, the extra speech the VAD keeps and the extra windows cut (calls without it are identical).
2. ``--within``: the stage decides "pause" on the source utterance before any noise (``pause_gain``);
   per training source, the share of samples *inside* trimmed, levelled utterances that it would lift,
   i.e. where the source's own silence (digital or near it) lets the line noise rise mid-utterance.

    python scripts/pause_noise_balance.py --paired            # needs both training sets built
    python scripts/pause_noise_balance.py --within --per-group 15
    python scripts/pause_noise_balance.py --paired --from gaps  # session 24's P (train.py --pause-noise-from gaps)

``--within`` measures the level rule only: with ``--pause-noise-from gaps`` nothing inside a source
utterance is lifted, by construction (``robodetect.simulate.gap_gain``; tests/test_simulate.py).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import train  # noqa: E402

from robodetect.simulate import SPEECH_RMS, SimConfig, pause_gain, trim_silence  # noqa: E402
from robodetect.train import CallData, read_manifests  # noqa: E402

V11 = (
    "--vad new --mp3-augment 0.3 --train-short-share 0 --hop-seconds 2 --stft-hop 160 --shift-copies 3 "
    "--pool avg --time-pool mean --fine-bands 64 --rawboost 0.5 --extra-corpus data/corpus18 --extra-calls 250"
).split()


def paired(flags: list[str], share: float, source: str = "signal") -> None:
    rows = read_manifests(train.manifests(train.parse_args(flags)))
    staged_flags = [*flags, "--pause-noise-augment", str(share), "--pause-noise-from", source]
    paths = [train.dataset_path(train.parse_args(f), rows, "train")[0] for f in (flags, staged_flags)]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise SystemExit(f"pause_noise_balance.py: build them first (scripts/train.py): {', '.join(map(str, missing))}")
    base, staged = (CallData.load(p) for p in paths)
    before = {c["call_id"]: c for c in base.calls}
    out = defaultdict(lambda: defaultdict(list))
    for c in staged.calls:
        o = before[c["call_id"]]
        key = (c["label"], "pause_noise_db" in c)
        out[key]["windows"].append(c["n_windows"] - o["n_windows"])
        out[key]["speech"].append((c["speech_samples"] - o["speech_samples"]) / 8000)
    print("| class | stage | calls | extra windows / call | extra VAD speech / call | calls with more windows |")
    print("|---|---|---|---|---|---|")
    for (label, took), v in sorted(out.items()):
        w = np.array(v["windows"])
        print(
            f"| {label} | {'yes' if took else 'no'} | {len(w)} | {w.mean():+.2f} | {np.mean(v['speech']):+.2f} s | {(w > 0).mean():.0%} |"
        )


def within(flags: list[str], per_group: int, seed: int) -> None:
    rows = [r for r in read_manifests(train.manifests(train.parse_args(flags))) if r["split"] == "train"]
    by_group = defaultdict(list)
    for r in rows:
        by_group[(r["label"], r["group"])].append(r["path"])
    rng = np.random.default_rng(seed)
    print("| class | source | utterances | share of samples inside utterances lifted |")
    print("|---|---|---|---|")
    for (label, group), paths in sorted(by_group.items()):
        lifted = total = 0
        picks = rng.choice(len(paths), min(per_group, len(paths)), replace=False)
        for i in picks:
            x, _ = sf.read(paths[i], dtype="float32", always_2d=False)
            u = trim_silence(x).astype(np.float64)
            u = u / (np.sqrt(np.mean(u**2)) + 1e-9) * SPEECH_RMS
            u = u + rng.standard_normal(len(u)) * SPEECH_RMS * 10 ** (SimConfig.dither_db / 20)  # its dither
            lifted += int(np.sum(pause_gain(u, 20.0) > 10 ** (1 / 20)))  # more than 1 dB
            total += len(u)
        print(f"| {label} | {group} | {len(picks)} | {lifted / max(total, 1):.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--paired", action="store_true")
    ap.add_argument("--within", action="store_true")
    ap.add_argument("--share", type=float, default=0.3, help="the --pause-noise-augment of the staged set")
    ap.add_argument("--from", dest="source", choices=("signal", "gaps"), default="signal", help="--paired's stage")
    ap.add_argument("--per-group", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not (args.paired or args.within):
        ap.error("--paired and/or --within")
    if args.paired:
        paired(V11, args.share, args.source)
    if args.within:
        within(V11, args.per_group, args.seed)


if __name__ == "__main__":
    main()
