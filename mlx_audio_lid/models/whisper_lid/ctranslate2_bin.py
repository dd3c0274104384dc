"""CTranslate2's `model.bin` (the faster-whisper layout), read with numpy; no CTranslate2 needed.

The format, as `ctranslate2/specs/model_spec.py` writes it and `src/models/model.cc` reads it
(binary version 6; versions 3-5 read the same way, except that before 4 a variable gives its
item size instead of a type id):

    u32 binary version | str spec name | u32 spec revision | u32 variable count
    per variable: str name | u8 rank | u32 * rank dims | u8 type id | u32 byte count | bytes
    u32 alias count | per alias: str alias | str variable name

with `str` = u16 length (including a trailing NUL) + UTF-8 bytes + NUL, little endian, and type
ids 0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16. A quantized `*weight` comes with
a `*weight_scale` (int8: one scale per output row; int16: one for the tensor) and is
`weight / scale` in float, as CTranslate2's Dequantize computes it.
"""

import re
import struct
from pathlib import Path
from typing import BinaryIO, Dict, Tuple

import numpy as np

SUPPORTED_BINARY_VERSIONS = range(3, 7)
ITEM_SIZE_DTYPES = {4: np.float32, 2: np.int16, 1: np.int8}  # binary versions before 4
TYPE_IDS = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}
GELU = 3  # ctranslate2.specs.common_spec.Activation.GELU


def _unpack(f: BinaryIO, fmt: str):
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise ValueError(f"{getattr(f, 'name', 'model.bin')} is truncated at byte {f.tell()}")
    return struct.unpack(fmt, data)[0]


def _string(f: BinaryIO) -> str:
    length = _unpack(f, "<H")
    data = f.read(length)
    if len(data) != length or not data.endswith(b"\0"):
        raise ValueError(f"{getattr(f, 'name', 'model.bin')}: malformed string at byte {f.tell()}")
    return data[:-1].decode("utf-8")


def _array(buffer: bytes, dtype, shape) -> np.ndarray:
    if dtype == "bfloat16":  # numpy has none: the upper half of a float32's bits
        return (np.frombuffer(buffer, "<u2").astype(np.uint32) << 16).view(np.float32).reshape(shape)
    return np.frombuffer(buffer, np.dtype(dtype).newbyteorder("<")).reshape(shape)


def read_model_bin(path: Path) -> Tuple[str, int, Dict[str, np.ndarray], Dict[str, str]]:
    """-> (spec name, spec revision, {variable: array as stored}, {alias: variable})."""
    with open(path, "rb") as f:
        version = _unpack(f, "<I")
        if version not in SUPPORTED_BINARY_VERSIONS:
            raise ValueError(
                f"{path} is CTranslate2 binary version {version}; this reader knows versions "
                f"{SUPPORTED_BINARY_VERSIONS.start}-{SUPPORTED_BINARY_VERSIONS.stop - 1}"
            )
        spec, revision = _string(f), _unpack(f, "<I")
        variables: Dict[str, np.ndarray] = {}
        for _ in range(_unpack(f, "<I")):
            name = _string(f)
            shape = tuple(_unpack(f, "<I") for _ in range(_unpack(f, "<B")))
            if version >= 4:
                type_id, size = _unpack(f, "<B"), _unpack(f, "<I")
                if type_id not in TYPE_IDS:
                    raise ValueError(f"{path}: variable {name} has unknown type id {type_id}")
                dtype = TYPE_IDS[type_id]
            else:
                item = _unpack(f, "<B")
                dtype, size = ITEM_SIZE_DTYPES[item], _unpack(f, "<I") * item
            buffer = f.read(size)
            if len(buffer) != size:
                raise ValueError(f"{path} is truncated in variable {name}")
            variables[name] = _array(buffer, dtype, shape)
        aliases = {_string(f): _string(f) for _ in range(_unpack(f, "<I"))}
    return spec, revision, variables, aliases


def dequantized(variables: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Every float variable as float32, int8/int16 weights divided by their scales; scales dropped."""
    out = {}
    for name, value in variables.items():
        if name.endswith("_scale"):
            continue
        if value.dtype in (np.int8, np.int16) and value.ndim > 0:
            if name + "_zero" in variables:
                raise ValueError(f"{name} is AWQ-quantized (has {name}_zero), which is not supported")
            if name + "_scale" not in variables:
                raise ValueError(f"quantized variable {name} has no {name}_scale")
            scale = variables[name + "_scale"].astype(np.float32)
            scale = scale.reshape(scale.shape + (1,) * (value.ndim - scale.ndim))  # per output row
            value = value.astype(np.float32) / scale
        elif value.dtype.kind == "f":
            value = value.astype(np.float32)
        out[name] = value
    return out


# CTranslate2 scope -> mlx-audio Whisper module path (fused projections are split below).
RENAMES = [
    (r"^(en|de)coder/layer_(\d+)/", r"\1coder.blocks.\2."),
    (r"self_attention/linear_1/", "attn.out."),
    (r"self_attention/layer_norm/", "attn_ln."),
    (r"attention/linear_0/", "cross_attn.query."),
    (r"attention/linear_2/", "cross_attn.out."),
    (r"attention/layer_norm/", "cross_attn_ln."),
    (r"ffn/linear_0/", "mlp1."),
    (r"ffn/linear_1/", "mlp2."),
    (r"ffn/layer_norm/", "mlp_ln."),
    (r"^encoder/conv(\d)/", r"encoder.conv\1."),
    (r"^encoder/layer_norm/", "encoder.ln_post."),
    (r"^decoder/layer_norm/", "decoder.ln."),
    (r"^decoder/embeddings/weight$", "decoder.token_embedding.weight"),
    (r"^decoder/position_encodings/encodings$", "decoder.positional_embedding"),
    (r"gamma$", "weight"),
    (r"beta$", "bias"),
]
FUSED = {  # fused projection -> the parts it concatenates along the output rows
    "self_attention/linear_0/": ("attn.query.", "attn.key.", "attn.value."),
    "attention/linear_1/": ("cross_attn.key.", "cross_attn.value."),
}
DROPPED = ("encoder/position_encodings/encodings",)  # mlx-audio computes the same sinusoids itself


def _split(name: str, value: np.ndarray, weights: Dict[str, np.ndarray]) -> bool:
    """Split a fused q/k/v (or k/v) projection into mlx-audio's separate layers."""
    for fused, parts in FUSED.items():
        match = re.match(rf"^((?:en|de)coder)/layer_(\d+)/{fused}(weight|bias)$", name)
        if not match:
            continue
        side, layer, kind = match.groups()
        for part, piece in zip(parts, np.split(value, len(parts), axis=0)):
            if part.endswith("key.") and kind == "bias":
                if np.any(piece):  # Whisper's key projection has no bias; the converter fills zeros
                    raise ValueError(f"{name}: the key projection has a non-zero bias, which Whisper does not")
                continue
            weights[f"{side}.blocks.{layer}.{part}{kind}"] = piece
        return True
    return False


def whisper_weights(variables: Dict[str, np.ndarray], aliases: Dict[str, str]) -> Dict[str, np.ndarray]:
    """Dequantized CTranslate2 Whisper variables -> mlx-audio Whisper weights (MLX conv layout)."""
    projection = aliases.get("decoder/projection/weight")
    if projection != "decoder/embeddings/weight":
        stored = variables.get("decoder/projection/weight")
        if stored is None or not np.array_equal(stored, variables["decoder/embeddings/weight"]):
            raise ValueError("the output projection is not tied to the token embedding, as Whisper's always is")
    weights: Dict[str, np.ndarray] = {}
    for name, value in variables.items():
        if value.ndim == 0 or name in DROPPED or name == "decoder/projection/weight" or _split(name, value, weights):
            continue  # scalars (head counts, flags) go into the config
        target = name
        for pattern, replacement in RENAMES:
            target = re.sub(pattern, replacement, target)
        if "/" in target:
            raise ValueError(f"CTranslate2 variable {name} has no counterpart in Whisper")
        if target.endswith(("conv1.weight", "conv2.weight")):
            value = value.transpose(0, 2, 1)  # (out, in, kernel) -> MLX (out, kernel, in)
        weights[target] = value
    return weights


def whisper_dimensions(variables: Dict[str, np.ndarray]) -> dict:
    """mlx-audio's ModelDimensions from the variables' shapes and the stored head counts."""
    for flag, wanted in (("decoder/activation", GELU), ("decoder/pre_norm", 1)):
        if flag in variables and int(variables[flag]) != wanted:
            raise ValueError(f"{flag} is {int(variables[flag])}, Whisper's is {wanted}")

    def layers(side: str) -> int:
        return len({m.group(1) for m in (re.match(rf"^{side}/layer_(\d+)/", n) for n in variables) if m})

    conv1 = variables["encoder/conv1/weight"]  # (n_audio_state, n_mels, 3)
    embeddings = variables["decoder/embeddings/weight"]  # (n_vocab, n_text_state)
    return {
        "n_mels": conv1.shape[1],
        "n_audio_ctx": variables["encoder/position_encodings/encodings"].shape[0],
        "n_audio_state": conv1.shape[0],
        "n_audio_head": int(variables["encoder/num_heads"]),
        "n_audio_layer": layers("encoder"),
        "n_vocab": embeddings.shape[0],
        "n_text_ctx": variables["decoder/position_encodings/encodings"].shape[0],
        "n_text_state": embeddings.shape[1],
        "n_text_head": int(variables["decoder/num_heads"]),
        "n_text_layer": layers("decoder"),
    }
