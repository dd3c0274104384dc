"""The model families this package knows, and the hook that teaches mlx-audio to load them.

A family is one folder `models/<model_type>/` whose `FAMILY` record is listed here; that line is
all a new family adds outside its folder (README "Adding a model family").

mlx-audio's loaders (`mlx_audio.lid.load`, `mlx_audio.utils.load_model`) resolve a folder's
`model_type` through `mlx_audio.lid.utils.MODEL_REMAPPING` to the module
`mlx_audio.lid.models.<model_type>`, which they import. Registering therefore means two
entries: the family package under that name in `sys.modules`, and the type in the table.
Nothing of mlx-audio's own is replaced: existing names are left alone.
"""

import importlib.abc
import importlib.machinery
import sys
from typing import List, Tuple

from .models import ecapa_lid, wav2vec_cls, whisper_lid
from .models.family import Family

FAMILIES: List[Family] = [wav2vec_cls.FAMILY, ecapa_lid.FAMILY, whisper_lid.FAMILY]

MLX_AUDIO_TABLE = "mlx_audio.lid.utils"  # the module that holds MODEL_REMAPPING


def family(model_type: str) -> Family:
    for candidate in FAMILIES:
        if candidate.model_type == model_type:
            return candidate
    raise ValueError(f"model_type {model_type!r} is not one of this package's: {', '.join(model_types())}")


def family_of(model) -> Family:
    """The family of a loaded model, by its config's model_type."""
    return family(getattr(getattr(model, "config", None), "model_type", None))


def model_types() -> List[str]:
    return [f.model_type for f in FAMILIES]


def hub_patterns() -> Tuple[str, ...]:
    """Every family's source files, a converted folder's, and the card a conversion inherits its license from."""
    patterns = ["config.json", "*.safetensors", "README.md"]
    for f in FAMILIES:
        patterns += [p for p in f.hub_patterns if p not in patterns]
    return tuple(patterns)


def register_with_mlx_audio() -> None:
    """Make mlx-audio's own loaders load this package's model types. Idempotent.

    The table entries are added when mlx-audio's LID loader module is imported (at once if it
    already is): importing it here would import MLX and mlx-audio with `import mlx_audio_lid`,
    which the CLI must not wait for before it parses its arguments.
    """
    for f in FAMILIES:
        alias = f"mlx_audio.lid.models.{f.model_type}"
        if sys.modules.setdefault(alias, f.package) is not f.package:
            raise RuntimeError(f"{alias} is already taken by another module")
    if MLX_AUDIO_TABLE in sys.modules:
        _add_types(sys.modules[MLX_AUDIO_TABLE])
    elif not any(isinstance(finder, _AddTypesOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AddTypesOnImport())


def _add_types(table_module) -> None:
    for model_type in model_types():
        table_module.MODEL_REMAPPING.setdefault(model_type, model_type)


class _AddTypesOnImport(importlib.abc.MetaPathFinder):
    """Finds `mlx_audio.lid.utils` as Python would, and adds our types once it has run."""

    def find_spec(self, name, path=None, target=None):
        if name != MLX_AUDIO_TABLE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module  # this file's own loader object

        def exec_module(module):
            execute(module)
            _add_types(module)

        spec.loader.exec_module = exec_module
        return spec
