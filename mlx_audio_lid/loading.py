"""Source folders -> model: converted MLX folders, and the checkpoints as their authors publish them.

A folder whose `config.json` names one of this package's model types is an MLX folder written
by `convert`; any other folder is read by the first family whose `recognise` accepts it
(`registry.FAMILIES`: a transformers MMS-LID checkpoint, a SpeechBrain folder, ...).
"""

from pathlib import Path
from typing import Optional, Tuple, Union

import mlx.core as mx
from mlx_audio.utils import apply_quantization

from . import readers, registry
from .models.base import LanguageIdModel
from .readers import Weights

DTYPES = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}


def resolve_folder(path_or_hf_repo: Union[str, Path], revision: Optional[str] = None) -> Path:
    """A local folder, or a Hub repo id downloaded to the local cache (every family's files)."""
    return readers.resolve_folder(path_or_hf_repo, revision, registry.hub_patterns())


def read_source(folder: Path) -> Tuple[dict, Weights]:
    """Recognise the folder's layout -> (config dict with our model_type, raw weights)."""
    config_file = folder / "config.json"
    if config_file.exists():
        config = readers.read_json(config_file)
        if config.get("model_type") in registry.model_types():
            return config, readers.read_safetensors(folder)
    for family in registry.FAMILIES:
        if family.recognise(folder):
            return family.read(folder)
    named = ""
    if config_file.exists():
        named = f" (its config.json names {config.get('architectures') or config.get('model_type')!r}, not supported)"
    layouts = "; ".join(f.layouts or f.model_type for f in registry.FAMILIES)
    raise ValueError(
        f"{folder} holds no supported model{named}. Supported: an MLX folder made by mlx_audio_lid.convert "
        f"(config.json with model_type {', '.join(registry.model_types())}); {layouts}"
    )


def build_model(config: dict, weights: Weights, strict: bool = True) -> LanguageIdModel:
    """Construct the model for `config` and load `weights` into it, refusing any gap."""
    package = registry.family(config["model_type"]).package
    model = package.Model(package.ModelConfig.from_dict(config))
    weights = model.sanitize(weights)
    apply_quantization(model, config, weights, getattr(model, "model_quant_predicate", None))
    model.load_weights(list(weights.items()), strict=strict)
    mx.eval(model.parameters())
    model.eval()
    return model


def load(
    path_or_hf_repo: Union[str, Path],
    *,
    revision: Optional[str] = None,
    strict: bool = True,
    dtype: Optional[str] = None,
) -> LanguageIdModel:
    """Load a language-ID model from a local folder or a Hub repo, in any supported layout.

    `strict=False` tolerates unexpected extra weights; missing or mis-shaped weights are
    always an error, so no parameter is ever left at its random initial value.
    `dtype`: None keeps the stored precision; "float32", "float16" or "bfloat16" casts;
    "auto" is float16 on a GPU (about twice as fast there, see README "Speed") and the stored
    precision on a CPU, where MLX's half-precision matmuls are slower than float32.
    """
    config, weights = read_source(resolve_folder(path_or_hf_repo, revision))
    model = build_model(config, weights, strict=strict)
    if dtype == "auto":
        dtype = "float16" if mx.default_device() == mx.gpu else None
    if dtype is not None:
        if dtype not in DTYPES:
            raise ValueError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)} or 'auto'")
        model.set_dtype(DTYPES[dtype])
    return model
