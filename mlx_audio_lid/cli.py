"""`mlx_audio_lid`: identify languages in files and folders; convert checkpoints.

    mlx_audio_lid identify PATH... [--model M] [--top-k K] [--languages en,ru] [--segments]
                  [--format text|json|jsonl|csv] [--output FILE] [--batch-size N] [--plot out.png]
    mlx_audio_lid convert --hf-path SOURCE --mlx-path DESTINATION [...]   (the converter's own options)
    mlx_audio_lid serve --model M [--host 127.0.0.1] [--port 8000] [--max-batch 16] [...]   (HTTP server)
    mlx_audio_lid corpus PATH... --output labels.parquet [--engine local|ray] [...]   (Parquet, one row per file)

A thin front over `load`, `identify` and `convert`: every file gets a record, a file that
fails gets an `error` instead of a language and never stops the others, and the exit status
is 1 when any file failed (2 when the model or the arguments are wrong). The arguments are
parsed before any model code is imported, so `--help` and argument errors answer at once.
"""

import argparse
import csv
import json
import math
import sys
from pathlib import Path
from typing import IO, Iterator, List, Optional

from . import registry, vad
from .vad.energy import THRESHOLD_DB

DEFAULT_MODEL = "speechbrain/lang-id-voxlingua107-ecapa"  # Apache-2.0, 107 languages, ~85 MB
FORMATS = ("text", "json", "jsonl", "csv")
CSV_COLUMNS = ("path", "kind", "start", "end", "language", "code", "name", "probability", "top", "error")


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if isinstance(error, (ValueError, OSError)) and text else f"{type(error).__name__}: {text}"


def load_model(name: str, dtype: str = "auto"):
    """A local folder in any layout `load` reads, or a Hub repo id fetched on first use."""
    from . import loading

    path = Path(name).expanduser()
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name
    if path.exists() or looks_local:
        if not path.is_dir():
            raise FileNotFoundError(f"no model folder at {name}")
        return loading.load(path, dtype=dtype)
    try:
        folder = loading.resolve_folder(name)
    except Exception as error:  # offline, unknown repo, or a name that is not a repo id
        layouts = ", ".join(f.layouts for f in registry.FAMILIES if f.layouts)
        raise ValueError(
            f"could not get model {name!r} from the Hugging Face Hub ({one_line(error)}). "
            "Without network, pass a local folder: --model path/to/folder (an MLX folder made by "
            f"`mlx_audio_lid convert`, or {layouts})"
        ) from None
    return loading.load(folder, dtype=dtype)


def file_record(path: str, prediction) -> dict:
    """One file's record: its path, then the prediction's fields (the JSON, JSONL and server answer)."""
    return {"path": path, **prediction.to_dict()}


def audio_files(paths: List[str]) -> Iterator[tuple]:
    """(path, None) for each file to identify, folders recursed; (path, error) for a bad path."""
    from .audio import AUDIO_EXTENSIONS

    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower().lstrip(".") in AUDIO_EXTENSIONS)
            if not found:
                yield name, f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) in folder {name}"
            yield from ((str(p), None) for p in found)
        else:
            yield name, None  # a missing or unreadable file fails on its own, with its own message


def printable(value):
    """Strings in a record as valid Unicode: a file name's undecodable bytes become `\\xff` escapes.

    Python keeps such bytes as lone surrogates ("surrogateescape"), which no UTF-8 writer accepts.
    """
    if isinstance(value, str):
        try:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # a surrogate that is not an escaped byte
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {key: printable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [printable(item) for item in value]
    return value


def _format_top(top: list) -> str:
    return ";".join(f"{entry['language']}:{entry['probability']:.4f}" for entry in top)


class Writer:
    """Writes records in one of FORMATS as they come (json: one list at the end)."""

    def __init__(self, out: IO[str], fmt: str):
        self.out, self.fmt, self.records = out, fmt, []
        if fmt == "csv":
            self.csv = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
            self.csv.writeheader()

    def write(self, record: dict) -> None:
        record = printable(record)
        if self.fmt == "json":
            self.records.append(record)
        elif self.fmt == "jsonl":
            self.out.write(json.dumps(record, ensure_ascii=False) + "\n")
        elif self.fmt == "csv":
            self._write_csv(record)
        else:
            self._write_text(record)
        self.out.flush()

    def close(self) -> None:
        if self.fmt == "json":
            json.dump(self.records, self.out, indent=2, ensure_ascii=False)
            self.out.write("\n")

    def _write_csv(self, record: dict) -> None:
        if "error" in record:
            self.csv.writerow({"path": record["path"], "kind": "file", "error": record["error"]})
            return
        row = {k: record[k] for k in ("path", "language", "code", "name", "probability")}
        self.csv.writerow(dict(row, kind="file", start=0.0, end=record["duration"], top=_format_top(record["top"])))
        for segment in record.get("segments", []):
            self.csv.writerow(dict(segment, path=record["path"], kind="segment"))

    def _write_text(self, record: dict) -> None:
        if "error" in record:
            self.out.write(f"{record['path']}: error: {record['error']}\n")
            return
        others = ", ".join(f"{t['language']} {t['probability']:.3f}" for t in record["top"][1:])
        self.out.write(f"{record['path']}: {record['language']} ({record['name']}) {record['probability']:.3f}"
                       + (f"  [{others}]" if others else "") + "\n")
        for s in record.get("segments", []):
            self.out.write(f"  {s['start']:9.2f} - {s['end']:9.2f} s  {s['language']} ({s['name']}) {s['probability']:.3f}\n")


def plot_timeline(record: dict, destination: str) -> None:
    """The file's segments as bars, one row per language, shaded by probability."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError("--plot needs matplotlib: pip install 'mlx-audio-lid[plot]'") from None
    segments = record["segments"]
    rows = list(dict.fromkeys(s["language"] for s in segments))
    figure, axes = plt.subplots(figsize=(10, 1 + 0.4 * max(1, len(rows))))
    for s in segments:
        axes.barh(rows.index(s["language"]), s["end"] - s["start"], left=s["start"], height=0.6,
                  color="tab:blue", alpha=0.3 + 0.7 * s["probability"])
    axes.set_yticks(range(len(rows)), [f"{r} ({next(s['name'] for s in segments if s['language'] == r)})" for r in rows])
    axes.set_xlim(0, max(record["duration"], 1e-3))
    axes.set_xlabel("time (s)")
    axes.set_title(f"{Path(record['path']).name}: {record['language']} ({record['name']})")
    figure.tight_layout()
    figure.savefig(destination)
    plt.close(figure)


def writable_file_problem(option: str, name: Optional[str]) -> Optional[str]:
    """Why `name` cannot be written as a file (a folder, or in a folder that does not exist)."""
    if name is None:
        return None
    path = Path(name)
    if path.is_dir():
        return f"{option} {printable(name)} is a folder; name a file"
    if not path.parent.is_dir():
        return f"{option} {printable(name)}: folder {printable(str(path.parent))} does not exist"
    return None


def run_identify(args) -> int:
    for option, name in (("--output", args.output), ("--plot", args.plot)):
        problem = writable_file_problem(option, name)
        if problem:  # before any model work
            print(f"mlx_audio_lid: error: {problem}", file=sys.stderr)
            return 2
    try:
        model = load_model(args.model, args.dtype)
    except Exception as error:
        print(f"mlx_audio_lid: error: {one_line(error)}", file=sys.stderr)
        return 2
    files = list(audio_files(args.paths))
    if args.plot and len(files) != 1:
        print(f"mlx_audio_lid: error: --plot draws one file's timeline; {len(files)} files given", file=sys.stderr)
        return 2
    from tqdm import tqdm

    from .identification import identify

    failed = 0
    try:
        out = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout
    except OSError as error:  # e.g. no permission
        print(f"mlx_audio_lid: error: --output: {printable(one_line(error))}", file=sys.stderr)
        return 2
    if out is sys.stdout and hasattr(out, "reconfigure"):
        out.reconfigure(errors="backslashreplace")  # a terminal that cannot show a language's name
    writer = Writer(out, args.format)
    try:
        for path, problem in tqdm(files, file=sys.stderr, unit="file", disable=len(files) < 2):
            try:
                if problem:
                    raise ValueError(problem)
                prediction = identify(
                    model, path, top_k=args.top_k, languages=args.languages, min_probability=args.min_probability,
                    segments=args.segments or bool(args.plot), batch_size=args.batch_size, window=args.window,
                    hop=args.hop, max_whole=args.max_whole, vad=None if args.no_vad else args.vad,
                    vad_threshold_db=args.vad_threshold_db, allow_partial=args.allow_partial,
                )
                record = file_record(path, prediction)
                if args.plot:
                    plot_timeline(record, args.plot)
                    if not args.segments:
                        del record["segments"]
            except Exception as error:  # one bad file must not stop the others
                record = {"path": path, "error": one_line(error)}
                failed += 1
            writer.write(record)
        writer.close()
    finally:
        if out is not sys.stdout:
            out.close()
    return 1 if failed else 0


def run_convert(arguments: List[str]) -> int:
    """`convert` is the converter's own command line (mlx_audio_lid/converter.py), passed through."""
    from .converter import main as convert_main

    return convert_main(arguments)


def _number(kind, low=None, high=None, low_open=False):
    """An argparse type: a finite `kind` within [low, high] ((low, high] when low_open)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole number' if kind is int else 'number'}") from None
        too_low = low is not None and (value <= low if low_open else value < low)
        if not math.isfinite(value) or too_low or (high is not None and value > high):
            bounds = f"{'above' if low_open else 'at least'} {low}" if high is None else f"from {low} to {high}"
            raise argparse.ArgumentTypeError(f"{text} is out of range: it must be {bounds}")
        return value
    return parse


def run_serve(args) -> int:
    """`serve` imports FastAPI and uvicorn only when it runs (they are the `serve` extra)."""
    try:
        from .serve import main as serve_main
    except ImportError as error:
        print(f"mlx_audio_lid: error: serve needs FastAPI and uvicorn ({error}): "
              "pip install 'mlx-audio-lid[serve]'", file=sys.stderr)
        return 2
    return serve_main(args)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="mlx_audio_lid", description="Spoken language identification on MLX.")
    commands = top.add_subparsers(dest="command", required=True)

    ident = commands.add_parser("identify", help="identify the language of audio files and folders")
    ident.add_argument("paths", nargs="+", metavar="PATH", help="audio files, or folders to search for them")
    ident.add_argument("--model", default=DEFAULT_MODEL,
                       help=f"local folder (any layout mlx_audio_lid.load reads) or Hub repo id (default {DEFAULT_MODEL})")
    ident.add_argument("--top-k", type=_number(int, 1), default=5, help="how many (language, probability) pairs to list")
    ident.add_argument("--languages", help="candidate languages, comma separated: ISO 639-1, 639-3 or English names")
    ident.add_argument("--min-probability", type=_number(float, 0, 1), help="answer 'und' when the best probability is lower")
    ident.add_argument("--segments", action="store_true", help="add a timeline of (start, end, language) segments")
    ident.add_argument("--format", choices=FORMATS, default="text")
    ident.add_argument("--output", help="write the results to this file instead of standard output")
    ident.add_argument("--batch-size", type=_number(int, 1), default=8, help="windows per model call")
    ident.add_argument("--dtype", choices=["auto", "float32", "float16", "bfloat16"], default="auto",
                       help="compute precision; auto: float16 on a GPU, the model's own on a CPU")
    ident.add_argument("--max-whole", type=_number(float, 0, low_open=True), metavar="S",
                       help="run recordings up to S seconds whole, in one pass, and longer ones in windows "
                            "(default per model family)")
    ident.add_argument("--window", type=_number(float, 0, low_open=True), help="window length in seconds (default per model family)")
    ident.add_argument("--hop", type=_number(float, 0, low_open=True), help="seconds between window starts (default: half the window)")
    ident.add_argument("--vad", choices=sorted(vad.NAMES), default="silero",
                       help="voice activity detector (default silero: speech, not just sound; energy: any sound "
                            "above --vad-threshold-db)")
    ident.add_argument("--no-vad", action="store_true", help="run every window, silent or not")
    ident.add_argument("--vad-threshold-db", type=_number(float),
                       help=f"with --vad energy: frame level (dBFS) that counts as speech (default {THRESHOLD_DB})")
    ident.add_argument("--allow-partial", action="store_true",
                       help="identify the part of a truncated or damaged file that decodes (a warning says so)")
    ident.add_argument("--plot", metavar="PNG", help="draw the timeline of one file (needs matplotlib)")
    ident.set_defaults(run=run_identify)

    serve = commands.add_parser("serve", help="answer language ID requests over HTTP (whisper-asr-webservice's "
                                "/detect-language and /v1/audio/language)")
    serve.add_argument("--model", default=DEFAULT_MODEL, help=f"as for identify (default {DEFAULT_MODEL})")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--max-batch", type=int, default=16,
                       help="most requests gathered into one batch (also windows per model call)")
    serve.add_argument("--max-wait-ms", type=float, default=10.0, help="longest wait for a batch to fill")
    serve.add_argument("--max-upload-mb", type=float, default=100.0, help="largest request body (MiB); more: 413")
    serve.add_argument("--dtype", choices=["auto", "float32", "float16", "bfloat16"], default="auto")
    serve.add_argument("--log-level", choices=["critical", "error", "warning", "info", "debug"], default="info")
    serve.set_defaults(run=run_serve)

    conv = commands.add_parser("convert", add_help=False, help="convert a published checkpoint into an MLX folder "
                               "(`mlx_audio_lid convert --help` lists its options)")
    conv.add_argument("arguments", nargs=argparse.REMAINDER)  # listed here; main() hands them over
    corpus = commands.add_parser("corpus", add_help=False, help="identify a whole corpus into Parquet, in one process "
                                 "or on Ray Data (`mlx_audio_lid corpus --help` lists its options)")
    corpus.add_argument("arguments", nargs=argparse.REMAINDER)  # as convert: its own parser (corpus_cli.py)
    return top


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["convert"]:  # every option, --help included, belongs to the converter
        return run_convert(argv[1:])
    if argv[:1] == ["corpus"]:
        from .corpus_cli import main as corpus_main

        return corpus_main(argv[1:])
    args = parser().parse_args(argv)
    return args.run(args)
