"""Detection metrics: equal error rate and error rates at a threshold (robot = positive class)."""

from __future__ import annotations

import numpy as np


def eer(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, float]:
    """Equal error rate and the threshold where it occurs.

    scores: higher = more robotic; labels: 1 robot, 0 human; weights: optional non-negative weight
    per score (each class's rates are weighted shares; None: every score counts once). Returns (eer
    in 0..1, threshold). A NaN score is a ValueError (it has no place on the curve).
    """
    scores, labels = np.asarray(scores, float), np.asarray(labels, int)
    w = np.ones(len(scores)) if weights is None else np.asarray(weights, float)
    pos, neg = labels == 1, labels == 0
    if not pos.any() or not neg.any():
        raise ValueError("EER needs both robot and human scores")
    if np.isnan(scores).any():  # a NaN sorts last and compares False: the curve would be meaningless
        raise ValueError(f"EER: {int(np.isnan(scores).sum())} of {len(scores)} scores are NaN")
    if w.shape != scores.shape or not np.isfinite(w).all() or (w < 0).any() or not (w[pos].sum() > 0 < w[neg].sum()):
        raise ValueError("EER weights must be finite, non-negative, one per score, positive in each class")
    thresholds = np.unique(np.concatenate([scores, [np.inf]]))

    def below(cls: np.ndarray) -> tuple[np.ndarray, float]:  # class weight scoring < each threshold, total
        order = np.argsort(scores[cls], kind="stable")
        cum = np.concatenate([[0.0], np.cumsum(w[cls][order])])
        return cum[np.searchsorted(scores[cls][order], thresholds, side="left")], cum[-1]

    missed, n_pos = below(pos)
    passed, n_neg = below(neg)
    frr = missed / n_pos  # robots missed
    far = (n_neg - passed) / n_neg  # humans flagged
    i = int(np.argmin(np.abs(frr - far)))
    return float((frr[i] + far[i]) / 2), float(thresholds[i])


def rates_at(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    """Accuracy, human false-alarm rate and robot detection rate at ``threshold`` (score >= t -> robot)."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, int)
    pred = scores >= threshold
    out = {"accuracy": float((pred == labels.astype(bool)).mean())}
    if (labels == 0).any():
        out["human_false_alarm"] = float(pred[labels == 0].mean())
    if (labels == 1).any():
        out["robot_detection"] = float(pred[labels == 1].mean())
    return out


def threshold_flagging_at_most(human_scores: np.ndarray, k: int) -> float:
    """Smallest threshold at or above which at most ``k`` of ``human_scores`` lie (a tie across
    the k-th place stays below it; ``k`` >= their number: the lowest score)."""
    s = np.sort(np.asarray(human_scores, float))
    if k >= len(s):
        return float(s[0])
    return float(np.nextafter(s[len(s) - k - 1], np.inf))


def threshold_for_false_alarm(human_scores: np.ndarray, max_false_alarm: float) -> float:
    """Smallest threshold whose human false-alarm rate is <= max_false_alarm."""
    n = len(human_scores)
    return threshold_flagging_at_most(human_scores, int(np.floor(max_false_alarm * n)))  # humans allowed


#: the lowest robot threshold ever fitted: below it the model would call more robots than humans
MIN_ROBOT_THRESHOLD = 0.5
#: the share of calibration humans the robot threshold may flag
MAX_FALSE_ALARM = 0.01


def robot_threshold(human_probabilities: np.ndarray, max_false_alarm: float = MAX_FALSE_ALARM) -> float:
    """The threshold that flags at most ``max_false_alarm`` of these humans' calibrated
    probabilities (never below MIN_ROBOT_THRESHOLD)."""
    return max(MIN_ROBOT_THRESHOLD, threshold_for_false_alarm(human_probabilities, max_false_alarm))


def weighted_threshold_for_false_alarm(scores: np.ndarray, weights: np.ndarray, max_false_alarm: float) -> float:
    """Smallest threshold whose *weighted* false-alarm rate (the weight share of ``scores`` at or
    above it) is <= ``max_false_alarm``: with equal weights, :func:`threshold_for_false_alarm`.
    Weights let each source count the same whatever its number of calls."""
    s = np.asarray(scores, float)
    w = np.asarray(weights, float)
    if s.shape != w.shape or not len(s) or (w < 0).any() or w.sum() <= 0:
        raise ValueError("scores and non-negative weights of the same, non-zero length needed")
    values, inverse = np.unique(s, return_inverse=True)
    mass = np.bincount(inverse, weights=w / w.sum())[::-1]  # per distinct value, highest first
    flagged = np.cumsum(mass)  # share flagged by a threshold at each value (ties go together)
    j = int(np.searchsorted(flagged, max_false_alarm * (1 + 1e-9), side="right"))  # values that may be flagged
    if j >= len(values):
        return float(values[0])
    return float(np.nextafter(values[::-1][j], np.inf))
