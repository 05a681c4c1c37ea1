"""Evaluate a model on the dev split: simulated calls, clean clips and two-party calls.

    python scripts/evaluate.py                        # shipped model, the dev calls of its seed
    python scripts/evaluate.py --model STEM --markdown docs/eval.md --json data/results/dev.json

Dev voices, texts and speakers are disjoint from train and calibration (robodetect.protocol), and
nothing here is chosen on dev: calibration, threshold and uncertain band come from the model JSON
(fitted on the calibration split). Every rate has a 95 % confidence interval from a bootstrap over
voices/speakers (the unit that repeats across calls), so a handful of voices cannot pass for a
precise number.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from robodetect.audio import SAMPLE_RATE  # noqa: E402
from robodetect.detector import load  # noqa: E402
from robodetect.features import WINDOW_SECONDS  # noqa: E402
from robodetect.metrics import eer, rates_at  # noqa: E402
from robodetect.protocol import bootstrap_ci  # noqa: E402
from robodetect.train import CallData, call_scores, truncated_call_scores  # noqa: E402

SECONDS = (1, 2, 3, 4, 6, 8, None)
SUSTAINED_WINDOWS = 3  # "sustained" aggregation: best mean of this many consecutive windows


def pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def ci(v: tuple[float, float, float]) -> str:
    return f"{pct(v[0])} [{pct(v[1])}, {pct(v[2])}]"


def _eer(s, y) -> float:
    return eer(s, y)[0]


def latest(calls_dir: Path, name: str, vad: dict | None = None) -> Path | None:
    """The newest dataset ``name`` in ``calls_dir``; with ``vad``, the newest whose windows were cut
    with those VAD settings (a model must be measured on the windows its own VAD cuts), else the
    newest that does not record its VAD (datasets from before it was recorded)."""
    found = sorted(calls_dir.glob(f"{name}-*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
    if vad is None:
        return found[0] if found else None
    unknown = None
    for path in found:
        with np.load(path) as z:
            if "vad" not in z.files:
                unknown = unknown or path
            elif json.loads(str(z["vad"])) == vad:
                return path
    return unknown


def planned(
    model, calls_dir: Path, seed: int, names: tuple[str, ...] = ("dev", "dev_clips", "dev_2party")
) -> dict[str, Path] | None:
    """The dev datasets scripts/train.py builds for ``model``'s channel recipe (resampler, MP3 and
    suppressor shares, which every split gets), its VAD and ``seed``, by their cache key: the calls
    that pair with its training run and with other models of that seed. None when the manifests
    are missing or the model's VAD is neither of train.py's."""
    from train import dataset_path, manifests, parse_args, vad_of

    from robodetect.train import read_manifests

    recipe = (model.config.metrics or {}).get("recipe") or {}
    for vad in ("new", "legacy"):
        argv = ["--calls-dir", str(calls_dir), "--seed", str(seed), "--vad", vad]
        for key in ("resample_augment", "mp3_augment", "ns_augment"):
            if key in recipe:
                argv += [f"--{key.replace('_', '-')}", str(recipe[key])]
        args = parse_args(argv)
        if asdict(vad_of(args)) == asdict(model.config.vad):
            break
    else:
        return None
    paths = manifests(args)
    if not all(p.is_file() for p in paths):
        return None
    rows = read_manifests(paths)
    return {name: dataset_path(args, rows, name)[0] for name in names}


def eval_sets(model, calls_dir: Path, seed: int | None, names: tuple[str, ...]) -> dict[str, tuple[Path | None, str]]:
    """Per dataset name, the cached calls to measure ``model`` on and a note saying which: the
    ones of ``seed`` (None: the model's training seed, else 0) and its channel recipe
    (:func:`planned`) where they exist, else the newest cut with its VAD (:func:`latest`; None when
    there is none)."""
    if seed is None:
        seed = int((model.config.metrics or {}).get("seed", 0))
    exact = planned(model, calls_dir, seed, names) or {}
    vad = asdict(model.config.vad)
    out = {}
    for name in names:
        path = exact.get(name)
        if path is not None and path.exists():
            out[name] = (path, f" (seed {seed}'s plan)")
        else:
            out[name] = (
                latest(calls_dir, name, vad),
                f" (no seed-{seed} {name} for this recipe: the newest cut with its VAD)",
            )
    return out


class Scored:
    """Per-call logits (mean and sustained aggregation) of a dataset, with labels and rows."""

    def __init__(self, model, data: CallData) -> None:
        data = data.replan(model.config.frontend.hop_samples)  # the windows the model's plan cuts
        means, window_logits = call_scores(model, data)
        per_call = defaultdict(list)
        for cid, z in zip(data.call_of_window, window_logits):
            per_call[int(cid)].append(float(z))
        self.rows = [c for c in data.calls if c["call_id"] in means]
        self.mean = np.array([means[c["call_id"]] for c in self.rows])
        self.sustained = np.array([sustained(per_call[c["call_id"]]) for c in self.rows])
        self.y = np.array([c["label"] == "robot" for c in self.rows], int)
        self.cluster = np.array([c.get("identity") or c["speaker"] for c in self.rows])

    def select(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.mean[mask], self.y[mask], self.cluster[mask]

    def field(self, key: str) -> np.ndarray:
        return np.array([str(c.get(key)) for c in self.rows])

    def pair_views(self, *views: str) -> list[np.ndarray]:
        """Two-party calls: per view (``caller``, ``callee``, ``mono``) the row index of that view of
        each call that has every one of ``views`` scored, calls in ``pair`` order."""
        index: dict[str, dict[int, int]] = {v: {} for v in views}
        for i, c in enumerate(self.rows):
            if c.get("view") in index:
                index[c["view"]][int(c["pair"])] = i
        pairs = sorted(set.intersection(*(set(index[v]) for v in views)))
        return [np.array([index[v][k] for k in pairs], dtype=int) for v in views]


def sustained(logits: list[float], k: int = SUSTAINED_WINDOWS) -> float:
    """Highest mean over ``k`` consecutive windows (the mean when there are fewer): a robot that
    speaks for a few seconds is not averaged away by the other party's speech."""
    z = np.asarray(logits)
    if len(z) <= k:
        return float(z.mean())
    return float(np.convolve(z, np.ones(k) / k, mode="valid").max())


def at_threshold(p: np.ndarray, y: np.ndarray, clusters: np.ndarray, thr: float) -> dict:
    def fa(s, yy):
        return float((s[yy == 0] >= thr).mean())

    def caught(s, yy):
        return float((s[yy == 1] >= thr).mean())

    return {"false_alarm": bootstrap_ci(fa, p, y, clusters), "caught": bootstrap_ci(caught, p, y, clusters)}


#: channel stages the simulator records on a call when they were applied (robodetect.simulate)
CHANNEL_STAGES = (("ns", "handset noise suppression"), ("mp3", "MP3 round trip"), ("resampled", "resampler round trip"))


def channel_stages(dev: Scored, p: np.ndarray, thr: float, res: dict) -> list[str]:
    """Humans flagged and robots caught at the threshold among calls whose leg went through a
    channel stage and among the others (stages a dev set holds on both sides only): a stage that
    pushes one class across the threshold shows here even when the EER hides it."""
    out, res["channel_stages"] = [], {}
    for key, name in CHANNEL_STAGES:
        on = np.array([key in c for c in dev.rows])
        if not on.any() or on.all():
            continue
        if not out:
            out += [
                "",
                "### By channel stage (at the threshold)",
                "",
                "| stage | applied | humans flagged | robots caught |",
            ]
            out.append("|---|---|---|---|")
        for sel, applied in ((on, "yes"), (~on, "no")):
            rates = rates_at(p[sel], dev.y[sel], thr)
            row = {"humans": int((dev.y[sel] == 0).sum()), "robots": int((dev.y[sel] == 1).sum())}
            row["flagged"], row["caught"] = rates.get("human_false_alarm"), rates.get("robot_detection")
            res["channel_stages"][f"{key} {applied}"] = row
            cells = [
                f"{pct(row[k])} of {row[n]}" if row[k] is not None else "-"
                for k, n in (("flagged", "humans"), ("caught", "robots"))
            ]
            out.append(f"| {name} | {applied} | {cells[0]} | {cells[1]} |")
    return out


def evaluate(model, data: dict[str, CallData]) -> tuple[list[str], dict]:
    cfg = model.config
    thr, lo, hi = cfg.threshold, cfg.uncertain_low or cfg.threshold, cfg.uncertain_high or cfg.threshold
    out: list[str] = []
    res: dict = {"model": cfg.version, "threshold": thr, "uncertain_low": lo, "uncertain_high": hi}
    dev = Scored(model, data["dev"])
    s, y, cl = dev.mean, dev.y, dev.cluster
    p = cfg.probability(s)
    e = bootstrap_ci(_eer, s, y, cl)
    rates = at_threshold(p, y, cl, thr)
    res["dev"] = {"calls": len(y), "eer": e, **rates}
    out += [
        f"## Dev split: {len(y)} simulated one-party calls ({int(y.sum())} robot, {int((1 - y).sum())} human), "
        f"{len(set(cl[y == 1]))} robot voices, {len(set(cl[y == 0]))} human speakers",
        "",
        "95 % intervals: bootstrap over voices / speakers.",
        "",
        "| metric | value [95 % CI] |",
        "|---|---|",
        f"| call EER | {ci(e)} |",
        f"| humans flagged at threshold {thr:.3f} (chosen on cal for ≤ 1 %) | {ci(rates['false_alarm'])} |",
        f"| robots caught at threshold | {ci(rates['caught'])} |",
        "",
        f"Verdict bands (uncertain from {lo:.3f} to {hi:.3f}, chosen on cal):",
        "",
        "| class | human | uncertain | robot |",
        "|---|---|---|---|",
    ]
    bands = {}
    for cls, name in ((0, "human calls"), (1, "robot calls")):
        q = p[y == cls]
        share = [float((q < lo).mean()), float(((q >= lo) & (q < hi)).mean()), float((q >= hi).mean())]
        bands[name] = share
        out.append(f"| {name} | {pct(share[0])} | {pct(share[1])} | {pct(share[2])} |")
    res["dev"]["bands"] = bands

    out += ["", "### Per robot family (vs all dev humans) and per human source (vs all dev robots)", ""]
    out += ["| group | label | calls | voices | EER [95 % CI] | flagged at threshold |", "|---|---|---|---|---|---|"]
    groups = dev.field("group")
    res["groups"] = {}
    for g in sorted(set(groups)):
        sel = groups == g
        label = int(y[sel][0])
        m = sel | (y != label)
        eg = bootstrap_ci(_eer, s[m], y[m], cl[m])
        flagged = float((p[sel] >= thr).mean())
        res["groups"][g] = {"eer": eg, "flagged": flagged, "calls": int(sel.sum())}
        out.append(
            f"| {g} | {'robot' if label else 'human'} | {int(sel.sum())} | {len(set(cl[sel]))} | {ci(eg)} | "
            f"{pct(flagged)} |"
        )

    langs = dev.field("lang")
    out += ["", "### Per language", "", "| robots | humans | calls | EER [95 % CI] |", "|---|---|---|---|"]
    res["languages"] = {}
    for name, rob, hum in (
        ("English robots vs English humans", langs == "en", langs == "en"),
        ("Mandarin robots vs Mandarin humans", langs == "zh", langs == "zh"),
        ("other-language robots vs all humans", ~np.isin(langs, ["en", "zh"]), np.ones_like(y, bool)),
    ):
        m = ((y == 1) & rob) | ((y == 0) & hum)
        if len(set(y[m])) < 2:
            continue
        v = bootstrap_ci(_eer, s[m], y[m], cl[m])
        res["languages"][name] = v
        r, h = name.split(" vs ")
        out.append(f"| {r} | {h} | {int(m.sum())} | {ci(v)} |")

    codecs = dev.field("codec")
    out += ["", "### Per codec (both classes)", "", "| codec | calls | EER |", "|---|---|---|"]
    for c in sorted(set(codecs)):
        sel = codecs == c
        if len(set(y[sel])) == 2:
            out.append(f"| {c} | {int(sel.sum())} | {pct(_eer(s[sel], y[sel]))} |")

    out += channel_stages(dev, p, thr, res)

    speech = np.array([float(c.get("speech_samples") or 0) / SAMPLE_RATE for c in dev.rows])
    out += [
        "",
        f"### By speech heard (under {WINDOW_SECONDS:g} s: one tiled window; plan 4 calls only)",
        "",
        "| speech | calls | EER [95 % CI] | humans flagged | robots caught |",
        "|---|---|---|---|---|",
    ]
    res["speech_length"] = {}
    for name, sel in (
        (f"< {WINDOW_SECONDS:g} s", speech < WINDOW_SECONDS),
        (f">= {WINDOW_SECONDS:g} s", speech >= WINDOW_SECONDS),
    ):
        if len(set(y[sel])) < 2:
            continue
        v = bootstrap_ci(_eer, s[sel], y[sel], cl[sel])
        fa, caught = float((p[sel & (y == 0)] >= thr).mean()), float((p[sel & (y == 1)] >= thr).mean())
        res["speech_length"][name] = {"calls": int(sel.sum()), "eer": v, "false_alarm": fa, "caught": caught}
        out.append(f"| {name} | {int(sel.sum())} | {ci(v)} | {pct(fa)} | {pct(caught)} |")

    if "dev_clips" in data:
        clips = Scored(model, data["dev_clips"])
        v = bootstrap_ci(_eer, clips.mean, clips.y, clips.cluster)
        res["clips_vs_calls"] = {"clips": v, "calls": e}
        out += [
            "",
            "### Clips vs calls (same dev voices and speakers)",
            "",
            "| input | items | EER [95 % CI] |",
            "|---|---|---|",
            f"| clean clips (one utterance, no channel) | {len(clips.y)} | {ci(v)} |",
            f"| simulated telephone calls | {len(y)} | {ci(e)} |",
        ]

    if "dev_2party" in data:
        out += two_party(model, Scored(model, data["dev_2party"]), e, res)

    out += ["", "### By seconds of speech heard", "", "| speech | calls | EER |", "|---|---|---|"]
    one = data["dev"]
    res["seconds"] = {}
    for sec in SECONDS:
        sc = truncated_call_scores(model, one, sec)
        rows = [c for c in one.calls if c["call_id"] in sc]
        ss = np.array([sc[c["call_id"]] for c in rows])
        yy = np.array([c["label"] == "robot" for c in rows], int)
        res["seconds"][str(sec)] = _eer(ss, yy)
        out.append(f"| {'whole call' if sec is None else f'first {sec} s'} | {len(rows)} | {pct(_eer(ss, yy))} |")
    return out, res


def two_party(model, tp: Scored, one_party_eer, res: dict) -> list[str]:
    """Two-party calls: stereo (a verdict per channel; the call is robot when either party is) and
    the mono mix (mean vs sustained aggregation), against one-party calls."""
    caller, callee, mono = tp.pair_views("caller", "callee", "mono")
    y, cl = tp.y[caller], tp.cluster[caller]
    stereo = np.maximum(tp.mean[caller], tp.mean[callee])
    caller_only = tp.mean[caller]
    mono_mean = tp.mean[mono]
    mono_sus = tp.sustained[mono]
    rows = {
        "caller channel alone": caller_only,
        "stereo, call = either party robot (max over channels)": stereo,
        "mono mix, mean of windows": mono_mean,
        "mono mix, sustained (best 3-window run)": mono_sus,
    }
    res["two_party"] = {"calls": len(y), "one_party_eer": one_party_eer}
    out = [
        "",
        f"### Two-party calls: caller (robot or human) + human callee, {len(y)} dev calls",
        "",
        f"One-party dev calls for comparison: {ci(one_party_eer)}.",
        "",
        f"| view / call rule | EER [95 % CI] | humans flagged at {model.config.threshold:.3f} | robots caught |",
        "|---|---|---|---|",
    ]
    for name, scores in rows.items():
        v = bootstrap_ci(_eer, scores, y, cl)
        p = model.config.probability(scores)
        fa, caught = (
            float((p[y == 0] >= model.config.threshold).mean()),
            float((p[y == 1] >= model.config.threshold).mean()),
        )
        res["two_party"][name] = v
        res["two_party"][name + " at threshold"] = {"false_alarm": fa, "caught": caught}
        out.append(f"| {name} | {ci(v)} | {pct(fa)} | {pct(caught)} |")
    return out


def loo_table(table: dict) -> list[str]:
    """Markdown for scripts/train.py --loo's results (data/results/loo.json)."""
    robots = table
    out = [
        "",
        "### Leave one family out (trained and calibrated without it; its calls vs dev calls of the other class)",
        "",
        "| held out | calls | EER | Mandarin EER (its zh calls vs zh dev) | flagged at its threshold | epochs |",
        "|---|---|---|---|---|---|",
    ]
    for g, v in robots.items():
        zh = pct(v["eer_zh"]) if "eer_zh" in v else "-"
        out.append(
            f"| {g} | {v['held_out_calls']} | {pct(v['eer'])} | {zh} | {pct(v['flagged_at_threshold'])} | "
            f"{v.get('epochs', '-')} |"
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model name or stem (default: shipped)")
    ap.add_argument("--calls-dir", default=str(REPO / "data" / "calls"))
    ap.add_argument("--markdown", default=None, help="also write the tables to this file")
    ap.add_argument("--json", default=None, help="also write the figures as JSON")
    ap.add_argument("--loo", default=str(REPO / "data" / "results" / "loo.json"), help="leave-out results to add")
    ap.add_argument(
        "--seed",
        type=int,
        default=None,
        help="the dev calls planned with this seed (default: the model's training seed, else 0)",
    )
    args = ap.parse_args()
    model = load(args.model).model if args.model else load().model
    data = {}
    for name, (path, note) in eval_sets(
        model, Path(args.calls_dir), args.seed, ("dev", "dev_clips", "dev_2party")
    ).items():
        if path is not None:
            data[name] = CallData.load(path)
            print(f"{name}: {path.name}{note}" + ("" if data[name].vad else " (VAD not recorded)"), flush=True)
    if "dev" not in data:
        sys.exit(
            f"evaluate: no dev calls cut with {model.config.version}'s VAD in {args.calls_dir} "
            f"(scripts/train.py --eval-sets-only --vad {'new' if model.config.vad.level_normalise else 'legacy'})"
        )
    lines, res = evaluate(model, data)
    lines = [f"# Evaluation of {model.config.version}", ""] + lines
    if Path(args.loo).exists():
        lines += loo_table(json.loads(Path(args.loo).read_text()))
    print("\n".join(lines))
    if args.markdown:
        Path(args.markdown).write_text("\n".join(lines) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
