"""An optimized BLAS under MLX's Linux CPU build, without the user setting LD_PRELOAD.

MLX's Linux wheel (`mlx-cpu`) links the reference netlib BLAS: single-threaded, ~5-8 GFLOP/s
on a large float32 matmul, which makes a full MMS-LID forward take minutes. `libmlx.so` leaves
`cblas_sgemm` and friends undefined and takes them from the first library in the process's
global symbol scope, so loading an optimized BLAS with RTLD_GLOBAL *before* `mlx.core` is
imported makes MLX use it (measured here: 7.6 -> ~100 GFLOP/s, 2 cores; same results within
float32 rounding). This must run before anything imports `mlx.core`; `mlx_audio_lid`
imports this module first.

Where it comes from, in order: the path in $MLX_AUDIO_LID_BLAS; Intel MKL from the `mkl`
wheel (a default dependency on Linux x86_64: ~220 MB download, ~930 MB installed with
intel-openmp and tbb), single-threaded unless MKL_THREADING_LAYER says otherwise; the system
OpenBLAS (Debian/Ubuntu `libopenblas0-pthread`).
MLX_AUDIO_LID_BLAS=off keeps MLX's own BLAS.
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
    found = sorted(glob.glob(os.path.join(sys.prefix, "lib", "libmkl_rt.so*")))
    found += [
        f"/usr/lib/{arch}-linux-gnu/openblas-pthread/libblas.so.3",
        f"/usr/lib/{arch}-linux-gnu/libopenblas.so.0",
    ]
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
    # MKL's OpenMP threads fight MLX's own worker thread over MLX's many small matmuls: a
    # full-size ECAPA forward on 10 s took 891 ms threaded, 436 ms sequential here (2 cores;
    # the system OpenBLAS: 425 ms). MKL_THREADING_LAYER set by the user wins.
    os.environ.setdefault("MKL_THREADING_LAYER", "SEQUENTIAL")
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
