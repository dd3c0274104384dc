"""Spoken language identification on MLX, as an mlx-audio plugin.

Importing this package registers its model types with mlx-audio's own loaders.
"""

from .identify import LanguagePrediction, embed, identify
from .loading import convert, load
from .registry import register_with_mlx_audio

register_with_mlx_audio()

__all__ = ["load", "convert", "identify", "embed", "LanguagePrediction"]
