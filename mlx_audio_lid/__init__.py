"""Spoken language identification on MLX, as an mlx-audio plugin.

Importing this package registers its model types with mlx-audio's own loaders, and on Linux
puts an optimized BLAS under MLX's CPU build (see cpu_blas.py): import it before mlx.core.
`load`, `identify`, `embed`, `convert` and `LanguagePrediction` are imported on first use, so
that the package (and the command line's --help) starts without importing MLX.
"""

import importlib

from . import cpu_blas

cpu_blas.install()  # must precede the first `import mlx.core` in the process

from .registry import register_with_mlx_audio  # noqa: E402

register_with_mlx_audio()

_EXPORTS = {"load": "loading", "identify": "identification", "embed": "identification",
            "convert": "converter", "LanguagePrediction": "prediction"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
