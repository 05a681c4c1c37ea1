"""Does the source-adversarial option make the CNN forget which recording source a call is from?

    python scripts/probe_source.py <train.py's dataset flags> --seed S --source-classes human \\
        --weights 1e-4 1 3 --probe-epochs 3

For each adversary weight, a model is trained (``--probe-epochs`` epochs) on the **calibration**
calls of the seed (small and quick: this is a diagnosis, not a recipe) and read on the dev calls:
a multinomial logistic-regression probe on the spectral embedding (plus the class label) is fitted
on half of the dev calls (even call ids) to name each window's source (human corpus or robot
family) and tested on the other half. Prints, per weight: the discriminator's accuracy in the last
training epoch (against its chance level), the probe's held-out accuracy over all windows and over
human windows, and the dev window AUC (robot vs human), so that what the adversary hides can be
weighed against what it costs. A weight near 0 trains the discriminator without pushing the CNN.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train as train_script  # noqa: E402  (scripts/train.py: datasets and the model config flags)

from robodetect.metrics import eer  # noqa: E402
from robodetect.train import source_of, train_model  # noqa: E402


def probe_accuracy(x: torch.Tensor, codes: torch.Tensor, fit: torch.Tensor, steps: int = 200) -> torch.Tensor:
    """Per-window correctness (bool) on ``~fit`` of a multinomial logistic regression fitted on the
    ``fit`` rows (standardised features, L2 1e-3, L-BFGS)."""
    mean, std = x[fit].mean(0), x[fit].std(0).clamp_min(1e-6)
    z = (x - mean) / std
    w = torch.zeros(z.shape[1], int(codes.max()) + 1, requires_grad=True)
    b = torch.zeros(int(codes.max()) + 1, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(z[fit] @ w + b, codes[fit]) + 1e-3 * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return (z[~fit] @ w + b).argmax(-1) == codes[~fit]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], add_help=False)
    ap.add_argument("--weights", type=float, nargs="+", default=[1e-4, 1.0], help="source-adversary weights to train")
    ap.add_argument("--probe-epochs", type=int, default=3)
    args, rest = ap.parse_known_args(argv)
    targs = train_script.parse_args(rest)
    rows = train_script.read_manifests(train_script.manifests(targs))
    cal, dev = (train_script.dataset(targs, rows, n) for n in ("cal", "dev"))
    config = train_script.model_config(targs)
    dev = dev.replan(config.frontend.hop_samples)  # the windows the model's plan scores
    classes = train_script.source_classes(targs)
    codes, names = dev.window_codes(source_of)
    codes = torch.from_numpy(codes)
    y = torch.from_numpy(dev.window_labels())
    fit = torch.from_numpy(dev.call_of_window % 2 == 0)
    human = (y == 0)[~fit]
    print(f"probe: {len(names)} sources; dev windows {len(y)} ({int(fit.sum())} fit, {int((~fit).sum())} tested)")
    for weight in args.weights:
        lines: list[str] = []
        model = train_model(
            cal,
            config,
            epochs=args.probe_epochs,
            seed=targs.seed,
            source_adversary=weight,
            source_classes=classes,
            log=lines.append,
        )
        mel, pros = dev.features_for(model)
        with torch.no_grad():
            emb = model.embed(mel.float(), pros)
            logit = model.classify(emb).numpy()
        right = probe_accuracy(torch.cat([emb[:, : model.spec_dim], y[:, None]], 1), codes, fit)
        last = [s for s in lines if "source discriminator" in s]
        disc = last[-1].split("source discriminator ")[1].split(" (")[0] if last else "-"
        chance = last[-1].split("(chance ")[1].split(")")[0] if last else "-"
        print(
            f"weight {weight:g}: discriminator {disc} (chance {chance}); probe on held-out dev calls "
            f"{right.float().mean():.1%} (humans {right[human].float().mean():.1%}); "
            f"dev window EER {eer(logit, y.numpy())[0]:.1%}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
