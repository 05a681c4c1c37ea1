"""The data protocol: one identity per voice across engines and corpora, disjoint splits,
families, and bootstrap intervals."""

import numpy as np
import pytest

from robodetect.metrics import eer
from robodetect.protocol import (
    apply_splits,
    assign_identity_splits,
    bootstrap_ci,
    family_of,
    text_split,
    voice_identity,
)


def row(label, engine, speaker, source=None):
    return {"label": label, "engine": engine, "speaker": speaker, "source": source or f"tts-{engine}"}


def test_one_identity_per_voice_across_engines():
    # CMU's kal in festival and flite (twice), slt likewise: one person each
    kal = {voice_identity(row("robot", "festival", "festival:kal_diphone"))}
    kal |= {voice_identity(row("robot", "flite", f"flite:{v}")) for v in ("kal", "kal16")}
    assert len(kal) == 1
    slt = {
        voice_identity(row("robot", "festival", "festival:cmu_us_slt_arctic_hts")),
        voice_identity(row("robot", "flite", "flite:slt")),
    }
    assert len(slt) == 1 and slt != kal
    # a zero-shot clone is the AISHELL-3 speaker it clones; a vocoded copy is its human
    clone = voice_identity(row("robot", "zs-tts-gse", "SSB0393", "zs-tts-zh"))
    assert clone == voice_identity(row("human", "human", "SSB0393", "aishell3-gt"))
    copy = voice_identity(row("robot", "vocoder-world", "speechocean762:0001"))
    assert copy == voice_identity(row("human", "human", "0001", "speechocean762"))
    # espeak-ng: the variant is the voice, whatever language it reads
    assert voice_identity(row("robot", "espeak-ng", "espeak-ng:en-us+m3")) == voice_identity(
        row("robot", "espeak-ng", "espeak-ng:de+m3")
    )


def test_families_group_shared_voices_and_architectures():
    assert family_of(row("robot", "festival", "x")) == family_of(row("robot", "flite", "x"))
    assert family_of(row("robot", "piper", "x")) == family_of(row("robot", "coqui-vits-vctk", "x"))
    assert family_of(row("robot", "zs-tts-cls", "x")) == "zs-tts"
    assert family_of(row("human", "human", "x", "librispeech")) == "librispeech"


def test_identity_splits_are_disjoint_and_cover_every_split():
    idents = [f"pool:{i}" for i in range(40)] + ["solo:only", "pair:a", "pair:b"]
    splits = assign_identity_splits(idents)
    pool = [splits[f"pool:{i}"] for i in range(40)]
    assert {"train", "cal", "dev"} == set(pool) and pool.count("train") > 20
    assert splits["solo:only"] == "train"  # one voice: measured only by leaving its family out
    assert sorted([splits["pair:a"], splits["pair:b"]]) == ["dev", "train"]
    assert assign_identity_splits(reversed(idents)) == splits  # order-independent


def test_apply_splits_keeps_clones_and_copies_with_their_human():
    rows = [row("human", "human", f"SSB{i:04d}", "aishell3-gt") for i in range(12)]
    rows += [row("robot", "zs-tts-cls", f"SSB{i:04d}", "zs-tts-zh") for i in range(12)]
    rows += [row("robot", "vocoder-world", "aishell3-gt:SSB0001")]
    apply_splits(rows)
    by_id = {}
    for r in rows:
        by_id.setdefault(r["identity"], set()).add(r["split"])
    assert all(len(s) == 1 for s in by_id.values())
    assert by_id["aishell3-gt:SSB0001"] == {"train"}


def test_text_split_is_deterministic_and_case_blind():
    assert text_split("Press one now.") == text_split("press one now.")
    splits = [text_split(f"sentence {i}") for i in range(400)]
    assert 0.08 < splits.count("dev") / 400 < 0.22 and 0.08 < splits.count("cal") / 400 < 0.22


def test_bootstrap_interval_contains_value_and_widens_with_fewer_clusters():
    """Calls of one voice share its quirks: with 8 voices per class the interval must be wider
    than if all 400 calls were independent."""
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 200)
    voice = np.arange(400) // 25  # 8 voices per class, 25 calls each
    s = y * 2.0 + rng.normal(0, 1.0, 16)[voice] + rng.normal(0, 0.5, 400)

    def stat(a, b):
        return eer(a, b)[0]

    many = bootstrap_ci(stat, s, y, np.arange(400), n_boot=200)
    few = bootstrap_ci(stat, s, y, voice, n_boot=200)
    assert many[1] <= many[0] <= many[2]
    assert (few[2] - few[1]) > (many[2] - many[1])


def test_hibari_voice_is_its_kokoro_teacher():
    a = voice_identity(row("robot", "hibari", "hibari:heart"))
    assert a == voice_identity(row("robot", "hibari", "hibari:heart-gb"))
    assert a == voice_identity(row("robot", "kokoro", "kokoro:af_heart"))


def test_planner_uses_robots_of_other_languages():
    """Robot clips in languages other than English and Mandarin get their share of robot calls
    (they were once synthesised and never planned); humans stay English/Mandarin."""
    from robodetect.train import OTHER_SHARE, plan_calls

    rows = []
    for lang, label, n in (
        ("en", "human", 4),
        ("zh", "human", 4),
        ("en", "robot", 4),
        ("zh", "robot", 4),
        ("fi", "robot", 4),
    ):
        for i in range(n):
            rows.append(
                {
                    "label": label,
                    "lang": lang,
                    "split": "train",
                    "group": f"{label}-{lang}",
                    "engine": "human" if label == "human" else "espeak-ng",
                    "speaker": f"{lang}{i}",
                    "identity": f"{label}:{lang}{i}",
                    "path": f"/x/{label}{lang}{i}.flac",
                }
            )
    plans = plan_calls(rows, "train", 100, 0)
    robot_langs = [p.lang for p in plans if p.label == "robot"]
    assert robot_langs.count("fi") == round(100 * OTHER_SHARE)
    assert {p.lang for p in plans if p.label == "human"} == {"en", "zh"}
    two_party = plan_calls(rows, "train", 20, 0, mode="two-party")
    assert all(p.lang in ("en", "zh") and p.callee_paths for p in two_party)
    # plan 4: both labels get calls shorter than one window (tiled), about SHORT_CALL_SHARE of them
    for label in ("human", "robot"):
        seconds = np.array([p.speech_seconds for p in plans if p.label == label])
        assert 0.07 < np.mean(seconds < 2.0) < 0.25 and seconds.min() >= 0.6
    assert min(p.speech_seconds for p in two_party) >= 2.0
    # --train-short-share 0: none, and every other draw of the plan as before
    plain = plan_calls(rows, "train", 100, 0, short_share=0.0)
    assert min(p.speech_seconds for p in plain) >= 2.0
    assert [(p.paths, p.seed) for p in plain] == [(p.paths, p.seed) for p in plans]


def test_a_blend_of_a_dev_voice_is_refused_when_the_corpora_are_read_together(tmp_path):
    import csv

    from robodetect.protocol import blend_parents
    from robodetect.train import read_manifests

    assert blend_parents(row("robot", "kokoro-blend", "kokoro-blend:jf_alpha*0.40+jm_kumo")) == [
        "kokoro:jf_alpha",
        "kokoro:jm_kumo",
    ]
    assert blend_parents(row("robot", "kokoro", "kokoro:jf_alpha")) == []
    with pytest.raises(ValueError, match="not a blend"):
        blend_parents(row("robot", "kokoro-blend", "kokoro-blend:jf_alpha"))

    def manifest(name, rows):
        path = tmp_path / name
        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, ["path", "label", "source", "engine", "speaker", "lang", "split", "settings"])
            w.writeheader()
            for engine, speaker, split in rows:
                w.writerow(dict(path="x.flac", label="robot", source=f"tts-{engine}", engine=engine,
                                speaker=speaker, lang="en", split=split, settings="{}"))  # fmt: skip
        return path

    base = manifest("base.csv", [("kokoro", "kokoro:jf_alpha", "train"), ("kokoro", "kokoro:jf_tebukuro", "dev")])
    good = manifest("good.csv", [("kokoro-blend", "kokoro-blend:jf_alpha*0.40+jm_kumo", "train")])
    bad = manifest("bad.csv", [("kokoro-blend", "kokoro-blend:jf_alpha*0.40+jf_tebukuro", "train")])
    assert len(read_manifests([base, good])) == 3
    with pytest.raises(ValueError, match="kokoro:jf_tebukuro, a voice of the dev split"):
        read_manifests([base, bad])
