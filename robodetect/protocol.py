"""The data protocol: who is who, which split, which family, and how sure a number is.

Used by ``scripts/build_corpus.py`` (to give every synthesised clip a voice, text and split that
are consistent) and by training/evaluation (to read both manifests with one rule). Three splits:

* ``train``: fits the weights;
* ``cal``: fits Platt scaling, the threshold and the uncertain band (never trained on);
* ``dev``: reported only, never used for any choice.

They are disjoint by **voice identity** (a voice that several engines share, e.g. CMU's *kal*
in festival and flite, or the AISHELL-3 speaker that a zero-shot TTS model clones, is one
identity), by **text / robocall template** (robot clips read only texts of their own split) and
by **human speaker**. Generalisation to engines never heard is measured by leaving whole
**families** out (:data:`FAMILIES`), never single engines of a family.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable

import numpy as np

SPLITS = ("train", "cal", "dev")
DEV_FRACTION = 0.15
CAL_FRACTION = 0.15

#: leave-one-family-out units: engines that share voices, architecture or vocoder go together
FAMILIES = {
    "festival": "festvox",
    "flite": "festvox",
    "piper": "vits",
    "coqui-vits-vctk": "vits",
    "espeak-ng": "espeak-ng",
    "zs-tts": "zs-tts",
    "kokoro": "kokoro",
    "hibari": "kokoro",  # distilled from Kokoro
    "kokoro-blend": "kokoro",  # Kokoro with two of its voices' styles mixed
    "vocoder-hifigan": "neural-vocoder",
    "vocoder-hifigan-tts": "neural-vocoder",  # the same vocoder, fed a TTS-like log-mel
    "vocoder-hifigan-prosody": "neural-vocoder",  # ... after a WORLD pass with a predicted-like f0
    "vocoder-hifigan-tts-level": "neural-vocoder",  # ... with each frame's level kept
    "vocoder-world": "dsp-vocoder",
    "vocoder-lpc": "dsp-vocoder",
    "vocoder-griffinlim": "dsp-vocoder",
}

# CMU/FestVox voices that several engines ship under different names (one person each)
_SHARED_VOICES = {
    "kal": "kal",
    "kal16": "kal",
    "kal_diphone": "kal",
    "ked_diphone": "ked",
    "rab_diphone": "rab",
    "slt": "slt",
    "cmu_us_slt_arctic_hts": "slt",
    "awb": "awb",
    "rms": "rms",
}


def sha1_hex(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def engine_of(row: dict) -> str:
    """The engine (``zs-tts-*`` models count as one engine ``zs-tts``); ``human`` for people."""
    engine = row["engine"]
    return "zs-tts" if engine.startswith("zs-tts") else engine


def family_of(row: dict) -> str:
    """Leave-one-family-out unit: a robot engine family, or the human source."""
    if row["label"] == "human":
        return row["source"]
    engine = engine_of(row)
    return FAMILIES.get(engine, engine)


def voice_identity(row: dict) -> str:
    """One id per person or synthetic voice, the same whichever engine or corpus it appears in.

    Human ``<source>:<speaker>``; a zero-shot clone is the AISHELL-3 speaker it clones; a vocoded
    copy of a human utterance is that human; festvox voices by their CMU name; espeak-ng by its
    variant (the variant sets the formant voice, the base language only the pronunciation)."""
    speaker = row["speaker"]
    engine = engine_of(row)
    if row["label"] == "human" or engine.startswith("vocoder"):
        return speaker if ":" in speaker else f"{row['source']}:{speaker}"
    if engine == "zs-tts":
        return f"aishell3-gt:{speaker}"
    if engine == "coqui-vits-vctk":
        return f"vctk:{speaker}"
    voice = speaker.split(":", 1)[-1]
    if engine in ("festival", "flite"):
        return f"festvox:{_SHARED_VOICES.get(voice, voice)}"
    if engine == "espeak-ng":
        return f"espeak-ng:{voice.split('+', 1)[1] if '+' in voice else 'default'}"
    if engine == "hibari":  # "heart-gb" is the same model read with British pronunciation rules
        return f"kokoro:af_{voice.split('-', 1)[0]}"
    return f"{engine}:{voice}"


def blend_parts(voice: str) -> list[tuple[str, float]]:
    """A blended voice's name (``kokoro-blend``'s ``"<a>*<w>+<b>"``) -> ``[(a, w), (b, 1 - w)]``; a
    plain voice name -> ``[(voice, 1.0)]``."""
    m = re.fullmatch(r"([\w-]+)\*([0-9.]+)\+([\w-]+)", voice)
    if not m:
        return [(voice, 1.0)]
    w = float(m.group(2))
    if not 0.0 < w < 1.0:
        raise ValueError(f"kokoro: blend weight out of (0, 1) in {voice!r}")
    return [(m.group(1), w), (m.group(3), 1.0 - w)]


def blend_parents(row: dict) -> list[str]:
    """The voice identities a ``kokoro-blend`` voice mixes (``kokoro-blend:<a>*<w>+<b>`` ->
    ``["kokoro:<a>", "kokoro:<b>"]``); none for any other row. A blend may only mix training voices,
    which :func:`robodetect.train.read_manifests` checks against the corpora it reads together."""
    if engine_of(row) != "kokoro-blend":
        return []
    parts = blend_parts(row["speaker"].removeprefix("kokoro-blend:"))
    if len(parts) != 2:
        raise ValueError(f"kokoro-blend voice {row['speaker']!r} is not a blend of two voices")
    return [f"kokoro:{name}" for name, _ in parts]


def identity_pool(identity: str) -> str:
    """Identities are split within their pool (the part before the first colon)."""
    return identity.split(":", 1)[0]


def assign_identity_splits(identities: Iterable[str], *, train_only: Iterable[str] = ()) -> dict[str, str]:
    """Split identities per pool: sorted by SHA-1, the first ~15 % dev, the next ~15 % cal.

    A pool of one identity is all train (it can only be measured by leaving its family out); of
    two, one dev and one train; of three or more, at least one of each. ``train_only`` pools
    (e.g. the sources of vocoded copies) keep every identity in train."""
    pools: dict[str, list[str]] = defaultdict(list)
    for ident in sorted(set(identities)):
        pools[identity_pool(ident)].append(ident)
    train_only = set(train_only)
    out: dict[str, str] = {}
    for pool, members in pools.items():
        members.sort(key=sha1_hex)
        n = len(members)
        if pool in train_only or n == 1:
            n_dev = n_cal = 0
        elif n == 2:
            n_dev, n_cal = 1, 0
        else:
            n_dev = max(1, round(DEV_FRACTION * n))
            n_cal = max(1, round(CAL_FRACTION * n))
            if n_dev + n_cal >= n:
                n_dev, n_cal = 1, 1
        for i, ident in enumerate(members):
            out[ident] = "dev" if i < n_dev else "cal" if i < n_dev + n_cal else "train"
    return out


def text_split(text: str) -> str:
    """Split of a text or template: 70 % train, 15 % cal, 15 % dev by its hash."""
    u = int(sha1_hex("text:" + text.strip().lower()), 16) % 100
    return "dev" if u < 15 else "cal" if u < 30 else "train"


def apply_splits(rows: list[dict]) -> dict[str, str]:
    """Set ``identity``, ``family`` and ``split`` on manifest rows (humans and robots together, so
    an identity shared across corpora lands in one split). Returns identity -> split."""
    for r in rows:
        r["identity"] = voice_identity(r)
        r["family"] = family_of(r)
    vocoded_sources = {r["identity"] for r in rows if engine_of(r).startswith("vocoder")}
    splits = assign_identity_splits(r["identity"] for r in rows)
    for ident in vocoded_sources:  # vocoded humans stay on the train side
        splits[ident] = "train"
    for r in rows:
        r["split"] = splits[r["identity"]]
    return splits


# ---- uncertainty -----------------------------------------------------------------------------
def bootstrap_ci(
    stat, scores: np.ndarray, labels: np.ndarray, clusters: np.ndarray, *, n_boot: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """``stat(scores, labels)`` with a cluster (speaker/voice) bootstrap 95 % interval.

    Clusters are resampled with replacement within each class, so each replicate keeps both
    classes; returns (value, low, high)."""
    scores, labels, clusters = np.asarray(scores, float), np.asarray(labels, int), np.asarray(clusters)
    value = float(stat(scores, labels))
    rng = np.random.default_rng(seed)
    groups = []
    for cls in (0, 1):
        ids = np.unique(clusters[labels == cls])
        groups.append([np.flatnonzero((clusters == c) & (labels == cls)) for c in ids])
    reps = []
    for _ in range(n_boot):
        idx = np.concatenate([np.concatenate([g[i] for i in rng.integers(0, len(g), len(g))]) for g in groups if g])
        reps.append(stat(scores[idx], labels[idx]))
    lo, hi = np.percentile(reps, [2.5, 97.5])
    return value, float(lo), float(hi)
