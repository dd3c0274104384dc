"""`mlx_audio_lid corpus INPUT... --model M --output OUT.parquet [--engine local|ray] ...`

Exit status: 0 when every new row is an answer, 1 when some file got an error row, 2 when
the run could not go on (arguments, model, output folder, Ray).
"""

import argparse
import sys
from typing import List, Optional

from .cli import DEFAULT_MODEL, one_line


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlx_audio_lid corpus",
                                description="Identify the language of every file of a corpus into a Parquet dataset "
                                "folder (one row per file); a rerun skips the files it already has.")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="audio files, folders (searched recursively) or manifests (.csv/.jsonl with a 'path' column)")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"folder or Hub repo id, loaded by every worker (default {DEFAULT_MODEL})")
    p.add_argument("--output", required=True, help="the output folder, e.g. out.parquet (made if missing)")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="one process, or Ray Data (pip install 'mlx-audio-lid[ray]')")
    p.add_argument("--num-workers", type=int, help="Ray workers, each loading the model once (default: the cluster's CPUs)")
    p.add_argument("--cpus-per-worker", type=float, default=1, help="CPUs Ray reserves for each worker")
    p.add_argument("--gpus-per-worker", type=float, default=0, help="GPUs Ray reserves for each worker (MLX's CUDA build)")
    p.add_argument("--address", help="Ray cluster to connect to (default $RAY_ADDRESS, else a local Ray instance)")
    p.add_argument("--batch-size", type=int, default=8, help="files per identify call, and windows per model call")
    p.add_argument("--segments", action="store_true", help="add each file's timeline as a 'segments' column")
    p.add_argument("--top-k", type=int, default=5, help="how many (language, probability) entries in 'top'")
    p.add_argument("--languages", help="candidate languages, comma separated: ISO 639-1, 639-3 or English names")
    p.add_argument("--min-probability", type=float, help="answer 'und' when the best probability is lower")
    p.add_argument("--dtype", choices=["auto", "float32", "float16", "bfloat16"], default="auto",
                   help="compute precision; auto: float16 on a GPU, the model's own on a CPU")
    p.add_argument("--rows-per-part", type=int, default=1000,
                   help="rows per Parquet part file: at most this much work (or a minute's) is lost to a kill")
    return p


def _message(error: BaseException) -> str:
    if type(error).__module__.startswith("ray."):  # it carries the worker's traceback; the last line says what failed
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        return f"on a Ray worker: {lines[-1] if lines else type(error).__name__}"
    return one_line(error)


def main(arguments: Optional[List[str]] = None) -> int:
    args = parser().parse_args(arguments)
    try:
        from .corpus import identify_corpus
    except ModuleNotFoundError as error:
        if error.name != "pyarrow":
            raise
        print("mlx_audio_lid corpus: error: corpus runs write Parquet with pyarrow: pip install 'mlx-audio-lid[corpus]'",
              file=sys.stderr)
        return 2
    try:
        counts = identify_corpus(
            args.inputs, args.model, args.output, engine=args.engine, num_workers=args.num_workers,
            cpus_per_worker=args.cpus_per_worker, gpus_per_worker=args.gpus_per_worker, address=args.address,
            batch_size=args.batch_size, segments=args.segments, rows_per_part=args.rows_per_part, progress=True,
            top_k=args.top_k, languages=args.languages, min_probability=args.min_probability, dtype=args.dtype)
    except Exception as error:
        print(f"mlx_audio_lid corpus: error: {_message(error)}", file=sys.stderr)
        return 2
    print(f"{args.output}: {counts['processed']} new rows ({counts['errors']} errors), "
          f"{counts['skipped']} files already there", file=sys.stderr)
    return 1 if counts["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
