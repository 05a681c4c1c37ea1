"""The ``robodetect`` command: thin argument parsing over the Python API.

Exit codes: 0 when every input was processed (whatever the verdicts), 1 when any input failed
(the others are still processed; stderr names each failure on one line) or the result store
cannot be used, 2 on usage errors, 130 / 143 when interrupted by Ctrl-C (SIGINT) / SIGTERM
(``scan`` keeps every finished file; rerun the same command to resume).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from .audio import CHANNEL_MODES, AudioError, display_path
from .jsonio import dumps

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
CHANNEL_HELP = (
    "auto (default): a 2-channel file is a two-party call, each channel scored and the call a robot when "
    "either party is; mix: average the channels; left/right: one channel; each: every channel on its own"
)
EXIT_SIGINT, EXIT_SIGTERM = 128 + signal.SIGINT, 128 + signal.SIGTERM


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number within 0..1, got {text!r}")
    return value


def _device(text: str) -> str:
    """cpu, auto, cuda, cuda:N (or anything else torch names, e.g. mps)."""
    if text in ("auto", "cpu"):  # no torch import for these (the ONNX engine never loads torch)
        return text
    import torch

    try:
        torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown device {text!r} (use cpu, cuda, cuda:N or auto)") from None
    return text


def _error(message: str) -> None:
    """One line on stderr (a message never spans lines, whatever the file names hold)."""
    print(f"robodetect: error: {' '.join(message.splitlines())}", file=sys.stderr, flush=True)


def _format_result(result, path: str) -> str:
    """Readable verdict: one headline line, then indented reasons."""
    path = display_path(path)
    name = path if result.channel in ("mix", "call") else f"{path} [{result.channel}]"
    if result.party:
        name += f" [{result.label} on the {result.party} channel]"
    if result.label == "no_speech":
        return f"{name}: NO SPEECH ({result.reason}; {result.duration_seconds:.1f} s of audio)"
    if result.label == "uncertain":
        rule = f"uncertain between {result.uncertain_low:.3f} and {result.uncertain_high:.3f}"
    else:
        rule = f"threshold {result.threshold:.3f}"
    lines = [
        f"{name}: {result.label.upper()}  robot probability {result.robot_probability:.3f} "
        f"({rule})  speech {result.speech_seconds:.1f} s of {result.duration_seconds:.1f} s"
    ]
    lines += [f"    - {cue}" for cue in result.cues[:4]]
    t = result.timing
    lines.append(
        "    timing: "
        + ", ".join(
            f"{k}={t[k]:.2f}"
            for k in ("speech_ratio", "pause_mean_seconds", "syllable_rate", "pitch_std_semitones")
            if t.get(k) is not None
        )
    )
    for p in result.parties:
        prob = "" if p.robot_probability is None else f" {p.robot_probability:.3f}"
        lines.append(f"    {p.channel} channel: {p.label.upper()}{prob}" + (f" ({p.reason})" if p.reason else ""))
    return "\n".join(lines)


def _cmd_score(args: argparse.Namespace) -> int:
    detector = _load(args, args.engine)
    if detector is None:
        return EXIT_FAILED
    if args.plot and args.channel == "each":
        print("robodetect: --plot draws one verdict per file: use --channel auto, mix, left or right", file=sys.stderr)
        return EXIT_USAGE
    if args.plot:
        from .plot import PlotError, require_matplotlib

        try:
            require_matplotlib()
        except PlotError as exc:
            _error(str(exc))
            return EXIT_FAILED
    failed = 0
    for path in args.files:
        try:
            if args.plot:
                from .plot import plot_file

                results = plot_file(detector, path, _plot_path(args.plot, path, len(args.files)), channel=args.channel)
            else:
                results = detector.score_file(path, channel=args.channel)
        except AudioError as exc:
            failed += 1
            _error(str(exc))
            continue
        except Exception as exc:  # one bad file never stops the others
            failed += 1
            _error(f"{display_path(path)}: {type(exc).__name__}: {exc}")
            continue
        for result in results if isinstance(results, list) else [results]:
            if args.json:
                print(dumps(result.to_dict()), flush=True)
            else:
                print(_format_result(result, path), flush=True)
    return EXIT_FAILED if failed else EXIT_OK


def _plot_path(out: str, path: str, n_files: int) -> str:
    """OUT.png for one file; OUT-<file stem>.png for each of several."""
    if n_files == 1:
        return out
    root, ext = os.path.splitext(out)
    return f"{root}-{os.path.splitext(os.path.basename(path))[0]}{ext or '.png'}"


def _add_score(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="score audio files and print a verdict for each")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files (WAV, FLAC, OGG, MP3, ...)")
    p.add_argument("--json", action="store_true", help="print one JSON object per file (JSON Lines)")
    p.add_argument("--channel", choices=CHANNEL_MODES, default="auto", help=CHANNEL_HELP)
    p.add_argument("--threshold", type=_probability, default=None, help="robot threshold (default: the model's)")
    p.add_argument(
        "--no-uncertain", action="store_true", help="plain robot/human at the threshold (no 'uncertain' band)"
    )
    p.add_argument("--model", default=None, help="model stem (path without .safetensors); default: shipped")
    p.add_argument("--device", type=_device, default="cpu", help="cpu, cuda or auto")
    p.add_argument(
        "--engine",
        choices=("auto", "torch", "onnx"),
        default="auto",
        help="run the network on torch or onnxruntime (starts faster: no torch import); auto: onnx when "
        "onnxruntime is installed and the device is cpu, else torch",
    )
    p.add_argument(
        "--plot",
        metavar="OUT.png",
        default=None,
        help="also draw waveform, spectrogram and per-window robot probability (needs robodetect[plot]); "
        "with several files, OUT-<file stem>.png each",
    )
    p.set_defaults(func=_cmd_score)


def _load(args: argparse.Namespace, engine: str = "torch"):
    """The detector for ``args`` (model, device, threshold) on ``engine`` (:data:`robodetect.ENGINES`),
    or None after one error line."""
    from .engines import load

    try:
        return load(
            args.model, device=args.device, threshold=args.threshold, uncertain=not args.no_uncertain, engine=engine
        )
    except (OSError, ValueError, RuntimeError) as exc:
        _error(f"cannot load model: {exc}")
        return None


MODEL_FORMATS = ("onnx", "torchscript")
RESULT_FORMATS = ("csv", "jsonl", "parquet")


def _cmd_export(args: argparse.Namespace) -> int:
    """``export --format onnx|torchscript OUT`` exports the model; ``export DB --format csv|jsonl|parquet OUT``
    exports a scan's result store."""
    if args.format in MODEL_FORMATS:
        if len(args.paths) != 1:
            print("robodetect: usage: robodetect export --format onnx|torchscript OUT", file=sys.stderr)
            return EXIT_USAGE
        out = args.paths[0]
        folder = os.path.dirname(os.path.abspath(out))
        if not os.path.isdir(folder):
            _error(f"{display_path(out)}: folder {display_path(folder)} does not exist")
            return EXIT_FAILED
        from .export import export_model

        try:
            path = export_model(out, fmt=args.format, model=args.model)
        except (ImportError, OSError, ValueError, RuntimeError) as exc:
            _error(f"{display_path(out)}: export failed ({exc})")
            return EXIT_FAILED
        if not os.path.isfile(path) or os.path.getsize(path) == 0:
            _error(f"{display_path(out)}: export wrote nothing")
            return EXIT_FAILED
        print(f"wrote {display_path(path)}")
        return EXIT_OK
    if len(args.paths) != 2:
        print("robodetect: usage: robodetect export RESULTS.db --format csv|jsonl|parquet OUT", file=sys.stderr)
        return EXIT_USAGE
    import sqlite3

    from .store import export_results

    try:
        n = export_results(args.paths[0], args.format, args.paths[1])
    except (OSError, ValueError, sqlite3.Error) as exc:
        _error(f"{display_path(args.paths[0])}: {exc}")
        return EXIT_FAILED
    print(f"wrote {n} rows to {display_path(args.paths[1])}")
    return EXIT_OK


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export the model (onnx/torchscript) or a scan's results (csv/jsonl/parquet)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="OUT for a model export; RESULTS.db OUT for results")
    p.add_argument("--format", required=True, choices=MODEL_FORMATS + RESULT_FORMATS)
    p.add_argument("--model", default=None, help="model stem for a model export; default: shipped")
    p.set_defaults(func=_cmd_export)


def _cmd_scan(args: argparse.Namespace) -> int:
    import sqlite3

    from .batch import ScanInterrupted, scan
    from .parquetstore import ParquetStore, parquet_missing, wants_dataset
    from .store import ResultStore

    for p in args.paths:
        if p.startswith("@") and not os.path.isfile(p[1:]):
            _error(f"list file {display_path(p[1:])} not found")
            return EXIT_USAGE
    ray_engine = args.engine == "ray"
    if ray_engine:
        from .rayscan import ray_missing

        missing = ray_missing()
        if missing:
            _error(missing)
            return EXIT_USAGE
        device, args.device = args.device, "cpu"  # the driver's copy; actors use --device
    elif args.ray_address or args.model_actors:
        _error("--ray-address and --model-actors need --engine ray")
        return EXIT_USAGE
    parquet = wants_dataset(args.out)
    missing = parquet_missing() if parquet else None
    if missing:
        _error(missing)
        return EXIT_USAGE
    detector = _load(args)
    if detector is None:
        return EXIT_FAILED
    out = display_path(args.out)
    if not args.quiet:
        where = f"Ray ({args.ray_address or 'local'}), device {device}" if ray_engine else str(detector.device)
        print(f"robodetect: scanning with model {detector.model_version} on {where}", file=sys.stderr)
    try:
        store = ParquetStore(args.out) if parquet else ResultStore(args.out)
    except (OSError, ValueError, sqlite3.Error) as exc:
        _error(f"cannot open result store {out}: {exc}")
        return EXIT_FAILED

    def report(path: str, results: list, error: str | None) -> None:
        if error is not None:
            if args.quiet or not sys.stderr.isatty():
                _error(error)
            else:  # under the progress bar
                print("\r\033[K", end="", file=sys.stderr)
                _error(error)

    common = dict(
        channel=args.channel,
        workers=args.workers,
        rescore=args.rescore,
        progress=not args.quiet and sys.stderr.isatty(),
        on_file=report,
        commit_seconds=args.commit_seconds,
        max_seconds=args.max_seconds,
        fingerprints=not args.no_fingerprints,
    )
    try:
        if ray_engine:
            from .rayscan import scan_ray

            try:
                stats = scan_ray(
                    args.paths,
                    store,
                    detector,
                    device=str(device),
                    address=args.ray_address,
                    model_actors=args.model_actors,
                    **common,
                )
            except (RuntimeError, ConnectionError) as exc:  # no cluster at that address, no GPU in it
                store.close()
                _error(f"Ray: {' '.join(str(exc).split())[:300]}")
                return EXIT_FAILED
        else:
            stats = scan(
                args.paths,
                store,
                detector,
                batch_windows=args.batch_size,
                autocast=not args.no_autocast,
                **common,
            )
    except ScanInterrupted as exc:
        store.close()
        name = signal.Signals(exc.signum).name
        print(
            f"\nrobodetect: {name}: stopped after {exc.stats.files} files (all kept in {out}); "
            "rerun the same command to resume",
            file=sys.stderr,
        )
        _exit_now(128 + exc.signum)
    except KeyboardInterrupt:  # a second Ctrl-C: no more waiting
        store.abort()
        print(f"\nrobodetect: interrupted; committed files are in {out}, rerun to resume", file=sys.stderr)
        return EXIT_SIGINT
    except (sqlite3.Error, OSError) as exc:  # disk full, I/O error, a store locked for too long
        store.abort()
        _error(
            f"result store {out}: {exc}; files committed before this are intact — fix the cause and "
            "rerun the same command to resume"
        )
        return EXIT_FAILED
    store.close()
    if not args.quiet or stats.errors:
        print(stats.line(), file=sys.stderr if args.quiet else sys.stdout)
    if stats.errors:
        print(f"robodetect: errors by reason: robodetect summary {out}", file=sys.stderr)
    return EXIT_FAILED if stats.errors else EXIT_OK


def _add_scan(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scan", help="score folders/lists of recordings into a resumable result store")
    p.add_argument("paths", nargs="+", metavar="PATH", help="folder (recursive), audio file, or @list.txt")
    p.add_argument(
        "--out",
        required=True,
        metavar="DB",
        help="result store, created or resumed: a SQLite file, or a folder NAME.parquet of Parquet parts "
        "(written by the Ray workers with --engine ray; docs/scale-out.md)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="CPU worker processes (default: every CPU this process may use: affinity, cgroup quota)",
    )
    p.add_argument("--device", type=_device, default="auto", help="model device: auto, cpu or cuda (default auto)")
    p.add_argument("--channel", choices=CHANNEL_MODES, default="auto", help=CHANNEL_HELP)
    p.add_argument("--threshold", type=_probability, default=None, help="robot threshold (default: the model's)")
    p.add_argument(
        "--no-uncertain", action="store_true", help="plain robot/human at the threshold (no 'uncertain' band)"
    )
    p.add_argument("--model", default=None, help="model stem (path without .safetensors); default: shipped")
    p.add_argument("--rescore", action="store_true", help="score files again even if already in the store")
    p.add_argument("--batch-size", type=int, default=None, help="windows per model batch (default 32 CPU, 1024 GPU)")
    p.add_argument("--no-autocast", action="store_true", help="run the model in float32 on GPU too")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary (errors still reported)")
    p.add_argument(
        "--no-fingerprints",
        action="store_true",
        help="skip the campaign fingerprint (a fifth of a CPU scan's work, docs/benchmarks.md): 'campaigns' "
        "cannot link these files and says how many it skipped; a later scan without this option fingerprints "
        "them (with --rescore, a file fingerprinted before loses its fingerprint)",
    )
    p.add_argument(
        "--commit-seconds",
        type=float,
        default=1.0,  # batch.COMMIT_SECONDS (not imported here: the parser stays free of torch)
        help="commit finished rows at least this often (default 1); a crash loses at most this much work "
        "(0: every file)",
    )
    p.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        metavar="S",
        help="recordings longer than S seconds become error rows instead of being scored",
    )
    p.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: this machine's cores (default); ray: a Ray cluster (extra [ray]; docs/scale-out.md)",
    )
    p.add_argument(
        "--ray-address",
        default=None,
        metavar="auto|HOST:PORT",
        help="join this Ray cluster (default: start a local Ray on this machine's CPUs)",
    )
    p.add_argument(
        "--model-actors",
        type=int,
        default=None,
        metavar="N",
        help="Ray: N model actors behind CPU stage-1 tasks (default: one per GPU with --device cuda; "
        "on CPU each actor decodes and scores its own files)",
    )
    p.set_defaults(func=_cmd_scan)


def _read_store(db: str, read):
    """``read()`` a result store; on a missing, empty, foreign or damaged store print one line
    naming it and return None."""
    import sqlite3

    try:
        return read()
    except (OSError, ValueError, sqlite3.Error) as exc:
        name, why = display_path(db), str(exc)
        _error(why if why.startswith(f"{name}: ") else f"{name}: {why}")  # the store's own errors name it
        return None


def _cmd_summary(args: argparse.Namespace) -> int:
    from .store import format_summary, summarize

    summary = _read_store(args.db, lambda: summarize(args.db, top=args.top))
    if summary is None:
        return EXIT_FAILED
    print(dumps(summary, indent=2) if args.json else format_summary(summary))
    return EXIT_OK


def _add_summary(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("summary", help="summarize a scan's result store")
    p.add_argument("db", metavar="RESULTS.db")
    p.add_argument("--top", type=int, default=10, help="how many of the most robotic calls to list")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_cmd_summary)


def _cmd_campaigns(args: argparse.Namespace) -> int:
    from .campaigns import find_campaigns, format_campaigns, unfingerprinted_files

    campaigns = _read_store(args.db, lambda: find_campaigns(args.db, min_calls=args.min_calls))
    if campaigns is None:
        return EXIT_FAILED
    skipped = unfingerprinted_files(args.db)
    if skipped:
        print(
            f"robodetect: {skipped} file(s) in {display_path(args.db)} were scanned with --no-fingerprints and "
            "are not searched; scan them again without it to include them",
            file=sys.stderr,
        )
    if args.json:
        print(dumps([c.to_dict() for c in campaigns], indent=2))
    else:
        print(format_campaigns(campaigns, examples=args.examples))
    return EXIT_OK


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from .batch import iter_inputs
    from .localthreshold import fit, format_result, read_store

    def inputs(items):
        try:
            return list(iter_inputs(items or []))
        except OSError as exc:
            _error(f"{display_path(exc.filename or '')}: {exc.strerror or exc}")
            return None

    humans, robots = inputs(args.humans), inputs(args.robots)
    if humans is None or robots is None:
        return EXIT_FAILED
    stored = _read_store(args.db, lambda: read_store(args.db, humans + robots, args.model_version))
    if stored is None:
        return EXIT_FAILED
    listed = stored["listed"]
    h = [p for path in humans for p in listed.get(path, [])]
    r = [p for path in robots for p in listed.get(path, [])]
    if not h:
        _error(f"{display_path(args.db)}: none of the {len(humans)} known-human file(s) has a scored call in it")
        return EXIT_FAILED
    thresholds = stored["thresholds"]
    result = fit(
        h,
        thresholds[0] if len(thresholds) == 1 else None,
        robots=r,
        others=stored["rest"],
        max_false_alarm=args.max_false_alarm,
        confidence=args.confidence,
        model_version=stored["model_version"],
    )
    result.missing = stored["missing"]
    print(dumps(result.to_dict(), indent=2) if args.json else format_result(result))
    return EXIT_OK


def _add_calibrate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="fit the robot threshold on calls of a scanned archive known to be human",
        description="The shipped threshold flags <= 1 %% of humans from the recording chains the model "
        "was trained on; on other chains it flags more (model card). This reads a scan's result store "
        "and fits the threshold on calls you know are human (given like scan's inputs: files, folders, "
        "@list.txt), with a one-sided Clopper-Pearson bound on their false-alarm rate; use the printed "
        "value with --threshold in score and scan.",
    )
    p.add_argument("db", metavar="RESULTS.db")
    p.add_argument("--humans", nargs="+", required=True, metavar="INPUT", help="known-human recordings (as scanned)")
    p.add_argument(
        "--robots", nargs="+", default=[], metavar="INPUT", help="known robot recordings, for the catch rate"
    )
    p.add_argument("--max-false-alarm", type=_probability, default=0.01, help="humans flagged at most (default 0.01)")
    p.add_argument("--confidence", type=_probability, default=0.95, help="for the upper bound (default 0.95)")
    p.add_argument("--model-version", default=None, help="which model's rows, when the store holds several")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_cmd_calibrate)


def _add_campaigns(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("campaigns", help="find calls that play the same prompt audio (robocall campaigns)")
    p.add_argument("db", metavar="RESULTS.db", help="result store written by `robodetect scan`")
    p.add_argument("--min-calls", type=int, default=3, help="smallest campaign to report (default 3)")
    p.add_argument("--examples", type=int, default=3, help="example files listed per campaign")
    p.add_argument("--json", action="store_true", help="print the campaigns (every call) as JSON")
    p.set_defaults(func=_cmd_campaigns)


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    folder = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(folder):
        _error(f"{display_path(args.out)}: folder {display_path(folder)} does not exist")
        return EXIT_FAILED
    data = _read_store(args.db, lambda: write_report(args.db, args.out, top=args.top, campaigns=args.campaigns))
    if data is None:
        return EXIT_FAILED
    print(f"wrote {display_path(args.out)} ({data['files']} files, {len(data['campaigns'])} campaigns shown)")
    return EXIT_OK


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write a self-contained HTML report of a result store")
    p.add_argument("db", metavar="RESULTS.db", help="result store written by `robodetect scan`")
    p.add_argument("-o", "--out", required=True, metavar="report.html", help="HTML file to write")
    p.add_argument("--top", type=int, default=20, help="most robotic calls shown with timelines (default 20)")
    p.add_argument("--campaigns", type=int, default=10, help="campaigns shown (default 10)")
    p.set_defaults(func=_cmd_report)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="robodetect", description="Is the caller a robot (TTS) or a human?")
    parser.add_argument("--version", action="version", version=f"robodetect {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_score(sub)
    _add_export(sub)
    _add_scan(sub)
    _add_summary(sub)
    _add_calibrate(sub)
    _add_campaigns(sub)
    _add_report(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # `export RESULTS.db --format csv OUT`: argparse leaves a positional after an option unparsed
    if extra and args.command == "export" and not any(e.startswith("-") for e in extra):
        args.paths += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except KeyboardInterrupt:  # Ctrl-C outside scan's own handling (score, export, summary)
        print("\nrobodetect: interrupted", file=sys.stderr)
        return EXIT_SIGINT
    except BrokenPipeError:  # `robodetect score ... | head -1`: the reader left; not an error of ours
        _silence_stdout()
        return EXIT_OK


def _exit_now(code: int) -> None:
    """Exit at once after an interrupt: the store is closed and the message written; tearing down
    torch at interpreter exit would take a second or more of the 5 s a stop may take."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _silence_stdout() -> None:
    """After a closed pipe: point stdout at /dev/null so the interpreter's final flush is quiet."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
