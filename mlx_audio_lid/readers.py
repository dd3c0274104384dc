"""Readers every family shares: JSON, safetensors, and Hub repo ids resolved to local folders.

MLX is imported inside the functions that make arrays, so that importing a family (which the
CLI does before it parses its arguments) stays free of it.
"""

import json
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Union

Weights = Dict[str, Any]  # checkpoint name -> mx.array


def read_json(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_safetensors(folder: Path) -> Weights:
    """Every *.safetensors file in the folder, as one name -> mx.array mapping."""
    import mlx.core as mx

    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no *.safetensors weights in {folder}")
    weights: Weights = {}
    for file in files:
        weights.update(mx.load(str(file)))
    return weights


def to_mlx(arrays: Dict[str, Any]) -> Weights:
    """name -> numpy array, as name -> mx.array."""
    import mlx.core as mx

    return {name: mx.array(value) for name, value in arrays.items()}


def resolve_folder(path_or_hf_repo: Union[str, Path], revision: Optional[str] = None,
                   allow_patterns: Optional[Iterable[str]] = None) -> Path:
    """A local folder, or a Hub repo id downloaded to the local cache (only `allow_patterns`)."""
    from mlx_audio.utils import get_model_path

    folder = get_model_path(str(path_or_hf_repo), revision=revision,
                            allow_patterns=list(allow_patterns) if allow_patterns else None)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    return folder
