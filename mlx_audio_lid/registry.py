"""The model types this package adds, and the hook that teaches mlx-audio to load them.

mlx-audio's loaders (`mlx_audio.lid.load`, `mlx_audio.utils.load_model`) resolve a folder's
`model_type` to the module `mlx_audio.lid.models.<model_type>` through `importlib` and to the
"lid" category through `mlx_audio.lid.utils.MODEL_REMAPPING`. Registering therefore means two
entries: our module under that name in `sys.modules`, and the type in the remapping table.
Nothing of mlx-audio's own is replaced: existing names are left alone.
"""

import importlib
import sys
from types import ModuleType
from typing import Dict

# model_type (as written in a converted folder's config.json) -> module with ModelConfig, Model
MODEL_TYPES: Dict[str, str] = {
    "wav2vec_cls": "mlx_audio_lid.models.wav2vec_cls",
    "ecapa_lid": "mlx_audio_lid.models.ecapa_lid",
    "whisper_lid": "mlx_audio_lid.models.whisper_lid",
}


def model_module(model_type: str) -> ModuleType:
    if model_type not in MODEL_TYPES:
        raise ValueError(
            f"model_type {model_type!r} is not one of this package's: {', '.join(sorted(MODEL_TYPES))}"
        )
    return importlib.import_module(MODEL_TYPES[model_type])


def register_with_mlx_audio() -> None:
    """Make mlx-audio's own loaders load this package's model types. Idempotent."""
    from mlx_audio.lid import utils as lid_utils

    for model_type in MODEL_TYPES:
        alias = f"mlx_audio.lid.models.{model_type}"
        if alias in sys.modules and sys.modules[alias] is not model_module(model_type):
            raise RuntimeError(f"{alias} is already taken by another module")
        sys.modules[alias] = model_module(model_type)
        lid_utils.MODEL_REMAPPING.setdefault(model_type, model_type)
