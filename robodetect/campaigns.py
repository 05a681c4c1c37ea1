"""Robocall campaigns: calls that play the same prompt audio, whoever (or whatever) speaks it.

A voice detector cannot flag a prerecorded *human* prompt; finding the same audio in many calls can.
During ``scan`` each call's audio gets a compact landmark fingerprint (in the worker, see
:func:`fingerprint`), stored in the result store's ``fingerprints`` table and indexed by hash;
:func:`find_campaigns` then groups the calls that share enough hashes *at one consistent time
offset*, without comparing all pairs of calls.

Fingerprint (after Wang 2003 / audfprint / dejavu, tuned for 8 kHz telephone audio): spectral peaks
(local maxima of the log STFT magnitude in 250-3500 Hz, the strongest :data:`PEAKS_PER_SECOND`
per second, within :data:`FLOOR_DB` of the loudest) are chained into triplets (an anchor peak and
two later peaks within :data:`MAX_DT_FRAMES`); a hash is the three quantised frequencies and two
time gaps, mixed to 31 bits; a fixed 1 in :data:`KEEP_ONE_IN` of the hash values is kept (the same
ones in every replay). Peaks of speech survive G.711, GSM and AMR coding, noise and gain; relative
time gaps do not change with a lead-in or a few ms of offset (20 ms frames, gaps in 40 ms steps). Only the first
:data:`MAX_SECONDS` of each channel is fingerprinted (prompts play early; memory stays flat).

Clustering: the store keeps the hashes seen in more than one call (``shared_hashes``, an index
probe per row as a file is written), so only their rows are read; every two calls in one hash bucket vote
for their time offset (buckets of more than :data:`STAR_LIMIT` calls vote against their first
:data:`STAR_REPS` calls only, so a 10 000-call campaign costs linear time); two calls are linked
when at least :data:`MIN_MATCHES` hashes agree on one offset (+-1 frame); campaigns are the
connected components with at least ``min_calls`` calls.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.fft

from .audio import SAMPLE_RATE, display_path

FINGERPRINT_VERSION = 1
N_FFT = 512  # 64 ms at 8 kHz: 15.6 Hz bins resolve pitch harmonics
HOP = 160  # 20 ms frames, the time unit of fingerprints (time gaps in hashes are in 40 ms steps)
FRAMES_PER_SECOND = SAMPLE_RATE / HOP
LOW_HZ, HIGH_HZ = 250.0, 3500.0  # telephone band
PEAK_NEIGHBOURHOOD = (15, 11)  # (bins, frames) a peak must dominate
PEAKS_PER_SECOND = 7
FLOOR_DB = 45.0  # peaks within this of the loudest bin (ignores the noise floor)
FAN_OUT = 3  # partner peaks per anchor (and per partner, 2 more for the triplet)
MAX_DT_FRAMES = 50  # partners within 1 s
MAX_DF_BINS = 96
MAX_SECONDS = 120.0
KEEP_ONE_IN = 3
HASH_BITS = 31
F_SHIFT = 1  # frequencies in hashes: 31 Hz steps
T_SHIFT = 1  # time gaps in hashes: 2-frame steps
MIN_MATCHES = 5  # hashes agreeing on one offset to link two calls
STAR_LIMIT = 64
STAR_REPS = 16
FETCH_ROWS = 100_000
_WINDOW = np.hanning(N_FFT).astype(np.float32)


# ---- fingerprints (scan workers) -----------------------------------------------------------
def _window_max(a: np.ndarray, width: int, axis: int) -> np.ndarray:
    """Centred running maximum of a non-negative array over ``width`` (odd) along ``axis``, zero
    beyond the edges; O(n log width) with a doubling table (scipy's maximum_filter is O(n width))."""
    n, half = a.shape[axis], width // 2
    pad = [(0, 0)] * a.ndim
    pad[axis] = (half, half)
    m = np.pad(a, pad)

    def part(x: np.ndarray, start: int, length: int) -> np.ndarray:
        index = [slice(None)] * a.ndim
        index[axis] = slice(start, start + length)
        return x[tuple(index)]

    span = 1
    while 2 * span <= width:
        m = np.maximum(part(m, 0, m.shape[axis] - span), part(m, span, m.shape[axis] - span))
        span *= 2
    return np.maximum(part(m, 0, n), part(m, width - span, n))


def _peaks(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(frames, bins) of the spectral peaks of one 8 kHz channel, in time order."""
    n_frames = 1 + (len(x) - N_FFT) // HOP if len(x) >= N_FFT else 0
    if n_frames < 1:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP][:n_frames]
    lo, hi = int(LOW_HZ / SAMPLE_RATE * N_FFT), int(HIGH_HZ / SAMPLE_RATE * N_FFT)
    spec = scipy.fft.rfft(frames * _WINDOW, axis=1, overwrite_x=True)[:, lo:hi]
    parts = spec.view(np.float32)  # (frames, 2 * bins): real and imaginary parts interleaved
    np.square(parts, out=parts)
    power = parts[:, 0::2] + parts[:, 1::2]  # (frames, bins), float32
    top = _window_max(_window_max(power, PEAK_NEIGHBOURHOOD[1], axis=0), PEAK_NEIGHBOURHOOD[0], axis=1)
    peak = power == top
    peak &= power > power.max() * 10 ** (-FLOOR_DB / 10)
    flat = np.flatnonzero(peak)  # faster than a 2-D nonzero
    t, f = np.divmod(flat, power.shape[1])
    level = power.ravel()[flat]
    second = t // int(SAMPLE_RATE / HOP)
    order = np.lexsort((-level, second))
    f, t, second = f[order], t[order], second[order]
    keep = (np.arange(len(second)) - np.searchsorted(second, second)) < PEAKS_PER_SECOND
    f, t = f[keep] + lo, t[keep]
    order = np.lexsort((f, t))
    return t[order].astype(np.int64), f[order].astype(np.int64)


def _partners(t: np.ndarray, f: np.ndarray, fan: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Anchor/partner index pairs: each peak with its next ``fan`` peaks in the target zone, and
    each partner's rank (0 = the anchor's nearest)."""
    n = len(t)
    idx = np.arange(n)
    taken = np.zeros(n, np.int64)
    anchors, partners, ranks = [], [], []
    for k in range(1, 4 * fan + 1):
        i = idx[: max(n - k, 0)]
        j = i + k
        dt = t[j] - t[i]
        ok = (dt >= 1) & (dt <= MAX_DT_FRAMES) & (np.abs(f[j] - f[i]) <= MAX_DF_BINS) & (taken[i] < fan)
        i, j = i[ok], j[ok]
        ranks.append(taken[i].copy())
        taken[i] += 1
        anchors.append(i)
        partners.append(j)
    return np.concatenate(anchors), np.concatenate(partners), np.concatenate(ranks)


def _mix(raw: np.ndarray) -> np.ndarray:
    """Spread raw triplet codes over HASH_BITS bits (uniform, so hash ranges are even)."""
    h = raw.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    return (h >> np.uint64(64 - HASH_BITS)).astype(np.int64)


def fingerprint(x: np.ndarray) -> np.ndarray:
    """Landmark hashes of one 8 kHz channel: int64 array (n, 2) of (hash, frame), frames of
    :data:`HOP` samples from the start of ``x``; sorted, without duplicates."""
    x = np.asarray(x, dtype=np.float32)[: int(MAX_SECONDS * SAMPLE_RATE)]
    t, f = _peaks(x)
    if len(t) < 3:
        return np.zeros((0, 2), np.int64)
    a, b, rank = _partners(t, f, FAN_OUT)
    first_two = rank < 2
    b2, c2 = a[first_two], b[first_two]
    order = np.lexsort((rank[first_two], b2))
    b2, c2 = b2[order], c2[order]
    hashes, times = [], []
    for r in range(2):  # each (anchor, partner) pair extended by the partner's first two partners
        pos = np.searchsorted(b2, b) + r
        ok = pos < len(b2)
        ok[ok] = b2[pos[ok]] == b[ok]
        i, j, k = a[ok], b[ok], c2[pos[ok]]
        moving = (f[i] != f[j]) | (f[j] != f[k])  # a steady tone (hum, a beep) is no landmark
        i, j, k = i[moving], j[moving], k[moving]
        q = f >> F_SHIFT
        raw = (
            (q[i] << 28) | (q[j] << 20) | (q[k] << 12) | (((t[j] - t[i]) >> T_SHIFT) << 6) | ((t[k] - t[j]) >> T_SHIFT)
        )
        hashes.append(_mix(raw))
        times.append(t[i])
    h, at = np.concatenate(hashes), np.concatenate(times)
    keep = h % KEEP_ONE_IN == 0
    key = np.unique((h[keep] << 20) | at[keep])  # frames < 2**20 (MAX_SECONDS)
    return np.stack([key >> 20, key & ((1 << 20) - 1)], axis=1)


def fingerprint_channels(samples: np.ndarray) -> np.ndarray:
    """Fingerprint of a call: the union over its channels ((channels, n) at 8 kHz)."""
    parts = [fingerprint(row) for row in np.atleast_2d(samples)]
    out = np.concatenate(parts) if parts else np.zeros((0, 2), np.int64)
    return np.unique(out, axis=0) if len(parts) > 1 and len(out) else out


# ---- clustering ----------------------------------------------------------------------------
@dataclass
class CampaignCall:
    """One call of a campaign; the shared audio spans start..end seconds in it."""

    path: str
    start_seconds: float
    end_seconds: float
    robot_probability: float | None
    label: str
    mtime: float | None


@dataclass
class Campaign:
    """Calls playing the same prompt audio."""

    n_calls: int
    first_seen: float | None  # file mtimes (Unix seconds)
    last_seen: float | None
    mean_robot_probability: float | None
    human_voiced: bool  # the prompt sounds human: a prerecorded voice, still a robocall campaign
    shared_seconds: float  # median length of the shared span
    calls: list[CampaignCall] = field(default_factory=list)

    @property
    def examples(self) -> list[str]:
        return [c.path for c in self.calls[:3]]

    def to_dict(self) -> dict:
        return {**asdict(self), "examples": self.examples}

    def summary(self) -> dict:
        """to_dict() without the per-call list."""
        d = self.to_dict()
        del d["calls"]
        return d


def _bucket_pairs(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row index pairs (i, j), i < j, of rows with equal hash (rows sorted by hash): all pairs
    in buckets up to STAR_LIMIT rows, each row against the first STAR_REPS rows in bigger ones."""
    n = len(h)
    if n < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, h[1:] != h[:-1]])
    sizes = np.diff(np.r_[starts, n])
    pos = np.arange(n) - np.repeat(starts, sizes)
    size = np.repeat(sizes, sizes)
    first, second = [], []
    small = np.flatnonzero((size > 1) & (size <= STAR_LIMIT))
    k = 1
    while len(small):
        small = small[pos[small] + k < size[small]]
        first.append(small)
        second.append(small + k)
        k += 1
    big = np.flatnonzero(size > STAR_LIMIT)
    for r in range(STAR_REPS):
        rows = big[pos[big] > r]
        first.append(rows - pos[rows] + r)
        second.append(rows)
    return np.concatenate(first), np.concatenate(second)


_CALL_BITS, _DT_BITS = 24, 16
_DT_BIAS = 1 << (_DT_BITS - 1)


def _votes(h: np.ndarray, c: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, ...]:
    """(key, count, t_a min, t_a max) per (call a < call b, offset) voted by the rows' buckets."""
    i, j = _bucket_pairs(h)
    i, j = i[c[i] != c[j]], j[c[i] != c[j]]
    swap = c[i] > c[j]
    a, b = np.where(swap, j, i), np.where(swap, i, j)
    dt = np.clip(t[b] - t[a], -_DT_BIAS + 2, _DT_BIAS - 2) + _DT_BIAS
    key = (c[a].astype(np.uint64) << np.uint64(_CALL_BITS + _DT_BITS)) | (c[b].astype(np.uint64) << np.uint64(_DT_BITS))
    key |= dt.astype(np.uint64)
    return _reduce(key, np.ones(len(key), np.int64), t[a], t[a])


def _reduce(key, count, lo, hi) -> tuple[np.ndarray, ...]:
    if len(key) == 0:
        return key, count, lo, hi
    order = np.argsort(key, kind="stable")
    key, count, lo, hi = key[order], count[order], lo[order], hi[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    return (
        key[starts],
        np.add.reduceat(count, starts),
        np.minimum.reduceat(lo, starts),
        np.maximum.reduceat(hi, starts),
    )


SHARED_ROWS = """
SELECT f.hash, f.call_id, f.t FROM shared_hashes AS s JOIN fingerprints AS f ON f.hash = s.hash
"""
#: the same for a store written before ``shared_hashes`` existed (a full pass over the hash index)
SHARED_ROWS_SCAN = """
SELECT f.hash, f.call_id, f.t
FROM (SELECT hash FROM fingerprints GROUP BY hash HAVING min(call_id) < max(call_id)) AS s
JOIN fingerprints AS f ON f.hash = s.hash
"""


def _shared_rows(conn: sqlite3.Connection) -> np.ndarray:
    """(hash, call_id, t) rows whose hash occurs in two or more calls (the store keeps that list,
    ``shared_hashes``, as it writes), sorted by hash and call: most hashes of an archive are in one
    call only and are never read."""
    kept = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'shared_hashes'").fetchone()
    cursor = conn.execute(SHARED_ROWS if kept else SHARED_ROWS_SCAN)
    chunks = []
    while batch := cursor.fetchmany(FETCH_ROWS):
        chunks.append(np.array(batch, dtype=np.int64))
    rows = np.concatenate(chunks) if chunks else np.zeros((0, 3), np.int64)
    return rows[np.lexsort((rows[:, 1], rows[:, 0]))]


def _links(conn: sqlite3.Connection, min_matches: int) -> tuple[np.ndarray, ...]:
    """Linked call pairs: (a, b, offset frames, matches, first/last matching frame in a)."""
    rows = _shared_rows(conn)
    key, count, lo, hi = _votes(rows[:, 0], rows[:, 1], rows[:, 2])
    del rows
    if len(key) == 0:
        return tuple(np.zeros(0, np.int64) for _ in range(6))
    # a call pair's matches at offset d, d-1 and d+1 (codec delays, frame rounding)
    near = count.copy()
    for target in (key + np.uint64(1), key - np.uint64(1)):  # offsets never reach the field's ends
        pos = np.minimum(np.searchsorted(key, target), len(key) - 1)
        hit = key[pos] == target
        near[hit] += count[pos[hit]]
    pair = key >> np.uint64(_DT_BITS)
    # keep the best offset of each pair
    order = np.lexsort((-near, pair))
    first = order[np.r_[True, pair[order][1:] != pair[order][:-1]]]
    first = first[near[first] >= min_matches]
    mask = np.uint64((1 << _CALL_BITS) - 1)
    a = (key[first] >> np.uint64(_CALL_BITS + _DT_BITS)).astype(np.int64)
    b = ((key[first] >> np.uint64(_DT_BITS)) & mask).astype(np.int64)
    dt = (key[first] & np.uint64((1 << _DT_BITS) - 1)).astype(np.int64) - _DT_BIAS
    return a, b, dt, near[first], lo[first], hi[first]


def unfingerprinted_files(db_path: str | os.PathLike) -> int:
    """Files (paths) in a result store that :func:`find_campaigns` cannot search: scanned with
    ``scan --no-fingerprints`` and fingerprinted under no other model version or channel mode."""
    from .store import _has_column, connect

    conn = connect(db_path, readonly=True)
    try:
        if not _has_column(conn, "fingerprinted"):
            return 0
        return conn.execute(
            "SELECT count(DISTINCT path) FROM calls WHERE fingerprinted = 0 AND path NOT IN "
            "(SELECT path FROM calls WHERE error IS NULL AND fingerprinted IS NOT 0)"
        ).fetchone()[0]
    finally:
        conn.close()


def find_campaigns(db_path: str | os.PathLike, *, min_calls: int = 3, min_matches: int = MIN_MATCHES) -> list[Campaign]:
    """Campaigns in a result store, biggest first (raises like :func:`robodetect.store.connect`)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from .store import connect

    conn = connect(db_path, readonly=True)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'fingerprints'").fetchone():
            return []
        a, b, dt, _, lo, hi = _links(conn, min_matches)
        if len(a) == 0:
            return []
        nodes, inverse = np.unique(np.r_[a, b], return_inverse=True)
        ia, ib = inverse[: len(a)], inverse[len(a) :]
        graph = coo_matrix((np.ones(len(a)), (ia, ib)), shape=(len(nodes), len(nodes)))
        n_comp, comp = connected_components(graph, directed=False)
        # shared span per call: matching frames in a, and the same span moved by the offset in b
        start = np.full(len(nodes), np.iinfo(np.int64).max)
        end = np.full(len(nodes), -1)
        np.minimum.at(start, ia, lo)
        np.maximum.at(end, ia, hi)
        np.minimum.at(start, ib, lo + dt)
        np.maximum.at(end, ib, hi + dt)
        sizes = np.bincount(comp, minlength=n_comp)
        campaigns = []
        for k in np.argsort(-sizes, kind="stable"):
            if sizes[k] < min_calls:
                break
            members = np.flatnonzero(comp == k)
            campaigns.append(_campaign(conn, nodes[members], start[members], end[members]))
        return campaigns
    finally:
        conn.close()


def _campaign(conn: sqlite3.Connection, ids: np.ndarray, start: np.ndarray, end: np.ndarray) -> Campaign:
    from .store import fs_path

    info = {}
    for i in range(0, len(ids), 500):
        chunk = [int(x) for x in ids[i : i + 500]]
        info.update(
            (row[0], row[1:])
            for row in conn.execute(
                "SELECT id, path, robot_probability, label, mtime, threshold FROM calls "
                f"WHERE id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
        )
    calls, thresholds = [], []
    for cid, s, e in zip(ids.tolist(), start.tolist(), end.tolist(), strict=True):
        if cid not in info:
            continue
        path, prob, label, mtime, threshold = info[cid]
        path = fs_path(path)
        calls.append(
            CampaignCall(
                path, round(s / FRAMES_PER_SECOND, 2), round((e + 1) / FRAMES_PER_SECOND, 2), prob, label, mtime
            )
        )
        if threshold is not None:
            thresholds.append(threshold)
    calls.sort(key=lambda c: (c.mtime or 0.0, c.path))
    probs = [c.robot_probability for c in calls if c.robot_probability is not None]
    mtimes = [c.mtime for c in calls if c.mtime is not None]
    mean = float(np.mean(probs)) if probs else None
    threshold = float(np.median(thresholds)) if thresholds else 0.5
    return Campaign(
        n_calls=len(calls),
        first_seen=min(mtimes) if mtimes else None,
        last_seen=max(mtimes) if mtimes else None,
        mean_robot_probability=None if mean is None else round(mean, 4),
        human_voiced=mean is not None and mean < threshold,
        shared_seconds=round(float(np.median([c.end_seconds - c.start_seconds for c in calls])), 2) if calls else 0.0,
        calls=calls,
    )


def format_campaigns(campaigns: list[Campaign], *, examples: int = 3) -> str:
    """Readable list of campaigns (what ``robodetect campaigns`` prints)."""
    import time

    if not campaigns:
        return "no campaigns found (no prompt audio shared by enough calls)"

    def day(ts: float | None) -> str:
        return time.strftime("%Y-%m-%d", time.localtime(ts)) if ts is not None else "?"

    lines = [f"{len(campaigns)} campaign(s) of replayed prompt audio:"]
    for n, c in enumerate(campaigns, 1):
        voice = (
            "human-voiced prompt (a prerecorded voice: still a robocall campaign)"
            if c.human_voiced
            else "synthetic-sounding prompt"
        )
        prob = "n/a" if c.mean_robot_probability is None else f"{c.mean_robot_probability:.3f}"
        lines.append(
            f"campaign {n}: {c.n_calls} calls, seen {day(c.first_seen)} .. {day(c.last_seen)}, shared audio "
            f"~{c.shared_seconds:.1f} s per call, mean robot probability {prob}: {voice}"
        )
        for call in c.calls[:examples]:
            lines.append(f"    {display_path(call.path)}  (shared {call.start_seconds:.1f}-{call.end_seconds:.1f} s)")
        if c.n_calls > examples:
            lines.append(f"    ... and {c.n_calls - examples} more")
    return "\n".join(lines)


__all__ = [
    "fingerprint",
    "fingerprint_channels",
    "unfingerprinted_files",
    "find_campaigns",
    "format_campaigns",
    "Campaign",
    "CampaignCall",
    "FINGERPRINT_VERSION",
]
