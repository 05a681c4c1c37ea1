"""Write the ONNX scoring engine's graph beside every shipped model (or the models named).

    python scripts/build_engines.py [NAME_OR_STEM ...]

``robodetect/models/<name>.scorer.onnx`` is ``Detector.window_logits`` of that model as one ONNX
graph (:func:`robodetect.export.export_engine`); ``robodetect score`` runs it on onnxruntime to
start without importing torch (:mod:`robodetect.onnxengine`). Run it after training or replacing
a model's weights: a graph made from other weights is refused at load (its metadata holds the
digest of the JSON and weights it was made from), and ``tests/test_onnx_engine.py`` fails.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from robodetect.config import ModelError  # noqa: E402
from robodetect.export import export_engine  # noqa: E402
from robodetect.model import available_models  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "models", nargs="*", help="shipped model names or .json/.safetensors stems (default: every shipped model)"
    )
    args = ap.parse_args(argv)
    failed = 0
    for name in args.models or available_models():
        try:
            out = export_engine(name)
        except ModelError as e:
            print(f"{name}: {e}", file=sys.stderr)
            failed += 1
            continue
        print(f"{name}: {out} ({out.stat().st_size / 1e6:.2f} MB)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
