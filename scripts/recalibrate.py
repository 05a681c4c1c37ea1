"""Refit a model's calibration (Platt scaling, threshold, uncertain band) on other calibration calls,
the network's weights untouched.

    python scripts/recalibrate.py --model robodetect-v11 --cal-calls data/calls/cal-XXXX.npz \\
        --out data/s28/v11-nscal [--version robodetect-v11-nscal]

What ``scripts/train.py`` does after training (``robodetect.train.calibrate``: probability by Platt
scaling, a threshold that flags <= 1 % of calibration humans, the uncertain band at 5 % / 0.5 %),
on calibration calls of another channel recipe: e.g. the calibration split simulated with the
handset suppressor on half the legs, so that the threshold holds on suppressed human lines. The
calls must be a calibration split (never dev) cut with the model's VAD. The old and new calibration
are printed; the new model (``<out>.json`` + ``.safetensors``) records the calls it was fitted on in
``metrics.recalibrated`` (its training recipe in ``metrics.recipe`` is kept, so scripts/evaluate.py
still finds the dev calls of its training recipe unless given ``--calls-dir``).
"""

from __future__ import annotations

import argparse
import sys
import zipfile
import zlib
from dataclasses import asdict
from pathlib import Path

from safetensors import SafetensorError

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from robodetect.audio import AudioError, check_regular_file, display_path  # noqa: E402
from robodetect.config import ModelError, find_model  # noqa: E402
from robodetect.detector import load  # noqa: E402
from robodetect.model import save_model  # noqa: E402
from robodetect.train import CallData, calibrate, one_party_call  # noqa: E402

KEYS = ("calib_scale", "calib_bias", "threshold", "uncertain_low", "uncertain_high")


def recalibrate(model, cal: CallData, source: str) -> dict:
    """Refit ``model``'s calibration on ``cal`` (in place); returns the old and new values and what
    the fit saw. ValueError when the calls are not a calibration split cut with the model's VAD."""
    splits = {c.get("split") for c in cal.calls}
    if splits != {"cal"}:
        raise ValueError(f"{source} is not a calibration split (splits: {', '.join(sorted(map(str, splits)))})")
    if cal.vad is not None and cal.vad != asdict(model.config.vad):
        raise ValueError(f"{source} was cut with another VAD than the model's")
    fitted = [c for c in cal.calls if one_party_call(c)]  # the calls calibrate() fits on
    if {c.get("label") for c in fitted} < {"robot", "human"}:
        raise ValueError(f"{source} holds no one-party calls of both labels: nothing to calibrate on")
    old = {k: getattr(model.config, k) for k in KEYS}
    info = calibrate(model, cal.replan(model.config.frontend.hop_samples))
    new = {k: getattr(model.config, k) for k in KEYS}
    suppressed = sum(1 for c in fitted if "ns" in c)  # the simulator records the stage only where it ran
    record = {
        "calls": Path(source).name,
        "cal_calls": info["cal_calls"],
        "cal_call_eer": round(float(info["cal_eer"]), 4),
        "suppressed_calls": suppressed,
        "before": old,
    }
    metrics = dict(model.config.metrics or {})
    metrics["recalibrated"] = record
    model.config.metrics = metrics
    return {"old": old, "new": new, **record}


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.4f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="model name or stem")
    ap.add_argument("--cal-calls", required=True, help="a calibration split's calls (.npz from scripts/train.py)")
    ap.add_argument("--out", required=True, help="stem of the recalibrated model (.json + .safetensors)")
    ap.add_argument("--version", default=None, help="its version string (default: the model's + '-recal')")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if out.suffix in (".json", ".safetensors"):
        out = out.with_suffix("")
    if out.suffix:  # save_model writes <stem>.json: "a.b" would become "a.json", another model's file
        print(f"recalibrate: --out {args.out}: give a stem without a dot in its name", file=sys.stderr)
        return 1
    try:
        source_json = find_model(args.model)[0]
        if isinstance(source_json, Path) and source_json.resolve() == out.with_suffix(".json").resolve():
            print(f"recalibrate: --out {args.out} is the model itself: write the refit beside it", file=sys.stderr)
            return 1
        model = load(args.model).model
    except (ModelError, OSError, ValueError) as exc:
        print(f"recalibrate: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    where = display_path(args.cal_calls)
    try:
        check_regular_file(args.cal_calls, where=where)  # a FIFO would block np.load forever
        cal = CallData.load(Path(args.cal_calls))
    except AudioError as exc:  # its message starts with the path
        print(f"recalibrate: cannot read {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError, EOFError, AttributeError, zipfile.BadZipFile, zlib.error) as exc:
        # a truncated or non-npz file (a .npy loads as an array: AttributeError)
        print(f"recalibrate: cannot read {where}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    try:
        r = recalibrate(model, cal, args.cal_calls)
    except ValueError as exc:
        print(f"recalibrate: {exc}", file=sys.stderr)
        return 1
    model.config.version = args.version or f"{model.config.version}-recal"
    try:
        save_model(model, out)
    except (OSError, SafetensorError) as exc:  # safetensors raises its own error for an unwritable file
        print(f"recalibrate: cannot write {args.out}: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return 2
    print(f"{args.model} recalibrated on {r['calls']}: {r['cal_calls']} calls ({r['suppressed_calls']} suppressed),")
    print(f"calibration EER {100 * r['cal_call_eer']:.2f} %; written {out}.json / .safetensors\n")
    print("| | before | after |\n|---|---|---|")
    for k in KEYS:
        print(f"| {k} | {_fmt(r['old'][k])} | {_fmt(r['new'][k])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
