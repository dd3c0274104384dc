"""Spoken language identification on MLX, as an mlx-audio plugin.

Importing this package registers its model types with mlx-audio's own loaders, and on Linux
puts an optimized BLAS under MLX's CPU build (see cpu_blas.py): import it before mlx.core.
"""

from . import cpu_blas

cpu_blas.install()  # must precede the first `import mlx.core` in the process

from .convert import convert
from .identify import LanguagePrediction, embed, identify
from .loading import load
from .registry import register_with_mlx_audio

register_with_mlx_audio()

__all__ = ["load", "convert", "identify", "embed", "LanguagePrediction"]
