"""Files per second through `identify_corpus`: the local engine against Ray Data, same files, same machine.

    python -m benchmarks.corpus_throughput [--files 120] [--seconds 3] [--workers 1 2] [--batch-size 8] [--model DIR]

Writes `--files` clips of speech-like audio (long_recording.write_recording) and, without
`--model`, an MLX folder of the VoxLingua107 ECAPA-TDNN architecture with random weights (the
published size; compute per clip as the real checkpoint's). Each engine runs the whole corpus
into a fresh output folder, end to end: model loading, Ray's worker start-up, decoding, Parquet.
Each is also run on one file; "after start-up" is (files - 1) / (time for all - time for one),
the rate once workers are up. Ray is initialised once, timed on its own line.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import mlx_audio_lid  # noqa: F401  (first: the optimized BLAS under MLX's CPU build)
from references import sizes

from .common import machine_description, markdown_table, save_random_model
from .long_recording import write_recording


def timed_run(files, model, work: Path, **engine) -> float:
    from mlx_audio_lid.corpus import identify_corpus

    out = work / f"out_{time.monotonic_ns()}.parquet"
    start = time.perf_counter()
    counts = identify_corpus(files, model, out, **engine)
    seconds = time.perf_counter() - start
    if counts["errors"] or counts["processed"] != len(files):
        raise RuntimeError(f"the run did not identify every file: {counts}")
    shutil.rmtree(out)
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=120)
    parser.add_argument("--seconds", type=int, default=3, help="length of each clip")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray worker counts to run")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--model", help="a model folder (default: full-size VoxLingua107 ECAPA, random weights)")
    args = parser.parse_args()

    import ray

    work = Path(tempfile.mkdtemp(prefix="corpus_throughput_"))
    try:
        model = args.model or str(save_random_model(sizes.voxlingua107_ecapa(), work / "ecapa_full"))
        files = []
        for i in range(args.files):
            files.append(str(work / f"clip{i:04d}.wav"))
            write_recording(Path(files[-1]), args.seconds, seed=i)
        start = time.perf_counter()
        ray.init(address="local", num_cpus=os.cpu_count())
        ray_start = time.perf_counter() - start
        engines = [("local", "1 process", {})]
        engines += [("ray", f"{n} worker{'s' if n > 1 else ''}", dict(engine="ray", num_workers=n)) for n in args.workers]
        rows, local_rate = [], None
        for name, workers, engine in engines:
            load = os.getloadavg()[0]
            one = timed_run(files[:1], model, work, batch_size=args.batch_size, **engine)
            every = timed_run(files, model, work, batch_size=args.batch_size, **engine)
            rate = args.files / every
            local_rate = local_rate or rate
            steady = f"{(args.files - 1) / (every - one):.1f}" if every > one else "-"  # noise beat the work
            rows.append([name, workers, args.files, f"{every:.1f}", f"{rate:.1f}", f"{rate / local_rate:.2f}x",
                         f"{one:.1f}", steady, f"{load:.1f} / {os.getloadavg()[0]:.1f}"])
            print(f"{name} {workers}: {every:.1f} s", file=sys.stderr)
        ray.shutdown()
    finally:
        shutil.rmtree(work)
    print(f"Machine: {machine_description()}; ray {ray.__version__}\n")
    print(f"Model: {args.model or 'VoxLingua107 ECAPA-TDNN architecture, random weights'}; {args.files} clips of "
          f"{args.seconds} s (16 kHz WAV); batch size {args.batch_size}; ray.init took {ray_start:.1f} s (not in the rows)\n")
    print(markdown_table(["engine", "workers", "files", "wall s", "files/s", "vs local", "one-file run s",
                          "files/s after start-up", "load avg before / after"], rows))


if __name__ == "__main__":
    main()
