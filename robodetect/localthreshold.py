"""A robot threshold fitted on an archive's own known humans (``robodetect calibrate``).

The shipped threshold flags <= 1 % of the calibration humans, who come from the same recording
chains as the training humans. On a recording chain the model never heard, humans are flagged far
more often: a model trained without one human source flags 0-38 % of that source's calls at its
threshold (robodetect-v6's recipe; model card, "Session 13"), and no margin fitted on the other
sources brings the worst one back to 1 %. The only threshold that is honest for *your* archive is
one fitted on calls of that archive known to be human (staff calls, verified callers): this
module reads their scores from a scan's result store and gives

- their false-alarm rate at the model's threshold, with a one-sided Clopper-Pearson upper bound;
- the lowest threshold that flags at most ``max_false_alarm`` of them (the point estimate), and the
  lowest whose upper bound is at most ``max_false_alarm`` (needs >= ~300 known humans for 1 %);
- at each threshold, the share of the store's other calls flagged, and of known robots caught.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np

from .audio import display_path
from .metrics import MIN_ROBOT_THRESHOLD, robot_threshold, threshold_flagging_at_most


def false_alarm_upper_bound(flagged: int, n: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound of a rate seen as ``flagged`` of ``n``."""
    from scipy.stats import beta

    if n <= 0:
        return 1.0
    if flagged >= n:
        return 1.0
    return float(beta.ppf(confidence, flagged + 1, n - flagged))


def certified_threshold(human_p: np.ndarray, max_false_alarm: float, confidence: float = 0.95) -> float | None:
    """The lowest threshold (>= MIN_ROBOT_THRESHOLD) whose false-alarm upper bound on these humans
    is <= ``max_false_alarm``; None when even flagging none of them cannot show it (too few humans)."""
    n = len(human_p)
    allowed = -1
    for k in range(n + 1):  # the bound grows with k: the largest k whose bound still fits
        if false_alarm_upper_bound(k, n, confidence) > max_false_alarm:
            break
        allowed = k
    if allowed < 0:
        return None
    return max(MIN_ROBOT_THRESHOLD, threshold_flagging_at_most(human_p, allowed))


@dataclass
class Operating:
    """One threshold and what it does on the store's calls."""

    threshold: float | None
    humans_flagged: int = 0
    false_alarm: float | None = None
    false_alarm_upper_bound: float | None = None
    others_flagged: float | None = None
    robots_caught: float | None = None


@dataclass
class LocalThreshold:
    model_version: str
    humans: int
    robots: int
    others: int
    missing: list[str] = field(default_factory=list)  # listed files with no scored row in the store
    max_false_alarm: float = 0.01
    confidence: float = 0.95
    model: Operating | None = None
    point: Operating | None = None
    certified: Operating | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _operating(t: float | None, humans: np.ndarray, robots: np.ndarray, others: np.ndarray, conf: float) -> Operating:
    if t is None:
        return Operating(None)
    k = int((humans >= t).sum())
    return Operating(
        threshold=float(t),
        humans_flagged=k,
        false_alarm=k / len(humans),
        false_alarm_upper_bound=false_alarm_upper_bound(k, len(humans), conf),
        others_flagged=float((others >= t).mean()) if len(others) else None,
        robots_caught=float((robots >= t).mean()) if len(robots) else None,
    )


def fit(
    humans: np.ndarray,
    model_threshold: float | None,
    robots: np.ndarray | None = None,
    others: np.ndarray | None = None,
    max_false_alarm: float = 0.01,
    confidence: float = 0.95,
    model_version: str = "",
) -> LocalThreshold:
    """The three operating points (the model's threshold, the point estimate, the certified one)
    from known humans' call probabilities (and optionally known robots' and the other calls')."""
    humans = np.asarray(humans, float)
    if not len(humans):
        raise ValueError("no known-human calls with a score")
    robots = np.zeros(0) if robots is None else np.asarray(robots, float)
    others = np.zeros(0) if others is None else np.asarray(others, float)
    point = robot_threshold(humans, max_false_alarm)
    out = LocalThreshold(model_version, len(humans), len(robots), len(others), [], max_false_alarm, confidence)
    out.model = _operating(model_threshold, humans, robots, others, confidence)
    out.point = _operating(point, humans, robots, others, confidence)
    out.certified = _operating(
        certified_threshold(humans, max_false_alarm, confidence), humans, robots, others, confidence
    )
    return out


def read_store(db: str | os.PathLike, paths: Iterable[str], model_version: str | None = None) -> dict:
    """Scored call-level rows of a result store: ``{"model_version", "thresholds" (the distinct
    thresholds they were labelled with), "listed": {path: [probabilities]}, "missing": [paths],
    "rest": [probabilities]}`` for the given absolute
    paths (as :func:`robodetect.batch.iter_inputs` gives them) against every other scored call.
    A store holding several model versions needs ``model_version``."""
    from .store import _has_column, connect, db_path, fs_path

    conn = connect(db, readonly=True)
    try:
        versions = [v for (v,) in conn.execute("SELECT DISTINCT model_version FROM calls ORDER BY model_version")]
        if model_version is None:
            if len(versions) != 1:
                raise ValueError(
                    "the store holds "
                    + (
                        f"models {', '.join(versions)}: pick one with --model-version"
                        if versions
                        else "no scored calls"
                    )
                )
            model_version = versions[0]
        elif model_version not in versions:
            raise ValueError(f"no calls scored by {model_version!r} (the store holds: {', '.join(versions) or 'none'})")
        wanted = {db_path(p) for p in paths}
        listed: dict[str, list[float]] = {}
        rest: list[float] = []
        thresholds: set[float] = set()
        role = "role = 'call' AND " if _has_column(conn, "role") else ""
        for path, p, t in conn.execute(
            f"SELECT path, robot_probability, threshold FROM calls WHERE {role}model_version = ? "
            "AND robot_probability IS NOT NULL",
            (model_version,),
        ):
            if t is not None:
                thresholds.add(round(float(t), 12))
            if path in wanted:
                listed.setdefault(fs_path(path), []).append(float(p))
            else:
                rest.append(float(p))
        missing = sorted(fs_path(p) for p in wanted if fs_path(p) not in listed)
    except sqlite3.Error as exc:
        raise ValueError(f"cannot read the store ({exc})") from None
    finally:
        conn.close()
    return {
        "model_version": model_version,
        "thresholds": sorted(thresholds),
        "listed": listed,
        "missing": missing,
        "rest": rest,
    }


def format_result(r: LocalThreshold) -> str:
    def pct(x):
        return "-" if x is None else f"{100 * x:.1f} %"

    lines = [
        f"{r.humans} known-human call(s), {r.robots} known-robot call(s), {r.others} other call(s); "
        f"model {r.model_version}"
    ]
    if r.missing:
        shown = ", ".join(display_path(p) for p in r.missing[:3]) + (" ..." if len(r.missing) > 3 else "")
        lines.append(f"{len(r.missing)} listed file(s) have no scored row in the store (scan them first): {shown}")
    rows = (
        ("the scan's threshold", r.model),
        (f"<= {100 * r.max_false_alarm:g} % of these humans flagged", r.point),
        (f"<= {100 * r.max_false_alarm:g} % with {100 * r.confidence:g} % confidence", r.certified),
    )
    for name, op in rows:
        if op is r.model and (op is None or op.threshold is None):
            lines.append(f"{name}: the store's calls were scored with several thresholds")
            continue
        if op is None or op.threshold is None:
            need = int(np.ceil(np.log(1 - r.confidence) / np.log(1 - r.max_false_alarm)))
            lines.append(f"{name}: not reachable with {r.humans} known humans (needs >= {need} with none flagged)")
            continue
        if op is r.point and r.certified is not None and r.certified.threshold is None:
            name += " (few known humans: an estimate, not a guarantee)"
        lines.append(
            f"{name}: --threshold {op.threshold:.4f}  humans flagged {op.humans_flagged}/{r.humans} "
            f"({pct(op.false_alarm)}, upper bound {pct(op.false_alarm_upper_bound)}); "
            f"other calls flagged {pct(op.others_flagged)}; known robots caught {pct(op.robots_caught)}"
        )
    return "\n".join(lines)
