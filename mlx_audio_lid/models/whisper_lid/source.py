"""Whisper's published layouts -> (whisper_lid config, float32 weights under mlx-audio's names).

- CTranslate2 / faster-whisper: `model.bin` (spec WhisperSpec), `config.json` (`lang_ids`),
  `vocabulary.json` (or `.txt`); float32, float16 or int8 (ctranslate2_bin.py reads it);
- mlx-community / mlx-audio: `config.json` with mlx-audio's `n_mels`, `n_audio_state`, ... and
  `weights.safetensors`, `model.safetensors` or `weights.npz`, possibly quantized;
- transformers: `config.json` naming `WhisperForConditionalGeneration`, `*.safetensors`;
- openai-whisper: one `*.pt` checkpoint (`dims` + `model_state_dict`), read without torch by
  `mlx_audio_lid.torch_checkpoint`.

Every size (tiny ... large-v3, turbo; 80 or 128 mels): the dimensions come from the config or
the weights' shapes. Weights are read into float32 (float16 and int8 storage convert exactly), so
that a conversion has a float32 reference; `load(..., dtype="float16")` computes in half precision.
MLX is imported only inside the readers, so that importing the family stays light.
"""

from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from ...readers import Weights, read_json, read_safetensors, to_mlx
from . import ctranslate2_bin

MODEL_TYPE = "whisper_lid"  # what these readers write into the configs they return
ARCHITECTURE = "WhisperForConditionalGeneration"
MLX_WEIGHT_FILES = ("weights.safetensors", "model.safetensors", "weights.npz")
SOT = "<|startoftranscript|>"
LAYOUTS = (
    "a Whisper folder: CTranslate2/faster-whisper (model.bin, config.json, vocabulary.json), mlx-community "
    f"(config.json with n_mels..., {' or '.join(MLX_WEIGHT_FILES)}), transformers {ARCHITECTURE} (config.json, "
    "*.safetensors) or openai-whisper (one *.pt)"
)
HUB_PATTERNS = (
    "config.json", "model.bin", "vocabulary.json", "vocabulary.txt", "tokenizer.json", "preprocessor_config.json",
    "generation_config.json", "*.safetensors", "weights.npz",
)


def _json(path: Path) -> Optional[dict]:
    return read_json(path) if path.exists() else None


def _is_ctranslate2(folder: Path) -> bool:
    path = folder / "model.bin"
    if not path.exists():
        return False
    with open(path, "rb") as f:
        head = f.read(64)
    return b"WhisperSpec\0" in head  # the spec name follows the binary version


def layout(folder: Path) -> Optional[str]:
    """Which of the layouts the folder holds: "ctranslate2", "transformers", "mlx", "openai", or None."""
    config = _json(folder / "config.json")
    if _is_ctranslate2(folder):
        return "ctranslate2"
    if config is not None:
        if ARCHITECTURE in (config.get("architectures") or []):
            return "transformers"
        if config.get("model_type", "whisper") == "whisper" and "n_audio_state" in config:
            return "mlx"
        return None
    return "openai" if len(list(folder.glob("*.pt"))) == 1 else None


def recognise(folder: Path) -> bool:
    return layout(folder) is not None


def read(folder: Path) -> Tuple[dict, Weights]:
    """-> (whisper_lid config: mlx-audio's dimensions (+ the folder's language tokens), weights)."""
    readers = {"ctranslate2": _read_ctranslate2, "transformers": _read_transformers, "mlx": _read_mlx, "openai": _read_openai}
    kind = layout(folder)
    if kind is None:
        raise ValueError(f"{folder} holds no Whisper checkpoint; expected {LAYOUTS}")
    config, weights = readers[kind](folder)
    return dict(config, model_type=MODEL_TYPE), weights


def _languages(vocabulary: List[str], ids: List[int]) -> dict:
    """The folder's own language tokens (`<|en|>`, ...) -> config entries."""
    tokens = [vocabulary[i] for i in ids]
    if not all(t.startswith("<|") and t.endswith("|>") for t in tokens):
        raise ValueError(f"the language token ids name non-language tokens: {tokens[:5]}")
    return {"languages": [t[2:-2] for t in tokens], "language_tokens": list(ids), "sot_token": vocabulary.index(SOT)}


# -- CTranslate2 -------------------------------------------------------------------------------
def _ctranslate2_vocabulary(folder: Path) -> List[str]:
    if (folder / "vocabulary.json").exists():
        return _json(folder / "vocabulary.json")
    if (folder / "vocabulary.txt").exists():
        return (folder / "vocabulary.txt").read_text(encoding="utf-8").split("\n")
    raise FileNotFoundError(f"{folder} has model.bin but no vocabulary.json or vocabulary.txt")


def _read_ctranslate2(folder: Path) -> Tuple[dict, dict]:
    spec, _, variables, aliases = ctranslate2_bin.read_model_bin(folder / "model.bin")
    if spec != "WhisperSpec":
        raise ValueError(f"{folder / 'model.bin'} holds a CTranslate2 {spec}, not a Whisper model")
    config = ctranslate2_bin.whisper_dimensions(variables)
    weights = ctranslate2_bin.whisper_weights(ctranslate2_bin.dequantized(variables), aliases)
    del variables
    lang_ids = (_json(folder / "config.json") or {}).get("lang_ids")
    if lang_ids:
        config.update(_languages(_ctranslate2_vocabulary(folder), lang_ids))
    return config, to_mlx(weights)


# -- transformers and mlx-community ------------------------------------------------------------
def _mlx_audio_names(weights: dict) -> dict:
    """transformers' names -> mlx-audio's, by mlx-audio's own Whisper `sanitize`.

    That method reads nothing of its model but `dtype`, to which it casts every weight: float32.
    """
    import mlx.core as mx
    from mlx_audio.stt.models.whisper.whisper import Model as MlxAudioWhisper

    class Float32:
        dtype = mx.float32

    weights = MlxAudioWhisper.sanitize(Float32(), weights)
    projection = weights.pop("proj_out.weight", None)  # transformers' output layer, tied to the embedding
    if projection is not None and not mx.array_equal(projection, weights["decoder.token_embedding.weight"]).item():
        raise ValueError("proj_out.weight differs from the token embedding: Whisper's output layer is tied to it")
    return weights


def _read_transformers(folder: Path) -> Tuple[dict, dict]:
    from mlx_audio.stt.models.whisper.whisper import ModelDimensions

    weights = read_safetensors(folder)
    weights = _mlx_audio_names({k if k.startswith(("model.", "proj_out.")) else f"model.{k}": v for k, v in weights.items()})
    config = vars(ModelDimensions.from_dict(_json(folder / "config.json")))
    generation = _json(folder / "generation_config.json") or {}
    if generation.get("lang_to_id"):
        by_id = sorted(generation["lang_to_id"].items(), key=lambda item: item[1])
        config.update(languages=[t[2:-2] for t, _ in by_id], language_tokens=[i for _, i in by_id])
        config["sot_token"] = generation.get("decoder_start_token_id", config.get("sot_token"))
    return {k: v for k, v in config.items() if v is not None}, weights


def _read_mlx(folder: Path) -> Tuple[dict, dict]:
    import mlx.core as mx

    config = _json(folder / "config.json")
    files = [folder / name for name in MLX_WEIGHT_FILES if (folder / name).exists()]
    if not files:
        raise FileNotFoundError(f"{folder} has an mlx-audio Whisper config.json but none of {', '.join(MLX_WEIGHT_FILES)}")
    weights = dict(mx.load(str(files[0])))
    weights.pop("alignment_heads", None)  # mlx-examples' conversions saved it; it is not a weight
    quantization = config.pop("quantization", None)
    if quantization:  # dequantize to the float32 reference a conversion starts from
        for key in [k for k in weights if k.endswith(".scales")]:
            prefix = key[: -len(".scales")]
            weights[prefix + ".weight"] = mx.dequantize(
                weights[prefix + ".weight"], weights.pop(key), weights.pop(prefix + ".biases", None),
                group_size=quantization["group_size"], bits=quantization["bits"],
            )
    weights = _mlx_audio_names(weights)
    dimensions = {k: config[k] for k in config if k.startswith("n_")}
    return dimensions, weights


# -- openai-whisper ----------------------------------------------------------------------------
OPENAI_RENAMES = ((".mlp.0.", ".mlp1."), (".mlp.2.", ".mlp2."))


def _read_openai(folder: Path) -> Tuple[dict, dict]:
    from ...torch_checkpoint import load as load_torch_checkpoint  # torch-free pickle reader

    (path,) = folder.glob("*.pt")
    checkpoint = load_torch_checkpoint(path)
    if not isinstance(checkpoint, dict) or not {"dims", "model_state_dict"} <= checkpoint.keys():
        raise ValueError(f"{path} is not an openai-whisper checkpoint (no 'dims' and 'model_state_dict')")
    weights = {}
    for name, value in checkpoint["model_state_dict"].items():
        if name == "encoder.positional_embedding":
            continue  # sinusoids, which mlx-audio computes itself
        for old, new in OPENAI_RENAMES:
            name = name.replace(old, new)
        value = np.asarray(value, dtype=np.float32)
        if name.endswith(("conv1.weight", "conv2.weight")):
            value = value.transpose(0, 2, 1)  # PyTorch (out, in, kernel) -> MLX (out, kernel, in)
        weights[name] = value
    return dict(checkpoint["dims"]), to_mlx(weights)
