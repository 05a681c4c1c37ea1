"""Accuracy versus seconds of speech heard: how early can a screening app decide?

For every call in a manifest, score only the first N seconds of its speech (the speech-only signal
the detector builds from VAD segments), exactly as ``Detector.score`` would score a call that ended
after N s of speech -- which is also the probability the streaming detector reports at its N s
checkpoint -- and report the EER (and accuracy at the model's threshold) for each N and for the
whole call. Calls with less than N s of speech are scored on all of their speech (that is what the
stream does when such a call ends); the ``>=N s`` column says how many calls really had N s.

    python scripts/accuracy_vs_seconds.py --manifest data/dev.csv --model robodetect-v2
    python scripts/accuracy_vs_seconds.py --manifest ../shared/corpora/manifest.csv --split dev \\
        --per-source 5 --model /tmp/model-stem

Manifest: CSV with columns ``path,label`` (``robot`` / ``human``; paths relative to the manifest's
folder or absolute) and optionally ``source`` (per-source counts) and ``split`` (``--split``).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

import robodetect
from robodetect import scoring
from robodetect.audio import SAMPLE_RATE, load_audio
from robodetect.metrics import eer, rates_at
from robodetect.vad import detect_speech, speech_samples

DEFAULT_SECONDS = (1, 2, 3, 4, 6, 8)


def read_manifest(path: Path, split: str | None = None, per_source: int | None = None) -> list[dict]:
    rows = list(csv.DictReader(open(path, newline="")))
    if not rows or not {"path", "label"} <= set(rows[0]):
        raise SystemExit(f"{path}: needs columns path,label (+ optional source, split)")
    if split is not None:
        rows = [r for r in rows if r.get("split") == split]
    if per_source:
        seen: Counter = Counter()
        kept = []
        for r in rows:
            key = (r.get("source", ""), r["label"])
            if seen[key] < per_source:
                kept.append(r)
                seen[key] += 1
        rows = kept
    for r in rows:
        p = Path(r["path"])
        r["path"] = str(p if p.is_absolute() else path.parent / p)
    return rows


def prefix_probabilities(detector, x: np.ndarray, seconds: list[float]) -> tuple[list[float | None], float]:
    """Call probabilities after the first ``seconds[i]`` s of speech of one 8 kHz channel (None:
    fewer than 0.5 s of speech), plus the call's total speech seconds. ``inf`` = the whole call."""
    vad = detect_speech(x, detector.vad_config)
    speech = speech_samples(x, vad.segments)
    total = len(speech)
    prefixes = [total if s == float("inf") else int(round(s * SAMPLE_RATE)) for s in seconds]
    spans, plans = scoring.prefix_plans(
        total, prefixes, detector.hop_samples
    )  # windows shared by the prefixes are scored once
    logits = detector.window_logits(scoring.cut_windows(speech, spans))[0] if spans else np.zeros(0)
    return [detector.call_probability(logits[plan]) if plan else None for plan in plans], total / SAMPLE_RATE


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", required=True, type=Path, help="CSV with path,label[,source][,split]")
    ap.add_argument("--model", default=None, help="shipped model name or model stem (default: the shipped model)")
    ap.add_argument("--seconds", default=",".join(map(str, DEFAULT_SECONDS)), help="speech prefixes, comma-separated")
    ap.add_argument("--split", default=None, help="keep only rows whose split column equals this")
    ap.add_argument("--per-source", type=int, default=None, help="at most N calls per (source, label): quick runs")
    ap.add_argument("--json", type=Path, default=None, help="also write the table (and per-call scores) as JSON")
    args = ap.parse_args(argv)

    detector = robodetect.load(args.model)
    seconds = [float(s) for s in args.seconds.split(",")] + [float("inf")]
    rows = read_manifest(args.manifest, args.split, args.per_source)
    if not rows:
        raise SystemExit("no calls to score")
    labels, scores, speech, kept, failed = [], [], [], [], 0
    t0 = time.time()
    for i, r in enumerate(rows):
        try:
            x = load_audio(r["path"]).samples[0]
        except robodetect.AudioError as exc:
            print(f"skipping: {exc}", file=sys.stderr)
            failed += 1
            continue
        probs, speech_s = prefix_probabilities(detector, x, seconds)
        kept.append(r)
        labels.append(1 if r["label"] == "robot" else 0)
        scores.append(probs)
        speech.append(speech_s)
        if (i + 1) % 200 == 0:
            print(f"  {i + 1}/{len(rows)} calls, {time.time() - t0:.0f} s", file=sys.stderr)
    labels_a, speech_a = np.array(labels), np.array(speech)
    sources = Counter((r.get("source") or "-", r["label"]) for r in rows)
    print(f"{len(labels)} calls ({int(labels_a.sum())} robot, {int((1 - labels_a).sum())} human), {failed} unreadable;")
    print("  " + ", ".join(f"{s}/{lab}: {n}" for (s, lab), n in sorted(sources.items())))
    print(f"model {detector.model_version}, threshold {detector.threshold:.3f}\n")
    print(f"{'speech':>8} {'calls':>6} {'>=N s':>6} {'no_speech':>9} {'EER':>7} {'acc@thr':>8}")
    table = []
    for j, s in enumerate(seconds):
        col = [p[j] for p in scores]
        ok = np.array([p is not None for p in col])
        sc, lab = np.array([p for p in col if p is not None], float), labels_a[ok]
        name = "whole" if s == float("inf") else f"{s:g} s"
        full = int((speech_a >= s).sum()) if s != float("inf") else int(ok.sum())
        row = {"seconds": None if s == float("inf") else s, "calls": int(ok.sum()), "calls_with_n_seconds": full}
        if len(set(lab.tolist())) == 2:
            row["eer"], _ = eer(sc, lab)
            row["accuracy"] = rates_at(sc, lab, detector.threshold)["accuracy"]
            res = f"{100 * row['eer']:6.2f}% {100 * row['accuracy']:7.2f}%"
        else:
            res = f"{'n/a':>7} {'n/a':>8}"
        table.append(row)
        print(f"{name:>8} {row['calls']:>6} {full:>6} {int((~ok).sum()):>9} {res}")
    if args.json:
        calls = [
            {"path": r["path"], "label": r["label"], "speech_seconds": sp, "p": p}
            for r, sp, p in zip(kept, speech, scores, strict=True)
        ]
        args.json.write_text(json.dumps({"model": detector.model_version, "table": table, "calls": calls}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
