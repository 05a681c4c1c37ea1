"""Fuzz the decoder and the CLI with mutated WAV / FLAC / MP3 / OGG files.

    python scripts/fuzz_audio.py --minutes 10 [--seed 0] [--out fuzz-crashes] [--cli-every 5]

A seeded mutator takes valid files (short cuts of samples/, encoded in each format) and flips bits,
overwrites header fields with boundary values, truncates, splices and duplicates chunks. Each case
goes through ``load_audio`` in a child process (so a segfault or a hang is caught, not fatal); every
``--cli-every``-th case also through ``robodetect score --json`` (in the same child, model loaded
once). A *crash* is anything other than a decoded Audio or an AudioError (a traceback, a dead
child, a non-finite sample), a hang is a case over ``--timeout`` seconds, and a CLI failure is an
exit code other than 0/1, a stderr line not starting with ``robodetect:`` or invalid JSON on stdout.
Crashing inputs are written to ``--out`` with the reason; the run prints one summary line.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing as mp
import os
import random
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
FORMATS = {  # extension -> soundfile (format, subtype)
    ".wav": ("WAV", "PCM_16"),
    ".f32.wav": ("WAV", "FLOAT"),
    ".flac": ("FLAC", "PCM_16"),
    ".mp3": ("MP3", "MPEG_LAYER_III"),
    ".ogg": ("OGG", "VORBIS"),
}
INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]


def seeds() -> list[tuple[str, bytes]]:
    """(extension, bytes) of valid files: 2 s cuts of two samples, mono and stereo, each format."""
    out = []
    for name in ("robot_en_piper.wav", "human_en_speechocean.wav"):
        x, sr = sf.read(REPO / "samples" / name, dtype="float32")
        for channels in (1, 2):
            clip = x[sr : 3 * sr]
            data = clip if channels == 1 else np.stack([clip, clip * 0.5], 1)
            for ext, (fmt, subtype) in FORMATS.items():
                buf = io.BytesIO()
                sf.write(buf, data, sr, format=fmt, subtype=subtype)
                out.append((ext, buf.getvalue()))
    return out


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four random mutations; the header (first 128 bytes) is hit half the time."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not b:
            break
        op = rng.randrange(7)
        header = rng.random() < 0.5
        pos = rng.randrange(min(len(b), 128) if header else len(b))
        if op == 0:  # bit flips
            for _ in range(rng.randint(1, 8)):
                i = rng.randrange(len(b))
                b[i] ^= 1 << rng.randrange(8)
        elif op == 1:  # a boundary value in a 1/2/4-byte field
            size = rng.choice((1, 2, 4))
            value = rng.choice(INTERESTING) & ((1 << (8 * size)) - 1)
            b[pos : pos + size] = value.to_bytes(size, rng.choice(("little", "big")))
        elif op == 2:  # truncate
            del b[rng.randrange(len(b)) :]
        elif op == 3:  # random bytes inserted
            b[pos:pos] = rng.randbytes(rng.randint(1, 64))
        elif op == 4:  # a chunk duplicated elsewhere
            a = rng.randrange(len(b))
            chunk = b[a : a + rng.randint(1, 512)]
            b[pos:pos] = chunk
        elif op == 5:  # a block of the body zeroed or filled
            n = rng.randint(1, 4096)
            b[pos : pos + n] = bytes([rng.choice((0, 0xFF))]) * len(b[pos : pos + n])
        else:  # huge size fields (RIFF/data sizes, FLAC block sizes)
            b[pos : pos + 4] = struct.pack("<I", rng.choice((0, 0xFFFFFFFF, len(b) * 1000)))
    return bytes(b)


# ---- the child: decodes (and scores) what the parent sends ----------------------------------
def _child(conn) -> None:
    import contextlib

    from robodetect.audio import AudioError, load_audio
    from robodetect.cli import main

    while True:
        item = conn.recv()
        if item is None:
            return
        path, cli = item
        try:
            audio = load_audio(path)
            if not np.isfinite(audio.samples).all():
                conn.send(("crash", "load_audio returned non-finite samples"))
                continue
            verdict = "ok"
        except AudioError as exc:
            verdict = "error" if "\n" not in str(exc) else "crash"
            if verdict == "crash":
                conn.send(("crash", f"multi-line AudioError: {exc!r}"))
                continue
        except Exception as exc:  # anything else is a bug
            conn.send(("crash", f"load_audio raised {type(exc).__name__}: {exc}"))
            continue
        if cli:
            out, err = io.StringIO(), io.StringIO()
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    code = main(["score", "--json", path])
            except BaseException as exc:
                conn.send(("crash", f"cli raised {type(exc).__name__}: {exc}"))
                continue
            problem = _cli_problem(code, out.getvalue(), err.getvalue())
            if problem:
                conn.send(("crash", problem))
                continue
        conn.send((verdict, ""))


def _cli_problem(code: int, out: str, err: str) -> str | None:
    import json

    if code not in (0, 1):
        return f"cli exit code {code}"
    for line in err.splitlines():
        if line and not line.startswith("robodetect:"):
            return f"cli stderr line: {line[:200]}"
    for line in out.splitlines():
        try:
            json.loads(line, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
        except ValueError:
            return f"cli stdout is not strict JSON: {line[:200]}"
    return None


class Child:
    def __init__(self) -> None:
        self.ctx = mp.get_context("spawn")
        self.start()

    def start(self) -> None:
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_child, args=(child,), daemon=True)
        self.proc.start()
        child.close()

    def run(self, path: str, cli: bool, timeout: float) -> tuple[str, str]:
        self.conn.send((path, cli))
        if self.conn.poll(timeout):
            try:
                return self.conn.recv()
            except EOFError:
                pass
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
            self.start()
            return "hang", f"no answer in {timeout:.0f} s"
        self.proc.join()
        code = self.proc.exitcode
        self.start()
        return "crash", f"child died with exit code {code}"

    def close(self) -> None:
        self.conn.send(None)
        self.proc.join(5)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("fuzz-crashes"))
    ap.add_argument("--cli-every", type=int, default=5, help="run every N-th case through the CLI too")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds before a case counts as a hang")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    rng = random.Random(args.seed)
    pool = seeds()
    child = Child()
    counts = {"ok": 0, "error": 0, "crash": 0, "hang": 0}
    by_ext: dict[str, int] = {}
    t_end = time.time() + 60 * args.minutes
    n = 0
    with tempfile.TemporaryDirectory(prefix="robodetect-fuzz-") as tmp:
        while time.time() < t_end:
            ext, data = rng.choice(pool)
            case = mutate(data, rng)
            path = os.path.join(tmp, f"case{ext}")
            with open(path, "wb") as fh:
                fh.write(case)
            cli = args.cli_every > 0 and n % args.cli_every == 0
            verdict, why = child.run(path, cli, args.timeout)
            counts[verdict] += 1
            by_ext[ext] = by_ext.get(ext, 0) + 1
            if verdict in ("crash", "hang"):
                args.out.mkdir(parents=True, exist_ok=True)
                keep = args.out / f"{verdict}-{args.seed}-{n:06d}{ext}"
                keep.write_bytes(case)
                keep.with_suffix(keep.suffix + ".txt").write_text(why + "\n")
                print(f"{verdict}: {keep}: {why}", flush=True)
            n += 1
    child.close()
    formats = ", ".join(f"{k} {v}" for k, v in sorted(by_ext.items()))
    print(
        f"fuzz_audio: {n} cases in {args.minutes:g} min (seed {args.seed}; {formats}): "
        f"{counts['ok']} decoded, {counts['error']} clean errors, {counts['crash']} crashes, {counts['hang']} hangs"
    )
    return 1 if counts["crash"] or counts["hang"] else 0


if __name__ == "__main__":
    sys.exit(main())
