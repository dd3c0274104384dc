"""Which layers a conversion quantizes: MLX's affine quantization of the Linear layers.

MLX quantizes `nn.Linear` (and `nn.Embedding`, which these models do not have); it has no
quantized convolution. So a quantized folder keeps in float: every convolution (MMS-LID's
feature extractor and positional conv, ECAPA's whole TDNN stack), every LayerNorm and
BatchNorm, the cosine classifier's class weights, and any Linear layer whose input width is
not a multiple of the group size (MLX quantizes each row in groups along the input).

That last rule is also the one mlx-audio's `apply_quantization` applies when it loads a
folder with `quantization: {group_size, bits}` in config.json (a Linear layer whose width
divides and whose `.scales` are in the weights), so `mlx_audio_lid.load` and
`mlx_audio.lid.load` rebuild exactly the modules that were saved.
"""

from collections import Counter
from typing import Callable, Dict, List, Optional, Tuple

import mlx.core as mx
import mlx.nn as nn

GROUP_SIZES = (32, 64, 128)  # what mx.quantize supports
PREFERRED_GROUP_SIZES = (64, 32)  # 64 is MLX's default; 32 where some layer's width needs it
BITS = (4, 8)
MODE = "affine"


def linear_layers(model: nn.Module) -> List[Tuple[str, nn.Linear]]:
    return [(path, module) for path, module in model.named_modules() if isinstance(module, nn.Linear)]


def predicate(group_size: int) -> Callable[[str, nn.Module], bool]:
    """The layers quantized at `group_size`: Linear layers whose input width it divides."""
    return lambda path, module: isinstance(module, nn.Linear) and module.weight.shape[-1] % group_size == 0


def choose_group_size(model: nn.Module) -> int:
    """MLX's default 64, or 32 where some Linear layer's width is a multiple of 32 but not of 64.

    Layers whose width no supported group size divides are kept in float either way.
    """
    widths = [module.weight.shape[-1] for _, module in linear_layers(model)]
    quantizable = [w for w in widths if w % min(GROUP_SIZES) == 0]
    if not quantizable:
        raise ValueError(
            f"this model has no Linear layer that MLX can quantize (input widths {sorted(set(widths))}, "
            f"group sizes {GROUP_SIZES}); MLX has no quantized convolution. Convert it with --dtype only"
        )
    return next(size for size in PREFERRED_GROUP_SIZES if all(w % size == 0 for w in quantizable))


def parameter_split(model: nn.Module, group_size: int) -> Dict[str, int]:
    """Parameters that quantizing at `group_size` turns to integers, and those kept in float, by kind.

    Call on the float model, before quantizing: {"Linear, quantized": n, "Conv1d": n, ...}.
    """
    quantized = predicate(group_size)
    counts: Counter = Counter()
    for path, module in model.named_modules():
        own = sum(value.size for value in module.values() if isinstance(value, mx.array))
        if quantized(path, module):
            counts["Linear, quantized"] += own
        elif isinstance(module, nn.Linear):
            counts[f"Linear, width not a multiple of {group_size}"] += own
        elif own:
            counts[type(module).__name__] += own
    return dict(counts.most_common())


def quantize(model: nn.Module, bits: int, group_size: Optional[int] = None) -> dict:
    """Quantize `model` in place; return config.json's `quantization` entry."""
    if bits not in BITS:
        raise ValueError(f"q_bits must be one of {BITS}, got {bits}")
    if group_size is None:
        group_size = choose_group_size(model)
    elif group_size not in GROUP_SIZES:
        raise ValueError(f"q_group_size must be one of {GROUP_SIZES}, got {group_size}")
    chosen = predicate(group_size)
    if not any(chosen(path, module) for path, module in linear_layers(model)):
        raise ValueError(f"no Linear layer of this model has an input width divisible by {group_size}")
    nn.quantize(model, group_size=group_size, bits=bits, mode=MODE, class_predicate=chosen)
    return {"group_size": group_size, "bits": bits, "mode": MODE}
