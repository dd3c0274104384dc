"""Which BLAS under MLX's Linux CPU build: each candidate of `cpu_blas.py`, timed in its own process.

For every BLAS this machine has (the system OpenBLAS, the `mkl` wheel threaded and sequential,
MLX's own with --with-reference-blas), a fresh process imports mlx_audio_lid with that choice
and times: a 1500x512x2048 float32 matmul (Whisper base's MLP), one eager forward of ECAPA
(VoxLingua107 size) on 10 s, of Whisper base's size on 30 s, and with --mms of MMS-LID-256 on
10 s (random weights, min of a few calls after a warm one). The last column is PyTorch's own
matmul when torch is imported *after* mlx_audio_lid, against torch alone in the first row:
the library loaded globally serves PyTorch's BLAS calls too (cpu_blas.py says why).

    python -m benchmarks.blas_choice            # add --mms for MMS-LID (~1 min per BLAS)
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCH = os.uname().machine

CHILD = r"""
import json, sys, time
settings = json.loads(sys.argv[1])
import mlx_audio_lid as lid
from mlx_audio_lid import cpu_blas
import mlx.core as mx
import numpy as np
from benchmarks.common import random_model
from references import sizes

def best_ms(run, calls):
    run()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3

rng = np.random.default_rng(0)
a, b = mx.array(rng.standard_normal((1500, 512), np.float32)), mx.array(rng.standard_normal((512, 2048), np.float32))
out = {"active": cpu_blas.active, "matmul GFLOP/s": 2 * 1500 * 512 * 2048 / best_ms(lambda: mx.eval(a @ b), 10) / 1e6}

def forward_ms(model, seconds, calls):
    waveforms = mx.array(rng.normal(0, 0.1, (1, 16000 * seconds)).astype(np.float32))
    lengths = mx.array([16000 * seconds])
    return best_ms(lambda: mx.eval(model(waveforms, lengths)), calls)

out["ECAPA 10 s ms"] = forward_ms(random_model(sizes.voxlingua107_ecapa()), 10, 5)
out["Whisper base 30 s ms"] = forward_ms(lid.load(settings["whisper"]), 30, 3)
if settings["mms"]:
    out["MMS-LID 10 s ms"] = forward_ms(random_model(sizes.mms_lid()), 10, 2)
import torch  # after: its BLAS calls bind to the library loaded above
x, y = torch.randn(1500, 512), torch.randn(512, 2048)
out["torch imported after: matmul GFLOP/s"] = 2 * 1500 * 512 * 2048 / best_ms(lambda: x @ y, 10) / 1e6
print(json.dumps(out))
"""

TORCH_ALONE = r"""
import json, time, torch
x, y = torch.randn(1500, 512), torch.randn(512, 2048)
x @ y
start = time.perf_counter()
for _ in range(10):
    x @ y
print(json.dumps(2 * 1500 * 512 * 2048 / ((time.perf_counter() - start) / 10) / 1e9))
"""


def candidates(with_reference_blas: bool):
    openblas = f"/usr/lib/{ARCH}-linux-gnu/openblas-pthread/libblas.so.3"
    mkl = sorted(glob.glob(os.path.join(sys.prefix, "lib", "libmkl_rt.so*")))
    found = []
    if os.path.exists(openblas):
        found.append(("system OpenBLAS, pthreads", {"MLX_AUDIO_LID_BLAS": openblas}))
    if mkl:
        found.append(("MKL wheel, threaded (MKL's default)", {"MLX_AUDIO_LID_BLAS": mkl[0]}))
        found.append(("MKL wheel, MKL_THREADING_LAYER=SEQUENTIAL",
                      {"MLX_AUDIO_LID_BLAS": mkl[0], "MKL_THREADING_LAYER": "SEQUENTIAL"}))
    if with_reference_blas:
        found.append(("MLX's own (reference BLAS)", {"MLX_AUDIO_LID_BLAS": "off"}))
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mms", action="store_true", help="also time MMS-LID-256 on 10 s")
    parser.add_argument("--with-reference-blas", action="store_true", help="also MLX's own BLAS (slow)")
    args = parser.parse_args()
    import mlx_audio_lid  # noqa: F401  (before references.whisper imports mlx.core; this process only builds a folder)
    from references import whisper as ref

    from .common import machine_description

    whisper = ref.random_ctranslate2(Path(tempfile.mkdtemp()) / "base-random-ct2", ref.base_config())
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("MKL_THREADING_LAYER", None)
    torch_alone = json.loads(subprocess.run([sys.executable, "-c", TORCH_ALONE], capture_output=True, text=True,
                                            check=True, env=env).stdout)
    rows = []
    for name, extra in candidates(args.with_reference_blas):
        settings = json.dumps({"whisper": str(whisper), "mms": args.mms})
        done = subprocess.run([sys.executable, "-c", CHILD, settings], capture_output=True, text=True,
                              env=dict(env, **extra), cwd=ROOT)
        if done.returncode:
            sys.exit(f"{name}: the timing process failed:\n{done.stderr}")
        rows.append((name, json.loads(done.stdout.splitlines()[-1])))
        print(f"done: {name}", file=sys.stderr, flush=True)
    columns = [c for c in rows[0][1] if c != "active"]
    print(f"# BLAS under MLX's CPU build, float32, eager\n\n{machine_description().split('; BLAS')[0]}; "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| BLAS | library | " + " | ".join(columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    print("| PyTorch alone (its own MKL) | | | | | " + ("| " if args.mms else "") + f"{torch_alone:.0f} |")
    for name, out in rows:
        cells = [f"{out[c]:.0f}" for c in columns]
        print(f"| {name} | {out['active']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
