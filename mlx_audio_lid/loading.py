"""Source layouts -> model: converted MLX folders and the checkpoints as their authors publish them.

Layouts understood:
- an MLX folder written by `convert` (`config.json` with a `model_type` of this package);
- a transformers checkpoint (`config.json` naming `Wav2Vec2ForSequenceClassification`,
  `model.safetensors`, `preprocessor_config.json`), e.g. facebook/mms-lid-256;
- a SpeechBrain folder (`hyperparams.yaml`, `embedding_model.ckpt`, `classifier.ckpt`,
  `label_encoder.txt`), e.g. speechbrain/lang-id-voxlingua107-ecapa.
"""

import json
import logging
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import mlx.core as mx
from mlx_audio.utils import apply_quantization, get_model_path

from .models.base import LanguageIdModel
from .registry import MODEL_TYPES, model_module
from .models.whisper_lid import source as whisper_source
from .speechbrain_folder import read_speechbrain

logger = logging.getLogger(__name__)

# What to fetch from the Hub for any supported layout (never pytorch_model.bin: safetensors suffice),
# and the card, whose license a conversion inherits.
HUB_PATTERNS = ["*.json", "*.safetensors", "*.yaml", "*.ckpt", "*.txt", "README.md", "model.bin", "weights.npz"]
TRANSFORMERS_ARCHITECTURES = {"Wav2Vec2ForSequenceClassification": "wav2vec_cls"}

Weights = Dict[str, mx.array]
DTYPES = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}


def resolve_folder(path_or_hf_repo: Union[str, Path], revision: Optional[str] = None) -> Path:
    """A local folder, or a Hub repo id downloaded to the local cache."""
    folder = get_model_path(str(path_or_hf_repo), revision=revision, allow_patterns=HUB_PATTERNS)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    return folder


def _read_json(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _read_safetensors(folder: Path) -> Weights:
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no *.safetensors weights in {folder}")
    weights: Weights = {}
    for file in files:
        weights.update(mx.load(str(file)))
    return weights


def read_transformers(folder: Path, config: dict) -> Tuple[dict, Weights]:
    """A transformers Wav2Vec2ForSequenceClassification checkpoint -> (our config, its weights)."""
    weights = _read_safetensors(folder)
    config = dict(config, model_type="wav2vec_cls")
    preprocessor = folder / "preprocessor_config.json"
    if preprocessor.exists():
        settings = _read_json(preprocessor)
        config["do_normalize"] = settings.get("do_normalize", True)
        config["sampling_rate"] = settings.get("sampling_rate", 16000)
    if config.get("adapter_attn_dim") and not any(".adapter_layer." in k for k in weights):
        logger.warning(
            "config sets adapter_attn_dim=%s but the checkpoint has no adapter_layer weights: "
            "building the model without attention adapters", config["adapter_attn_dim"],
        )
        config["adapter_attn_dim"] = None
    return config, weights


def read_source(folder: Path) -> Tuple[dict, Weights]:
    """Recognise the folder's layout -> (config dict with our model_type, raw weights)."""
    if whisper_source.recognise(folder):
        return whisper_source.read(folder)
    config_file = folder / "config.json"
    if config_file.exists():
        config = _read_json(config_file)
        if config.get("model_type") in MODEL_TYPES:
            return config, _read_safetensors(folder)
        for architecture in config.get("architectures") or []:
            if architecture in TRANSFORMERS_ARCHITECTURES:
                return read_transformers(folder, config)
        named = config.get("architectures") or config.get("model_type")
        raise ValueError(
            f"{folder} holds a {named!r} model, which is not supported. Supported: MLX folders "
            f"with model_type {sorted(MODEL_TYPES)}, transformers checkpoints with architectures "
            f"{sorted(TRANSFORMERS_ARCHITECTURES)}"
        )
    if (folder / "hyperparams.yaml").exists():
        return read_speechbrain(folder)
    raise ValueError(
        f"{folder} holds no supported model: expected an MLX folder made by mlx_audio_lid.convert "
        "(config.json), a transformers checkpoint (config.json) or a SpeechBrain folder "
        "(hyperparams.yaml, embedding_model.ckpt, classifier.ckpt, label_encoder.txt)"
    )


def build_model(config: dict, weights: Weights, strict: bool = True) -> LanguageIdModel:
    """Construct the model for `config` and load `weights` into it, refusing any gap."""
    module = model_module(config["model_type"])
    model = module.Model(module.ModelConfig.from_dict(config))
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

