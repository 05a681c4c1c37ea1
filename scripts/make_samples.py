"""Regenerate samples/: short simulated telephone calls from dev-split speakers and voices.

    python scripts/build_corpus.py --out data/corpus   # for the robot engines' clips
    python scripts/make_samples.py [--out samples]

Each sample joins 2-4 utterances of one dev speaker/voice (never used in training) through the
call simulator with a fixed, moderate channel (noise at 25 dB SNR, G.711 mu-law), and is written
as 8 kHz 16-bit WAV with its label, source and licence in samples/labels.csv.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from train import manifests as corpus_manifests  # noqa: E402

from robodetect.simulate import SimConfig, simulate_call  # noqa: E402
from robodetect.train import read_manifests  # noqa: E402

# (file name, manifest source, language, number of utterances)
PLAN = [
    ("human_en_librispeech.wav", "librispeech", "en", 1),
    ("human_en_speechocean.wav", "speechocean762", "en", 3),
    ("human_zh_aishell.wav", "aishell1-sample", "zh", 3),
    ("human_zh_aishell3.wav", "aishell3-gt", "zh", 2),
    ("robot_en_vits.wav", "coqui-vits-vctk", "en", 1),
    ("robot_zh_fastspeech2.wav", "zs-tts-zh", "zh", 3),
    ("robot_en_piper.wav", "tts-piper", "en", 2),
    ("robot_en_espeak.wav", "tts-espeak-ng", "en", 2),
    ("robot_en_festival.wav", "tts-festival", "en", 2),
]
SECONDS = 9.0  # speech per sample (longer utterances are cut)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "samples", help="folder for the WAVs and labels.csv")
    ap.add_argument("--corpus", default=str(REPO / "data" / "corpus"), help="build_corpus.py's output folder")
    args = ap.parse_args(argv)
    out_dir = args.out
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"make_samples: {out_dir}: cannot create ({e.strerror})", file=sys.stderr)
        return 1
    manifests = corpus_manifests(args)
    missing = [str(m) for m in manifests if not m.is_file()]
    if missing:
        print(
            f"make_samples: {', '.join(missing)}: not found (needs ../shared/corpora and python scripts/build_corpus.py)",
            file=sys.stderr,
        )
        return 1
    rows = read_manifests(manifests)
    sim = SimConfig(
        p_clean=0.0,
        snr_db=(25.0, 25.0),
        gain_db=(-6.0, -6.0),
        p_clip=0.0,
        p_bandlimit=1.0,
        p_packet_loss=0.0,
        codec="mulaw",
        lead_max_seconds=0.8,
        trail_max_seconds=0.5,
    )
    table = []
    for i, (name, source, lang, n) in enumerate(PLAN):
        rng = np.random.default_rng(100 + i)
        cands = sorted(
            (r for r in rows if r["source"] == source and r["split"] == "dev" and r["lang"] == lang),
            key=lambda r: r["path"],
        )
        speaker = cands[int(rng.integers(len(cands)))]["speaker"]
        mine = [r for r in cands if r["speaker"] == speaker]
        picks = [mine[j] for j in rng.permutation(len(mine))[:n]]
        utts, left = [], SECONDS
        for r in picks:
            x, _ = sf.read(r["path"], dtype="float32")
            utts.append(x[: int(left * 8000)])
            left -= len(utts[-1]) / 8000
            if left <= 0.5:
                break
        call, meta = simulate_call(utts, rng, sim)
        sf.write(out_dir / name, call, 8000, subtype="PCM_16")
        first = picks[0]
        table.append(
            {
                "file": name,
                "label": first["label"],
                "source": source,
                "engine": first["engine"],
                "speaker": speaker,
                "lang": lang,
                "licence": first["license"],
                "text": " / ".join(r["text"] for r in picks)[:200],
            }
        )
        print(f"{name}: {len(call) / 8000:.1f} s, {meta}")
    with open(out_dir / "labels.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(table[0]))
        w.writeheader()
        w.writerows(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
