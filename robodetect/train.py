"""Training: simulated-call window datasets, the training loop, calibration.

Used by ``scripts/train.py`` and ``scripts/evaluate.py``. A *call dataset* is an ``.npz`` with
every scoring window of every simulated call (int16 PCM, exactly what the detector would cut from
that call) plus a per-call table (label, split, source group, engine, speaker, language, codec).
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
from scipy.stats import beta as beta_dist

from . import scoring
from .audio import SAMPLE_RATE
from .config import COSINE_SCALE
from .detector import analyze_speech
from .features import HOP_SAMPLES, WINDOW_SAMPLES
from .metrics import MAX_FALSE_ALARM, eer, robot_threshold, threshold_for_false_alarm
from .model import ModelConfig, RobotNet
from .protocol import apply_splits, blend_parents, family_of, voice_identity
from .rawboost import RawBoostConfig, rawboost
from .simulate import SimConfig, channel_view, simulate_call, simulate_two_party, trim_silence
from .vad import VadConfig

ZH_SHARE = 0.35  # share of Mandarin calls within each label (balanced across labels)
# share of robot calls in languages other than English and Mandarin (taken from English; humans in
# the corpora speak only those two, so this share exists for robots only; see the model card)
OTHER_SHARE = 0.08
# what a dataset file holds; part of its cache key: 2 = the windows' cover (replan at any hop)
DATASET_FORMAT = 2
PLAN_VERSION = 4  # part of the simulated-dataset cache key (scripts/train.py): bump when plans change
SPEECH_SECONDS = (2.0, 12.0)  # speech per simulated call, uniform
# plan 4: a share of one-party calls (both labels, every split) hears less than one window of
# speech, as a callee's "hello?" or a call hung up early does; their one window is the speech
# tiled, which plan 3 never trained on (two-party callee channels scored robot-ish)
SHORT_CALL_SHARE = 0.15
SHORT_SPEECH_SECONDS = (0.6, 2.0)
UTTERANCE_SECONDS = (1.5, 6.0)  # every source utterance is cropped to a length drawn from here (both labels)
MAX_UTTERANCES = 24
TWO_PARTY_VIEWS = ("caller", "callee", "mono")  # rows of a two-party call in a dataset


def read_manifests(paths: list[Path]) -> list[dict]:
    """Rows of the shared manifest and of generated TTS manifests (paths made absolute), each with
    the protocol's ``identity``, ``family`` (= ``group``, the leave-one-out unit) and ``split``.

    The shared corpus is re-split by :func:`robodetect.protocol.apply_splits` (train / cal / dev,
    by voice identity across corpora); generated manifests carry the split their builder chose
    (voice and text disjoint) and are only checked against it."""
    rows = []
    for path in paths:
        base = Path(path).resolve().parent
        with open(path, newline="") as fh:
            table = list(csv.DictReader(fh))
        generated = "settings" in (table[0] if table else {})
        if not generated:
            apply_splits(table)
        for r in table:
            r["path"] = str(Path(r["path"]) if Path(r["path"]).is_absolute() else base / r["path"])
            r["identity"] = voice_identity(r)
            r["group"] = r["family"] = family_of(r)
            rows.append(r)
    splits: dict[str, str] = {}
    for r in rows:
        if splits.setdefault(r["identity"], r["split"]) != r["split"]:
            raise ValueError(f"voice identity {r['identity']} is in splits {splits[r['identity']]} and {r['split']}")
    for r in rows:  # a blended voice (kokoro-blend) is train, so its parents must be too
        for parent in blend_parents(r):
            if splits.get(parent, "train") != "train":
                raise ValueError(f"{r['path']}: its voice blends {parent}, a voice of the {splits[parent]} split")
    return rows


@dataclass
class CallPlan:
    call_id: int
    label: str
    split: str
    group: str
    engine: str
    speaker: str
    lang: str
    paths: list[str]
    speech_seconds: float
    seed: int
    identity: str = ""
    mode: str = "call"  # "call" (one party), "clip" (one utterance, no channel), "two-party"
    callee_paths: list[str] | None = None  # two-party: the human callee's utterances
    callee_group: str | None = None  # two-party: the callee's source (a human leave-out drops it too)


def plan_calls(
    rows: list[dict],
    split: str,
    calls_per_label: int,
    seed: int,
    *,
    mode: str = "call",
    short_share: float = SHORT_CALL_SHARE,
) -> list[CallPlan]:
    """Speaker-weighted plan: per label, languages get fixed shares; within a label and language
    every group (engine/source) gets an equal share, and every speaker in it an equal share.

    ``mode="clip"``: one source utterance, no telephone channel (clips vs calls);
    ``mode="two-party"``: each call gets a human callee of the same split and language (another
    speaker), simulated by :func:`simulate_two_party`. ``short_share``: the share of one-party calls
    that hear only ``SHORT_SPEECH_SECONDS`` of speech."""
    rng = np.random.default_rng(seed)
    short = np.random.default_rng([seed, 0x5407])  # its own generator: every plan-3 draw is unchanged
    humans: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["split"] == split and r["label"] == "human":
            humans[r["lang"]][r["identity"]].append(r)
    tree: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for r in rows:
        if r["split"] == split:
            lang_key = r["lang"] if r["lang"] in ("en", "zh") else "other"
            tree[(r["label"], lang_key)][r["group"]][r["speaker"]].append(r)
    plans: list[CallPlan] = []
    for label in ("human", "robot"):
        other = OTHER_SHARE if tree.get((label, "other")) and mode != "two-party" else 0.0
        for lang, share in (("en", 1 - ZH_SHARE - other), ("zh", ZH_SHARE), ("other", other)):
            groups = tree.get((label, lang), {})
            if not groups:
                continue
            n_lang = int(round(calls_per_label * share))
            names = sorted(groups)
            for k in range(n_lang):
                group = names[k % len(names)]
                speakers = sorted(groups[group])
                speaker = speakers[int(rng.integers(len(speakers)))]
                utts = groups[group][speaker]
                target = float(rng.uniform(*SPEECH_SECONDS))
                if mode == "call" and short.random() < short_share:
                    target = float(short.uniform(*SHORT_SPEECH_SECONDS))
                order = np.concatenate([rng.permutation(len(utts)) for _ in range(-(-MAX_UTTERANCES // len(utts)))])
                chosen = [utts[i] for i in order[:MAX_UTTERANCES]]  # long single files get cropped repeatedly
                first = chosen[0]
                callee = callee_group = None
                if mode == "two-party":
                    others = sorted(i for i in humans[first["lang"]] if i != first["identity"])
                    pick = humans[first["lang"]][others[int(rng.integers(len(others)))]]
                    callee = [pick[int(i)]["path"] for i in rng.integers(0, len(pick), 8)]
                    callee_group = pick[0]["group"]
                plans.append(
                    CallPlan(
                        len(plans),
                        label,
                        split,
                        group,
                        first["engine"],
                        speaker,
                        first["lang"],
                        [u["path"] for u in chosen],
                        target,
                        int(rng.integers(2**31)),
                        first["identity"],
                        mode,
                        callee,
                        callee_group,
                    )
                )
    return plans


def _crop(x: np.ndarray, seconds: float, rng: np.random.Generator) -> np.ndarray:
    n = int(seconds * SAMPLE_RATE)
    if len(x) <= n:
        return x
    start = int(rng.integers(0, len(x) - n))
    return x[start : start + n]


def _read_utterances(paths: list[str], seconds: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Trimmed source utterances, each cropped to a drawn length, until ``seconds`` of speech."""
    utts, left = [], seconds
    for p in paths:
        x, sr = sf.read(p, dtype="float32", always_2d=False)
        assert sr == SAMPLE_RATE, f"{p}: expected 8 kHz"
        x = _crop(trim_silence(x), max(0.5, min(left, rng.uniform(*UTTERANCE_SECONDS))), rng)
        utts.append(x)
        left -= len(x) / SAMPLE_RATE
        if left <= 0.25:
            break
    return utts


def _int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)


def _windows_int16(
    signal: np.ndarray, vad: VadConfig | None = None
) -> tuple[np.ndarray, float, float, np.ndarray | None]:
    """(int16 windows of the plan at HOP_SAMPLES, speech s, duration s, the cover window): the
    stored windows hold the speech up to their last end; when speech goes on after it (by less
    than MIN_SPEECH_SAMPLES, so the plan has no tail), the window ending at the last speech sample
    is kept apart, so that the plan of any other hop can be cut from the stored speech
    (:meth:`CallData.replan`)."""
    a, speech, spans = analyze_speech(signal, vad_config=vad)
    windows = _int16(scoring.cut_windows(speech, spans))
    covered = max((b for _, b in spans), default=len(speech))
    cover = _int16(speech[-WINDOW_SAMPLES:]) if covered < len(speech) and spans else None
    return windows, a.speech_seconds, a.duration_seconds, cover


def build_call(plan: CallPlan, sim: SimConfig | None = None, vad: VadConfig | None = None) -> tuple[np.ndarray, dict]:
    """Simulate one planned call and cut its windows. Returns (int16 windows, meta).

    Two-party plans return the windows of three views, told apart by ``meta["view_windows"]``
    (counts in order): the caller's channel, the callee's channel, and the mono mix."""
    rng = np.random.default_rng(plan.seed)
    utts = _read_utterances(plan.paths, plan.speech_seconds, rng)
    if plan.mode == "clip":
        x = utts[0] / (np.max(np.abs(utts[0])) + 1e-9) * 0.5
        windows, speech, duration, cover = _windows_int16(x.astype(np.float32), vad)
        meta = {"codec": "clip"}
    elif plan.mode == "two-party":
        callee = _read_utterances(plan.callee_paths or [], plan.speech_seconds / 3, rng)
        stereo, meta = simulate_two_party(utts, callee, rng, sim)
        views = [_windows_int16(v, vad) for v in (stereo[0], stereo[1], stereo.mean(0))]
        windows = np.concatenate([v[0] for v in views])
        speech, duration, cover = views[0][1], views[2][2], None
        meta = {
            "codec": meta["caller"]["codec"],
            "view_windows": [len(v[0]) for v in views],
            "view_speech_samples": [int(round(v[1] * SAMPLE_RATE)) for v in views],
            "view_covers": [v[3] for v in views],
        }
    else:
        call, meta = simulate_call(utts, rng, sim)
        windows, speech, duration, cover = _windows_int16(call, vad)
    meta.update(speech_samples=int(round(speech * SAMPLE_RATE)), duration_seconds=round(duration, 2))
    if cover is not None:
        meta["cover"] = cover
    return windows, meta


def _build_one(args: tuple[CallPlan, SimConfig | None, VadConfig | None]) -> tuple[int, np.ndarray, dict]:
    plan, sim, vad = args
    try:
        windows, meta = build_call(plan, sim, vad)
    except Exception as exc:  # a bad source file skips that call, never the build
        return plan.call_id, np.zeros((0, 16000), np.int16), {"error": f"{type(exc).__name__}: {exc}"}
    return plan.call_id, windows, meta


def build_dataset(
    plans: list[CallPlan], out: Path, workers: int = 2, sim: SimConfig | None = None, vad: VadConfig | None = None
) -> Path:
    """Simulate every planned call, cut its windows with ``vad`` (None: this code's default VAD) and
    save ``out`` (.npz) with the windows, the call table and the VAD settings."""
    vad = vad or VadConfig()
    t0 = time.time()
    results: dict[int, tuple[np.ndarray, dict]] = {}
    with ProcessPoolExecutor(workers) as pool:
        for i, (cid, windows, meta) in enumerate(pool.map(_build_one, [(p, sim, vad) for p in plans], chunksize=8)):
            results[cid] = (windows, meta)
            if (i + 1) % 500 == 0:
                print(f"  {out.name}: {i + 1}/{len(plans)} calls ({time.time() - t0:.0f} s)", flush=True)
    windows, call_of_window, calls, covers, cover_call = [], [], [], [], []
    for p in plans:
        w, meta = results[p.call_id]
        view_covers = meta.pop("view_covers", None) or []
        view_speech = meta.pop("view_speech_samples", None) or []
        cover = meta.pop("cover", None)
        row = {**p.__dict__, "paths": len(p.paths), "callee_paths": None, **meta}
        views = row.get("view_windows")
        if views is None:
            calls.append({**row, "n_windows": len(w)})
            windows.append(w)
            call_of_window.append(np.full(len(w), p.call_id, np.int32))
            if cover is not None:
                covers.append(cover)
                cover_call.append(p.call_id)
            continue
        # two-party: three rows per call (caller channel, callee channel, mono mix), ids 3k + v
        edges = np.cumsum([0, *views])
        for v, view in enumerate(TWO_PARTY_VIEWS):
            cid = 3 * p.call_id + v
            label = "human" if view == "callee" else p.label
            view_row = {**row, "call_id": cid, "pair": p.call_id, "view": view, "label": label, "n_windows": views[v]}
            view_row["speech_samples"] = view_speech[v]
            calls.append(view_row)
            windows.append(w[edges[v] : edges[v + 1]])
            call_of_window.append(np.full(views[v], cid, np.int32))
            if view_covers[v] is not None:
                covers.append(view_covers[v])
                cover_call.append(cid)
    np.savez(
        out,
        windows=np.concatenate(windows),
        call_of_window=np.concatenate(call_of_window),
        calls=np.array(json.dumps(calls)),
        covers=np.array(covers, np.int16).reshape(-1, WINDOW_SAMPLES),
        cover_call=np.array(cover_call, np.int32),
        vad=np.array(json.dumps(asdict(vad), sort_keys=True)),
    )
    n_err = sum("error" in c for c in calls)
    print(
        f"  {out.name}: {len(plans)} calls, {sum(len(w) for w in windows)} windows, {n_err} errors, "
        f"{time.time() - t0:.0f} s",
        flush=True,
    )
    return out


@dataclass
class CallData:
    windows: np.ndarray  # (N, 16000) int16
    call_of_window: np.ndarray  # (N,)
    calls: list[dict]
    # front-end features per filterbank and front-end config (the front end has no trainable
    # weights, so every model with the same front end shares them): {key: (logmel half (N, bands,
    # frames), prosody (N, 6))}
    features: dict = field(default_factory=dict, repr=False)
    # {call_id: the window ending at the call's last speech sample} where the stored windows stop
    # short of it (datasets built since the window hop became a model setting; see _windows_int16)
    covers: dict = field(default_factory=dict, repr=False)
    hop: int = HOP_SAMPLES  # the window hop the windows were cut with
    replans: dict = field(default_factory=dict, repr=False)  # {hop: CallData} (replan's cache)
    has_covers: bool = True  # False: built before covers were kept (replan refuses)
    vad: dict | None = None  # the VAD settings the windows were cut with (None: not recorded)

    @classmethod
    def load(cls, path: Path) -> CallData:
        z = np.load(path)
        covers = dict(zip(z["cover_call"].tolist(), z["covers"])) if "covers" in z.files else None
        calls = json.loads(str(z["calls"]))
        vad = json.loads(str(z["vad"])) if "vad" in z.files else None
        return cls(
            z["windows"], z["call_of_window"], calls, covers=covers or {}, has_covers=covers is not None, vad=vad
        )

    def subset(self, keep_call) -> CallData:
        ids = {c["call_id"] for c in self.calls if keep_call(c)}
        mask = np.isin(self.call_of_window, list(ids))
        idx = torch.from_numpy(np.flatnonzero(mask))
        feats = {k: (m[idx], p[idx]) for k, (m, p) in self.features.items()}
        covers = {k: v for k, v in self.covers.items() if k in ids}
        return CallData(
            self.windows[mask],
            self.call_of_window[mask],
            [c for c in self.calls if c["call_id"] in ids],
            feats,
            covers,
            self.hop,
            has_covers=self.has_covers,
            vad=self.vad,
        )

    def merged(self, other: CallData) -> CallData:
        """These calls and ``other``'s in one dataset (same hop and VAD), ``other``'s call ids (and
        two-party ``pair`` ids) moved past this one's so that no two calls share an id."""
        if other.hop != self.hop or other.vad != self.vad:
            raise ValueError("cannot merge datasets cut with different window hops or VADs")
        shift = max((c["call_id"] for c in self.calls), default=-1) + 1
        calls = [
            {**c, "call_id": c["call_id"] + shift, **({"pair": c["pair"] + shift} if "pair" in c else {})}
            for c in other.calls
        ]
        return CallData(
            np.concatenate([self.windows, other.windows]),
            np.concatenate([self.call_of_window, other.call_of_window + shift]).astype(np.int32),
            self.calls + calls,
            covers={**self.covers, **{k + shift: v for k, v in other.covers.items()}},
            hop=self.hop,
            has_covers=self.has_covers and other.has_covers,
            vad=self.vad,
        )

    def replan(self, hop: int) -> CallData:
        """The same calls with the windows the plan at ``hop`` samples cuts (what a detector whose
        model has that hop scores), re-cut from the stored speech; cached."""
        hop = scoring.check_hop(hop)
        if hop == self.hop:
            return self
        if hop not in self.replans:
            if not self.has_covers:
                raise ValueError(
                    "dataset built before window covers were kept: rebuild it (scripts/train.py --rebuild)"
                )
            self.replans[hop] = self.recut(lambda n: scoring.window_spans(n, hop), hop)
        return self.replans[hop]

    def recut(self, spans_of, hop: int) -> CallData:
        """The same calls with windows cut from each call's stored speech (:func:`_speech_of`) at the
        spans ``spans_of(len(speech))``; ``hop``: the plan those spans follow."""
        rows_of: dict[int, list[int]] = defaultdict(list)
        for i, cid in enumerate(self.call_of_window.tolist()):
            rows_of[cid].append(i)
        windows, owners = [], []
        for c in self.calls:
            cid = c["call_id"]
            if cid not in rows_of:
                continue
            speech = _speech_of(self.windows[rows_of[cid]], c["speech_samples"], self.hop, self.covers.get(cid))
            spans = spans_of(len(speech))
            windows.append(scoring.cut_windows(speech, spans).astype(np.int16))
            owners += [cid] * len(spans)
        return CallData(
            np.concatenate(windows) if windows else np.zeros((0, WINDOW_SAMPLES), np.int16),
            np.array(owners, np.int32),
            self.calls,
            hop=hop,
            vad=self.vad,
        )

    def features_for(self, model: RobotNet) -> tuple[torch.Tensor, torch.Tensor]:
        """(logmel, prosody) of every window for ``model``'s front end, computed once."""
        key = f"{model.config.filterbank} {model.config.frontend}"
        if key not in self.features:
            self.features[key] = compute_features(model, self.windows)
        return self.features[key]

    def window_labels(self) -> np.ndarray:
        """1.0 for robot windows, 0.0 for human ones."""
        return self.window_flags("label", "robot")

    def per_window(self, of_call, dtype) -> np.ndarray:
        """``of_call(call row)`` for every window, from its call."""
        value = {c["call_id"]: of_call(c) for c in self.calls}
        return np.array([value[i] for i in self.call_of_window], dtype)

    def window_flags(self, key: str, value: str) -> np.ndarray:
        """Per window: 1.0 where its call's ``key`` equals ``value``."""
        return self.per_window(lambda c: float(c[key] == value), np.float32)

    def window_codes(self, key) -> tuple[np.ndarray, list[str]]:
        """Per window: the index of its call's ``key`` value (a call field, or a function of the
        call row) in the sorted list of values (returned too)."""
        value = key if callable(key) else (lambda c: c[key])
        names = sorted({str(value(c)) for c in self.calls})
        index = {n: i for i, n in enumerate(names)}
        return self.per_window(lambda c: index[str(value(c))], np.int64), names


def source_of(call: dict) -> str:
    """The recording source a call row's audio comes from: its group (human corpus or robot
    family), but the callee's corpus for a two-party call's callee channel (whose row keeps the
    caller's group: the leave-outs drop a call by either party)."""
    return call["callee_group"] if call.get("view") == "callee" else call["group"]


def with_shifted_windows(data: CallData, copies: int, seed: int = 0) -> CallData:
    """``data`` plus ``copies - 1`` more cuts of each call's speech, each at a random offset in
    [0, hop) (per call and copy): the same speech at other phases of the STFT frames and of the CNN's
    pooling grid. A VAD segment edge a frame later moves every following window of a call; a model
    that saw each window at one phase only answers such a shift with logits a fraction of a unit
    apart (robodetect-v3: std 0.74 over 10-390-sample shifts). Windows keep their calls (the
    per-call weighting of :func:`train_model` is unchanged)."""
    if copies <= 1:
        return data
    rng = np.random.default_rng(seed)
    parts = [data]
    for _ in range(copies - 1):

        def spans_of(n: int) -> list[tuple[int, int]]:
            offset = int(rng.integers(0, data.hop))
            spans = scoring.window_spans(n - offset, data.hop) if n - offset >= WINDOW_SAMPLES else []
            return [(a + offset, b + offset) for a, b in spans] or scoring.window_spans(n, data.hop)

        parts.append(data.recut(spans_of, data.hop))
    return CallData(
        np.concatenate([d.windows for d in parts]),
        np.concatenate([d.call_of_window for d in parts]),
        data.calls,
        covers=data.covers,
        hop=data.hop,
        has_covers=data.has_covers,
        vad=data.vad,
    )


def to_float(windows: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(windows.astype(np.float32) / 32768.0)


@torch.inference_mode()
def compute_features(model: RobotNet, windows: np.ndarray, batch: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Front-end features for all windows (cached once; the front end has no trainable weights)."""
    mels, pros = [], []
    for i in range(0, len(windows), batch):
        m, p = model.features(to_float(windows[i : i + batch]))
        mels.append(m.half())
        pros.append(p)
    return torch.cat(mels), torch.cat(pros)


def spec_augment(mel: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One random frequency band and one time span masked per window (to the window mean, 0)."""
    return mel.masked_fill(spec_masks(mel.shape, gen), 0.0)


def spec_masks(shape: tuple[int, int, int], gen: torch.Generator) -> torch.Tensor:
    """:func:`spec_augment`'s masks for a (windows, bands, frames) batch: True where masked."""
    b, f, t = shape
    f0 = torch.randint(0, f - 8, (b,), generator=gen)
    t0 = torch.randint(0, t - 20, (b,), generator=gen)
    fw = torch.randint(0, 8, (b,), generator=gen)
    tw = torch.randint(0, 20, (b,), generator=gen)
    fi, ti = torch.arange(f)[None], torch.arange(t)[None]
    fmask = (fi >= f0[:, None]) & (fi < (f0 + fw)[:, None])
    tmask = (ti >= t0[:, None]) & (ti < (t0 + tw)[:, None])
    return fmask[:, :, None] | tmask[:, None, :]


CONSISTENCY_TARGETS = ("both", "clean", "clean-prob")


def consistency_gap(view: torch.Tensor, own: torch.Tensor, target: str) -> torch.Tensor:
    """The difference that consistency training squares: channel view minus the window's own
    logit ("both": gradient into both; "clean": the own logit a fixed target) or probability
    ("clean-prob": sigmoids, the own one a fixed target)."""
    if target == "both":
        return view - own
    if target == "clean":
        return view - own.detach()
    if target == "clean-prob":
        return torch.sigmoid(view) - torch.sigmoid(own).detach()
    raise ValueError(f"consistency_target: one of {CONSISTENCY_TARGETS}, not {target!r}")


def consistency_views(
    model: RobotNet, windows: np.ndarray, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Front-end features (log-mel, prosody) of each int16 window after one random channel stage
    (:func:`robodetect.simulate.channel_view`): the second view of consistency training."""
    views = np.stack([channel_view(w, rng)[0] for w in to_float(windows).numpy()]).astype(np.float32)
    with torch.no_grad():
        return model.features(torch.from_numpy(views))


def freq_mixstyle(mel: torch.Tensor, gen: torch.Generator, alpha: float = 0.3, eps: float = 1e-6) -> torch.Tensor:
    """Freq-MixStyle (Zhou et al. 2021's MixStyle per frequency band, as Schmid et al. use it against
    unseen recording devices): each window of ``mel`` (B, bands, frames) is normalised per band over
    its frames and given the convex mix ``lam * own + (1 - lam) * other`` of its own band means and
    standard deviations and those of a random window of the batch, ``lam ~ Beta(alpha, alpha)`` per
    window. The statistics carry no gradient; a window mixed with itself comes back unchanged."""
    n = mel.shape[0]
    mu = mel.mean(-1, keepdim=True).detach()
    sig = (mel.var(-1, keepdim=True) + eps).sqrt().detach()
    # Beta(alpha, alpha) by its inverse CDF, so the draw stays on the training generator
    lam = beta_dist.ppf(torch.rand(n, generator=gen, dtype=torch.float64).numpy(), alpha, alpha)
    lam = torch.from_numpy(lam).to(mel.dtype).view(n, 1, 1)
    perm = torch.randperm(n, generator=gen)
    mix_mu = lam * mu + (1 - lam) * mu[perm]
    mix_sig = lam * sig + (1 - lam) * sig[perm]
    return (mel - mu) / sig * mix_sig + mix_mu


def random_eq(mel: torch.Tensor, gen: torch.Generator, max_db: float = 6.0) -> torch.Tensor:
    """A random smooth gain curve across the mel bands per window (channel/microphone colouring),
    so the model cannot rely on one engine's exact spectral envelope. log-mel is natural log."""
    b, f, _ = mel.shape
    k = torch.arange(1, 4, dtype=mel.dtype)[None, :, None]  # 3 cosine components
    x = torch.linspace(0, torch.pi, f, dtype=mel.dtype)[None, None, :]
    amp = (torch.rand(b, 3, 1, generator=gen, dtype=mel.dtype) * 2 - 1) * (max_db / 3)
    phase = torch.rand(b, 3, 1, generator=gen, dtype=mel.dtype) * torch.pi
    curve_db = (amp * torch.cos(k * x + phase)).sum(1)  # (b, f)
    curve = curve_db * (torch.log(torch.tensor(10.0)) / 10)
    curve = curve - curve.mean(1, keepdim=True)  # the per-window normalisation keeps the mean at 0
    return mel + curve[:, :, None]


#: the source discriminator's learning rate over the network's: at 1x it stayed near chance on real
#: calls and a probe read the source off the embedding as well as without it (session 15)
SOURCE_LR_SCALE = 10.0


class _GradReverse(torch.autograd.Function):
    """Identity forward, gradient times -lam backward (domain-adversarial training)."""

    @staticmethod
    def forward(ctx, x, lam: float):
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.lam * grad, None


#: one-class softmax margins (Zhang et al. 2021): humans trained to cos >= OC_HUMAN_MARGIN with the
#: human direction, robots to cos <= OC_ROBOT_MARGIN
OC_HUMAN_MARGIN, OC_ROBOT_MARGIN = 0.9, 0.2


def head_loss(model: RobotNet, emb: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Training loss of a batch of pooled embeddings with labels ``y`` (1 = robot): binary
    cross-entropy for a ``linear`` head, the one-class softmax loss for a ``cosine`` head
    (softplus(a (m_human - cos)) for humans, softplus(a (cos - m_robot)) for robots, a = COSINE_SCALE;
    the head's raw logit is -a cos)."""
    raw = model.classify(emb)
    if model.config.head != "cosine":
        return F.binary_cross_entropy_with_logits(raw, y)
    scale = COSINE_SCALE
    margin = torch.where(y > 0.5, scale * OC_ROBOT_MARGIN, scale * OC_HUMAN_MARGIN)
    sign = 1.0 - 2.0 * y  # human +1, robot -1: softplus(sign * (raw + margin))
    return F.softplus(sign * (raw + margin)).mean()


def train_model(
    train: CallData,
    config: ModelConfig,
    epochs: int = 8,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    max_windows_per_epoch: int | None = None,
    eq_augment: bool = False,
    lang_adversary: float = 0.0,
    source_adversary: float = 0.0,
    source_classes: tuple[float, ...] = (0.0, 1.0),
    rawboost_p: float = 0.0,
    rawboost_config: RawBoostConfig | None = None,
    shift_copies: int = 1,
    consistency: float = 0.0,
    consistency_p: float = 0.3,
    consistency_target: str = "both",
    sam_rho: float = 0.0,
    teacher: RobotNet | None = None,
    distill: float = 0.0,
    distill_temperature: float = 2.0,
    freq_mixstyle_p: float = 0.0,
    log=print,
) -> RobotNet:
    """Train on window features with class-balanced BCE; fixed epochs (no early stopping on dev).

    ``lang_adversary`` > 0 adds a language discriminator (Mandarin vs English, given the class
    label) behind a gradient-reversal layer on the spectral embedding, so the CNN is pushed to
    drop what tells the languages apart: the robot/human decision must then rest on cues that
    carry across languages. The discriminator is discarded after training.

    ``source_adversary`` > 0 does the same with the call's ``group`` (the human corpus or the robot
    family, the leave-one-out unit; a multi-class discriminator given the class label): the CNN is
    pushed to drop what tells one recording chain or engine family from another of the same class,
    so "human" cannot mean "one of the microphones heard in training" (domain-adversarial
    training, Ganin et al. 2016). The log reports the discriminator's accuracy against its chance
    level (the largest group's share of the class). ``source_classes``: the classes whose groups
    it tells apart ((0.0,): human corpora only; robot windows then add nothing to its loss).

    ``rawboost_p`` > 0: that share of the windows drawn (both classes) go through RawBoost's
    convolutive and additive noise (:mod:`robodetect.rawboost`) and are re-featurised (the
    spectral half; their prosody stays the clean window's).

    ``consistency`` > 0: a share ``consistency_p`` of the windows drawn (both classes) is rendered a
    second time through one random channel stage (noise, MP3 or a noise suppressor:
    :func:`consistency_views`, features and prosody recomputed, the same SpecAugment masks); that view
    is trained on its label too, and ``consistency`` times the mean squared difference of the two
    views' logits is added to the loss, so the decision is pushed not to move with the channel
    (consistency regularisation) rather than only to be right on both. ``consistency_target``
    "both": the gap's gradient reaches both views (it can also shrink by making every logit less
    confident); "clean": the window's own logit is a fixed target (stop-gradient), only the
    channel view is pulled toward it; "clean-prob": the same in probabilities (the squared gap of
    the two sigmoids, bounded by 1: a confident clean logit cannot make it explode, as the logit
    gap of "clean" did in session 20).

    ``shift_copies`` > 1 trains on that many cuts of each call at random offsets
    (:func:`with_shifted_windows`); an epoch still draws as many windows as one cut has.

    ``sam_rho`` > 0: sharpness-aware minimisation (Foret et al. 2021; applied to spoofing detection
    by Shim et al. 2023 and Huang et al. 2025 against unseen attacks): each step takes the gradient
    of the classification loss at the weights moved ``sam_rho`` along the batch's normalised
    gradient (:func:`sam_perturb`), so training seeks a flat minimum; twice the backward passes.
    Only with the plain loss (no consistency or adversary terms).

    ``teacher`` with ``distill`` > 0: knowledge distillation (Hinton et al. 2015) from a trained
    model with the same front end (a wider network, say): each batch's classification loss becomes
    ``(1 - distill)`` times the loss on the labels plus ``distill`` times the cross-entropy between
    the student's and the teacher's robot probabilities at temperature ``distill_temperature``
    (scaled by its square, so the term's gradient keeps its size), the teacher scoring the very
    windows the student sees (RawBoost, SpecAugment masks and all; in eval mode, no gradient). The
    labels' term is the plain loss, so a ``linear`` head only; not with SAM.

    ``freq_mixstyle_p`` > 0: with that probability a batch's spectral input goes through
    :func:`freq_mixstyle` (each window's per-band statistics mixed with another window's), after
    RawBoost and SpecAugment; prosody untouched."""
    if distill > 0:
        distill_problem = distill_unsupported(config, teacher, distill, sam_rho)
        if distill_problem:
            raise ValueError(distill_problem)
    if consistency_target not in CONSISTENCY_TARGETS:
        raise ValueError(f"consistency_target: one of {CONSISTENCY_TARGETS}, not {consistency_target!r}")
    if sam_rho > 0 and (consistency > 0 or lang_adversary > 0 or source_adversary > 0):
        raise ValueError("sam_rho: only with the plain loss (no consistency or adversary terms)")
    n_windows = len(train.windows)
    train = with_shifted_windows(train, shift_copies, seed)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    view_rng = np.random.default_rng(seed + 7919)
    model = RobotNet(config)
    mels, pros = train.features_for(model)
    y = torch.from_numpy(train.window_labels())
    lang = torch.from_numpy(train.window_flags("lang", "zh"))
    spec_dim = model.spec_dim
    adversary = source_head = None
    if lang_adversary > 0 and spec_dim:
        adversary = torch.nn.Sequential(torch.nn.Linear(spec_dim + 1, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
    if source_adversary > 0:
        codes, source_names = train.window_codes(source_of)
        source = torch.from_numpy(codes)
        # groups the discriminator has to tell apart within each class it sees
        per_class = [len(set(source[y == cls].tolist())) for cls in source_classes]
        if spec_dim and max(per_class, default=0) > 1:
            source_head = torch.nn.Sequential(
                torch.nn.Linear(spec_dim + 1, 64), torch.nn.ReLU(), torch.nn.Linear(64, len(source_names))
            )
        else:
            log("    source adversary off: no spectral embedding, or fewer than two groups in every class it sees")
    mean, std = pros.mean(0), pros.std(0).clamp_min(1e-3)
    model.prosody_mean.copy_(mean)
    model.prosody_std.copy_(std)
    # each call weighs the same whatever its number of windows; each class weighs the same
    counts = np.bincount(train.call_of_window)
    w = 1.0 / counts[train.call_of_window]
    for cls in (0.0, 1.0):
        sel = y.numpy() == cls
        w[sel] /= w[sel].sum()
    weights = torch.from_numpy(w)
    n_per_epoch = min(n_windows, max_windows_per_epoch or n_windows)
    classes = torch.tensor(source_classes, dtype=y.dtype)
    chance = _source_chance(source, y, weights, source_classes) if source_head is not None else 0.0
    params = list(model.parameters()) + (list(adversary.parameters()) if adversary is not None else [])
    groups = [{"params": params, "lr": lr}]
    if source_head is not None:  # a discriminator that keeps up with the CNN it is set against
        groups.append({"params": list(source_head.parameters()), "lr": lr * SOURCE_LR_SCALE})
    opt = torch.optim.AdamW(groups, lr=lr, weight_decay=1e-3)
    steps = epochs * math.ceil(n_per_epoch / batch_size)
    step = 0
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[g["lr"] for g in groups], total_steps=steps, pct_start=0.15
    )
    if teacher is not None:
        teacher.eval()  # batch-norm statistics and dropout of the trained teacher, not the batch's
    for epoch in range(epochs):
        model.train()
        idx = torch.multinomial(weights, n_per_epoch, replacement=True, generator=gen)
        total, t0 = 0.0, time.time()
        hits = n_seen = 0
        for i in range(0, n_per_epoch, batch_size):
            b = idx[i : i + batch_size]
            mel = mels[b].float()
            if rawboost_p > 0:
                pick = torch.rand(len(b), generator=gen) < rawboost_p
                if pick.any():
                    wav = to_float(train.windows[b[pick].numpy()])
                    with torch.no_grad():
                        mel[pick] = model.frontend.logmel(rawboost(wav, gen, rawboost_config))
            masks = spec_masks(mel.shape, gen)
            mel = mel.masked_fill(masks, 0.0)
            if eq_augment:
                mel = random_eq(mel, gen)
            if freq_mixstyle_p > 0 and float(torch.rand(1, generator=gen)) < freq_mixstyle_p:
                mel = freq_mixstyle(mel, gen)
            emb = model.embed(mel, pros[b])
            if distill > 0:
                loss = distill_loss(model.classify(emb), teacher, mel, pros[b], y[b], distill, distill_temperature)
            else:
                loss = head_loss(model, emb, y[b])
            if consistency > 0:
                pick = torch.rand(len(b), generator=gen) < consistency_p
                if pick.any():
                    mel_v, pros_v = consistency_views(model, train.windows[b[pick].numpy()], view_rng)
                    mel_v = mel_v.masked_fill(masks[pick], 0.0)
                    emb_v = model.embed(mel_v, pros_v)
                    own = model.classify(emb[pick])  # before the view's: the head's dropout draws in session 20's order
                    gap = consistency_gap(model.classify(emb_v), own, consistency_target)
                    view_loss = head_loss(model, emb_v, y[b][pick]) * float(pick.float().mean())
                    loss = loss + view_loss + consistency * gap.pow(2).mean()
            # DANN schedule: the reversal strength ramps from 0 to the adversary's weight
            ramp = 2.0 / (1.0 + math.exp(-10.0 * step / steps)) - 1.0
            if adversary is not None:
                rev = _GradReverse.apply(emb[:, :spec_dim], lang_adversary * ramp)
                logit = adversary(torch.cat([rev, y[b, None]], -1)).squeeze(-1)
                loss = loss + F.binary_cross_entropy_with_logits(logit, lang[b])
            if source_head is not None:
                rev = _GradReverse.apply(emb[:, :spec_dim], source_adversary * ramp)
                logits = source_head(torch.cat([rev, y[b, None]], -1))
                seen = torch.isin(y[b], classes)
                ce = F.cross_entropy(logits, source[b], reduction="none")
                loss = loss + (ce * seen).sum() / len(b)
                hits += int(((logits.argmax(-1) == source[b]) & seen).sum())
                n_seen += int(seen.sum())
            step += 1
            opt.zero_grad()
            loss.backward()
            if sam_rho > 0:  # the gradient at the worst nearby weights, then back to the weights
                sam_gradients(model, lambda m=mel, p=pros[b], t=y[b]: head_loss(model, model.embed(m, p), t), sam_rho)
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(b)
        note = ""
        if source_head is not None:
            note = f", source discriminator {hits / max(1, n_seen):.1%} right (chance {chance:.1%})"
        log(f"    epoch {epoch + 1}/{epochs}: loss {total / n_per_epoch:.4f}{note} ({time.time() - t0:.0f} s)")
    return model.eval()


def distill_unsupported(
    config: ModelConfig, teacher: RobotNet | None, distill: float, sam_rho: float = 0.0
) -> str | None:
    """Why ``train_model`` cannot distil from ``teacher`` into a model of ``config`` with weight
    ``distill``; None when it can. The teacher must see the student's features (same front end)."""
    if not 0.0 < distill <= 1.0:
        return f"distill: a weight in (0, 1], not {distill}"
    if teacher is None:
        return "distill: needs a teacher model"
    if config.head != "linear":
        return "distill: only with a linear head (the labels' term is the plain cross-entropy)"
    if sam_rho > 0:
        return "distill: not with SAM (its second pass recomputes the plain loss only)"
    t = teacher.config
    if (t.filterbank, t.frontend, t.use_prosody) != (config.filterbank, config.frontend, config.use_prosody):
        return "distill: the teacher's front end differs from the student's (it must score the same features)"
    return None


def distill_loss(
    raw: torch.Tensor,
    teacher: RobotNet,
    mel: torch.Tensor,
    prosody: torch.Tensor,
    y: torch.Tensor,
    weight: float,
    temperature: float,
) -> torch.Tensor:
    """A batch's distillation loss: ``1 - weight`` times the cross-entropy of the student's raw
    logits ``raw`` against the labels ``y``, plus ``weight`` times the cross-entropy against the
    teacher's robot probabilities on the same features at ``temperature``, scaled by its square
    (Hinton et al. 2015: the soft term's gradient keeps its size whatever the temperature)."""
    with torch.no_grad():
        soft = torch.sigmoid(teacher.head(mel, prosody) / temperature)
    kd = F.binary_cross_entropy_with_logits(raw / temperature, soft) * temperature**2
    return (1.0 - weight) * F.binary_cross_entropy_with_logits(raw, y) + weight * kd


@contextmanager
def sam_perturb(model: torch.nn.Module, rho: float):
    """SAM's ascent step: moves every parameter that has a gradient by ``rho`` times the gradient
    over the gradients' global L2 norm (the first-order worst case within an L2 ball of radius
    ``rho``), with batch-norm statistics frozen (running mean, variance and batch count: the batch
    was already counted); on exit the parameters are restored exactly (the saved copies, not a
    subtraction) and the statistics unfrozen. No parameter with a gradient: nothing moves."""
    params = [p for p in model.parameters() if p.grad is not None]
    norms = [bn for bn in model.modules() if isinstance(bn, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in norms]
    counts = [bn.num_batches_tracked.clone() if bn.num_batches_tracked is not None else None for bn in norms]
    with torch.no_grad():
        saved = [p.detach().clone() for p in params]
        if params:
            scale = rho / (torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])) + 1e-12)
            for p in params:
                p.add_(p.grad * scale)
    for bn in norms:
        bn.momentum = 0.0
    try:
        yield
    finally:
        with torch.no_grad():
            for p, w in zip(params, saved):
                p.copy_(w)
            for bn, m, c in zip(norms, momenta, counts):
                bn.momentum = m
                if c is not None:
                    bn.num_batches_tracked.copy_(c)


def sam_gradients(model: torch.nn.Module, loss_fn, rho: float) -> None:
    """Replace the gradients ``model`` holds (those of the batch's loss at its weights) by SAM's: the
    gradients of ``loss_fn()`` at the weights moved by :func:`sam_perturb`; the weights are back where
    they were when this returns, ready for the optimiser's step."""
    with sam_perturb(model, rho):
        model.zero_grad()
        loss_fn().backward()


def _source_chance(
    source: torch.Tensor, y: torch.Tensor, weights: torch.Tensor, classes: tuple[float, ...] = (0.0, 1.0)
) -> float:
    """Accuracy of always naming the most drawn group of the window's class, under the sampling
    ``weights``, over the windows of ``classes`` (what the discriminator reaches from the class
    label alone)."""
    best = total = 0.0
    for cls in classes:
        sel = y == cls
        if sel.any():
            best += float(torch.bincount(source[sel], weights=weights[sel].double()).max())
            total += float(weights[sel].sum())
    return best / max(total, 1e-12)


@torch.inference_mode()
def call_scores(model: RobotNet, data: CallData) -> tuple[dict[int, float], np.ndarray]:
    """Mean window logit per call (the detector's call score before calibration) + window logits,
    over the windows the model's plan cuts (its window hop: :meth:`CallData.replan`)."""
    data = data.replan(model.config.frontend.hop_samples)
    if not len(data.windows):
        return {}, np.zeros(0, np.float32)
    mels, pros = data.features_for(model)
    logits = torch.cat([model.head(mels[i : i + 512].float(), pros[i : i + 512]) for i in range(0, len(mels), 512)])
    logits = logits.numpy()
    sums = defaultdict(list)
    for cid, z in zip(data.call_of_window, logits):
        sums[int(cid)].append(float(z))
    return {cid: float(np.mean(v)) for cid, v in sums.items()}, logits


def fit_calibration(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Platt scaling: (a, b) minimising the log loss of sigmoid(a * score + b).

    Fitted on standardised scores with a strong-Wolfe line search: plain L-BFGS steps diverged
    (a ~ 1e22) on one-class-head scores piled up at the cosine bound (-20), which made the
    leave-out models' thresholds 0.5 or 1.0 (tests/test_train.py, tests/fixtures/platt_divergent.npz)."""
    s = torch.tensor(scores, dtype=torch.float64)
    y = torch.tensor(labels, dtype=torch.float64)
    mean, std = s.mean(), s.std().clamp_min(1e-12)
    z = (s - mean) / std
    a = torch.ones((), dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([a, b], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(a * z + b, y)
        loss.backward()
        return loss

    opt.step(closure)
    a_z, b_z = float(a.detach()), float(b.detach())
    scale, bias = a_z / float(std), b_z - a_z * float(mean) / float(std)
    if not (np.isfinite(scale) and np.isfinite(bias)):
        raise ValueError("Platt scaling did not converge")
    return scale, bias


def one_party_call(c: dict) -> bool:
    """A one-party call (not a two-party view, not a clip): what calibration is fitted on."""
    return c.get("view") is None and c.get("mode", "call") == "call"


def calibrate(
    model: RobotNet,
    cal: CallData,
    max_false_alarm: float = MAX_FALSE_ALARM,
    band_false_alarms: tuple[float, float] = (0.05, 0.005),
) -> dict:
    """Fit Platt scaling on the calibration split, the threshold for a human false-alarm rate
    <= ``max_false_alarm`` and the uncertain band, all from calibration calls (never dev).

    The band runs from the probability that flags ``band_false_alarms[0]`` of calibration humans
    (below: ``human``) to the one that flags ``band_false_alarms[1]`` (at or above: ``robot``);
    the threshold lies inside it (the forced robot/human choice of a screening app)."""
    cal = cal.subset(one_party_call)
    s, y, rows = score_table(call_scores(model, cal)[0], cal)
    model.config.calib_scale, model.config.calib_bias = fit_calibration(s, y.astype(float))
    p = model.config.probability(s)
    human = p[y == 0]
    model.config.threshold = robot_threshold(human, max_false_alarm)
    lo = threshold_for_false_alarm(human, band_false_alarms[0])
    hi = threshold_for_false_alarm(human, band_false_alarms[1])
    model.config.uncertain_low = float(min(lo, model.config.threshold))
    model.config.uncertain_high = float(max(hi, model.config.threshold))
    e, _ = eer(s, y)
    return {
        "cal_scores": s,  # raw call scores and labels the fit used (threshold transfer: scripts/transfer_threshold.py)
        "cal_labels": y,
        "cal_groups": [c["group"] for c in rows],
        "cal_eer": e,
        "calib_scale": model.config.calib_scale,
        "calib_bias": model.config.calib_bias,
        "threshold": model.config.threshold,
        "uncertain_low": model.config.uncertain_low,
        "uncertain_high": model.config.uncertain_high,
        "cal_calls": len(y),
    }


def human_ranges(data: CallData, model: RobotNet) -> dict[str, list[float]]:
    """5th-95th percentile of each prosody feature over human training windows (for explanations)."""
    from .features import PROSODY_NAMES

    human = data.window_labels() == 0
    _, pros = compute_features(model, data.windows[human][:20000])
    lo, hi = np.percentile(pros.numpy(), [5, 95], axis=0)
    return {n: [round(float(a), 3), round(float(b), 3)] for n, a, b in zip(PROSODY_NAMES, lo, hi)}


@torch.inference_mode()
def truncated_call_scores(model: RobotNet, data: CallData, seconds: float | None) -> dict[int, float]:
    """Call scores using only the first ``seconds`` of speech (None: whole call), with the windows
    the detector would score for a call that ended there (:func:`robodetect.scoring.prefix_plans`
    at the model's hop)."""
    if seconds is None:
        return call_scores(model, data)[0]
    limit = int(round(seconds * SAMPLE_RATE))
    hop = model.config.frontend.hop_samples
    # a call that ended after ``limit`` samples of speech: the plan of its first min(n, limit)
    # (scoring.prefix_plans of one prefix)
    sub = data.recut(lambda n: scoring.window_spans(min(n, limit), hop), hop)
    return call_scores(model, sub)[0] if len(sub.windows) else {}


def _speech_of(windows: np.ndarray, n_speech_samples: int, hop: int = HOP_SAMPLES, cover=None) -> np.ndarray:
    """The speech-only signal a call's stored windows (cut at ``hop``) were cut from: all of it
    where the plan's windows reach its end or ``cover`` (the window ending there) is given; else up
    to the last window's end."""
    spans = scoring.window_spans(n_speech_samples, hop)
    end = max(b for _, b in spans)
    speech = np.zeros(int(n_speech_samples) if cover is not None else end, windows.dtype)
    for (a, b), w in zip(spans, windows):
        speech[a:b] = w[: b - a]
    if cover is not None:
        speech[-WINDOW_SAMPLES:] = cover
    return speech


def score_table(scores: dict[int, float], data: CallData) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """(scores, labels 1=robot, call rows) in a fixed order for metric computation."""
    rows = [c for c in data.calls if c["call_id"] in scores]
    return (
        np.array([scores[c["call_id"]] for c in rows]),
        np.array([c["label"] == "robot" for c in rows], int),
        rows,
    )
