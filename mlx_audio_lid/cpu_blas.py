"""An optimized BLAS under MLX's Linux CPU build, without the user setting LD_PRELOAD.

MLX's Linux wheel (`mlx-cpu`) links the reference netlib BLAS: single-threaded, ~5-8 GFLOP/s
on a large float32 matmul, which makes a full MMS-LID forward take minutes. `libmlx.so` leaves
`cblas_sgemm` and friends undefined and takes them from the first library in the process's
global symbol scope, so loading an optimized BLAS with RTLD_GLOBAL *before* `mlx.core` is
imported makes MLX use it (measured here: 7.6 -> 100-185 GFLOP/s, 2 cores; same results within
float32 rounding). This must run before anything imports `mlx.core`; `mlx_audio_lid`
imports this module first.

Where it comes from, in order: the path in $MLX_AUDIO_LID_BLAS; the system OpenBLAS, threaded
(Debian/Ubuntu `libopenblas0-pthread`); Intel MKL from the `mkl` wheel (a default dependency on
Linux x86_64: ~220 MB download, ~930 MB installed with intel-openmp and tbb), threaded as MKL
is by default. On the 2-core AMD EPYC here both threaded libraries make whole forward passes
1.4-1.6x faster than MKL on one thread (ECAPA 10 s 614 -> 394-434 ms, Whisper base 1425 ->
893-1009 ms); between the two the order changes from run to run, OpenBLAS's matmul is the
faster (175 against 131 GFLOP/s), and it needs no 930 MB wheel: so it comes first where the
system has it (`python -m benchmarks.blas_choice`, benchmarks/results/blas_choice_cpu.md).
MLX_AUDIO_LID_BLAS=off keeps MLX's own BLAS.

The library joins the process's global symbol scope, so a library loaded after it that calls
BLAS through the same names binds to it too: PyTorch imported after mlx_audio_lid runs its
matmuls on this BLAS (imported before, it keeps its own MKL). The benchmarks import the
reference first so that it runs as it does without this package.
"""

import ctypes
import glob
import os
import platform
import sys
import warnings
from typing import List, Optional

ENV = "MLX_AUDIO_LID_BLAS"
active: Optional[str] = None  # the library loaded, if any


def _candidates() -> List[str]:
    chosen = os.environ.get(ENV, "auto")
    if chosen not in ("auto", ""):
        return [chosen]
    arch = platform.machine()
    found = [f"/usr/lib/{arch}-linux-gnu/openblas-pthread/libblas.so.3"]
    found += sorted(glob.glob(os.path.join(sys.prefix, "lib", "libmkl_rt.so*")))
    found += [f"/usr/lib/{arch}-linux-gnu/libopenblas.so.0"]
    return [path for path in found if os.path.exists(path)]


def install() -> Optional[str]:
    """Load the first available optimized BLAS globally; return its path (None if none)."""
    global active
    if active or sys.platform != "linux" or os.environ.get(ENV) == "off":
        return active
    if "mlx.core" in sys.modules:
        if "blas" in os.environ.get("LD_PRELOAD", ""):
            return None  # the user interposed a BLAS by hand
        warnings.warn(
            "mlx.core was imported before mlx_audio_lid, so MLX keeps its slow reference BLAS on "
            "this Linux CPU; import mlx_audio_lid first (or set LD_PRELOAD to an optimized "
            f"libblas), or set {ENV}=off to silence this",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    # After a call, OpenBLAS's threads spin for ~2^28 cycles and OpenMP's (MKL's) for 200 ms before
    # they sleep. MLX's matmuls alternate with NumPy's kernels (cpu_math.py, NumPy's own
    # OpenBLAS), so each library's spinning threads took the cores from the other: 4 matmuls and
    # one attention, 38 + 21 ms apart, took 107 ms interleaved, 70 ms with these (2 cores).
    # NumPy reads the first when it is imported: after this, unless it was imported before.
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # 2^4 cycles: sleep at once
    os.environ.setdefault("KMP_BLOCKTIME", "0")
    for path in _candidates():
        try:
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        except OSError as error:
            if os.environ.get(ENV, "auto") not in ("auto", ""):
                raise OSError(f"{ENV}={path} could not be loaded: {error}") from error
            continue
        active = path
        return active
    return None
