"""JSON as robodetect writes it: strict (``allow_nan=False``), a non-finite float becomes null.

``json.dumps`` writes ``NaN``/``Infinity`` by default, which no other JSON parser accepts; every
JSON the package writes (``score --json``, the store's timing/cues, ``export --format jsonl``,
``summary --json``, model metadata) goes through :func:`dumps`.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


def finite(obj: Any) -> Any:
    """``obj`` with every NaN/inf float (numpy scalars too) replaced by None, recursively."""
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def dumps(obj: Any, **kwargs: Any) -> str:
    """Strict JSON text of ``obj``; non-finite floats are written as null."""
    return json.dumps(finite(obj), allow_nan=False, **kwargs)
