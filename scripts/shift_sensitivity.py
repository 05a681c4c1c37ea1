"""How much a window's logit moves when the window slides by a few milliseconds.

    python scripts/shift_sensitivity.py [--model NAME_OR_STEM] [--audio FILE ...]

A VAD segment edge one 30 ms frame later moves every following window of a call by that much, so a
model whose window logits swing under small shifts gives call scores that follow the VAD's frame
grid (the shortcut checks' "VAD frame phase" row). For 2 s windows taken every second from the 8 kHz
sample files, each window is scored at 40 offsets 0, 10, ..., 390 samples (0-49 ms); prints the
mean standard deviation of its uncalibrated logit over the offsets, the mean |logit(offset) -
logit(0)|, and the spread (std) of logits across windows, for scale: the ratio of the two is the
share of a window's evidence that is phase noise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from robodetect.features import WINDOW_SAMPLES  # noqa: E402
from robodetect.model import inference_model, resolve_model  # noqa: E402

OFFSETS = np.arange(0, 400, 10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--audio", nargs="*", type=Path, default=sorted((REPO / "samples").glob("*.wav")))
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = inference_model(resolve_model(args.model))
    rows = []
    for path in args.audio:
        x, sr = sf.read(path, dtype="float32", always_2d=True)
        if sr != 8000:
            continue  # the 8 kHz files only: no resampler in the way
        x = x[:, 0]
        for start in range(4000, len(x) - WINDOW_SAMPLES - OFFSETS[-1], 8000):
            w = np.stack([x[start + o : start + o + WINDOW_SAMPLES] for o in OFFSETS])
            with torch.inference_mode():
                rows.append(model(torch.from_numpy(w)).numpy())
    if not rows:
        sys.exit("no 8 kHz audio long enough for a shifted window")
    logits = np.array(rows)
    std = logits.std(1).mean()
    spread = logits[:, 0].std()
    print(f"model {model.config.version}: {len(logits)} windows, {len(OFFSETS)} offsets 0-{OFFSETS[-1]} samples")
    print(f"logit std over offsets (mean over windows): {std:.3f}")
    print(f"mean |logit(offset) - logit(0)|: {np.abs(logits[:, 1:] - logits[:, :1]).mean():.3f}")
    print(f"logit spread across windows (std): {spread:.3f}; ratio {std / spread:.3f}")


if __name__ == "__main__":
    main()
