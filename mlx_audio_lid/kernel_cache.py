"""A persistent, per-user folder for the kernels MLX's CUDA backend compiles at run time.

MLX compiles its CUDA kernels with NVRTC on first use and caches the PTX on disk, by default
in /tmp/mlx/<version>/ptx: lost on reboot, and unwritable when another user made it first.
A compiled forward pass (`mx.compile`) needs hundreds of fused kernels (79-142 s on a cold
cache, README "Speed"), so where the cache lives decides whether that cost is paid once per
machine or once per boot. MLX reads the variable once, at its first compile, so this runs
when the package is imported (before mlx.core is); a value the user set is kept.
"""

import os
from importlib import metadata
from pathlib import Path

VARIABLE = "MLX_PTX_CACHE_DIR"


def default_folder() -> Path:
    """~/.cache/mlx-audio-lid/ptx/<mlx version> (XDG_CACHE_HOME respected).

    Per MLX version, as MLX's own default is: a kernel's cache key is its name, and another
    MLX release may compile different code under the same name.
    """
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    try:
        version = metadata.version("mlx")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return base / "mlx-audio-lid" / "ptx" / version


def install() -> None:
    os.environ.setdefault(VARIABLE, str(default_folder()))
