"""First-call cost, eager and compiled, with a cold and then a warm on-disk kernel cache.

MLX's CUDA backend compiles kernels at run time and keeps them in MLX_PTX_CACHE_DIR
(kernel_cache.py). This runs each family (published size, random weights) in two fresh
processes sharing one new, empty cache folder: the first process finds it cold, the second
warm. Each process times the first and a steady call of the eager forward, then of the
compiled forward at the same shape, then the compiled forward's first call at a new shape
(a shape this cache has not seen: what a new batch shape costs once the common kernels exist).

    python -m benchmarks.first_call [--models ecapa mms] [--dtype float16] [--json out.json]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import mlx_audio_lid  # noqa: F401  (first: before anything imports mlx.core)

from references import sizes  # noqa: E402

from .common import machine_description, markdown_table  # noqa: E402

CONFIGS = {"ecapa": sizes.voxlingua107_ecapa, "mms": sizes.mms_lid}
SHAPE, NEW_SHAPE = (1, 10.0), (2, 7.0)  # (clips, seconds): the timed shape and a second, unseen one


def milliseconds(run) -> float:
    import mlx.core as mx

    started = time.perf_counter()
    mx.eval(run())
    return (time.perf_counter() - started) * 1e3


def run_child(family: str, dtype: str) -> dict:
    """In a fresh process: first and steady calls, eager and compiled."""
    import mlx.core as mx

    from .common import random_model

    model = random_model(CONFIGS[family](), dtype)

    def batch(shape):
        clips, seconds = shape
        x = 0.1 * mx.random.normal((clips, int(seconds * 16000)))
        mx.eval(x)
        return x, mx.full((clips,), x.shape[1], dtype=mx.int32)

    result = {}

    def measure(name, value):  # each as it comes, on stderr: a process cut short keeps these
        result[name] = value
        print(f"  {family}: {name} {value:.0f}", file=sys.stderr, flush=True)

    x, lengths = batch(SHAPE)
    compiled = model.compiled_forward()
    measure("eager first ms", milliseconds(lambda: model(x, lengths)))
    measure("eager steady ms", min(milliseconds(lambda: model(x, lengths)) for _ in range(3)))
    measure("compiled first ms", milliseconds(lambda: compiled(x, lengths, False)))
    measure("compiled steady ms", min(milliseconds(lambda: compiled(x, lengths, False)) for _ in range(3)))
    x, lengths = batch(NEW_SHAPE)
    measure("compiled first ms, new shape", milliseconds(lambda: compiled(x, lengths, False)))
    result["cache files"] = len(os.listdir(os.environ["MLX_PTX_CACHE_DIR"]))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="*", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float16")
    parser.add_argument("--json", help="write the rows here too")
    parser.add_argument("--child", choices=list(CONFIGS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args.child, args.dtype)))
        return

    rows, records = [], []
    for family in args.models:
        cache = tempfile.mkdtemp(prefix=f"ptx_{family}_")  # empty: the first process compiles everything
        for state in ("cold", "warm"):
            environment = dict(os.environ, MLX_PTX_CACHE_DIR=cache)
            print(f"{family}: {state} kernel cache...", file=sys.stderr, flush=True)
            done = subprocess.run([sys.executable, "-m", __spec__.name, "--child", family, "--dtype", args.dtype],
                                  env=environment, check=True, stdout=subprocess.PIPE, text=True)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            records.append(dict(result, model=family, cache=state, dtype=args.dtype))
            print(json.dumps(records[-1]), flush=True)  # as it comes: a run cut short keeps these
            rows.append([family, state] + [f"{result[k]:.0f}" for k in
                        ("eager first ms", "eager steady ms", "compiled first ms", "compiled steady ms",
                         "compiled first ms, new shape")] + [result["cache files"]])
    print(f"Machine: {machine_description()}\n")
    print(markdown_table(["model", "kernel cache", f"eager first ms ({SHAPE[0]} x {SHAPE[1]:g} s, {args.dtype})",
                          "eager steady ms", "compiled first ms", "compiled steady ms",
                          f"compiled first ms, new shape ({NEW_SHAPE[0]} x {NEW_SHAPE[1]:g} s)", "cache files"], rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine_description(), "rows": records}, f, indent=1)


if __name__ == "__main__":
    main()
