"""The wav2vec2 encoder layer with one query-key-value matmul instead of three.

mlx-audio's `Wav2Vec2Attention` runs three projections and scales the queries in a kernel of
its own; on a GPU a 10 s clip is bound by such small launches (~700 per forward, README
"Speed"). `fuse_qkv` lays the three weights side by side in one array, once, and points the
three `nn.Linear` layers at row slices of it (views: no second copy of the weights, and the
saved folder keeps its three keys); the layer then projects with one `addmm` and leaves the
query scale to the fused attention kernel.
"""

from typing import Optional

import mlx.core as mx
import mlx.nn as nn

from ... import cpu_math


def fuse_qkv(attention: nn.Module) -> None:
    """Store (weight, bias) of q, k, v stacked, and make the three layers views of them."""
    layers = (attention.q_proj, attention.k_proj, attention.v_proj)
    if not all(type(layer) is nn.Linear and "bias" in layer for layer in layers):
        return  # quantized (or bias-free) projections keep mlx-audio's own path
    weight = mx.concatenate([layer.weight for layer in layers], axis=0)
    bias = mx.concatenate([layer.bias for layer in layers], axis=0)
    mx.eval(weight, bias)
    width = attention.embed_dim
    for index, layer in enumerate(layers):
        layer.weight = weight[index * width : (index + 1) * width]
        layer.bias = bias[index * width : (index + 1) * width]
    mx.eval([layer.parameters() for layer in layers])
    sources = tuple(a for layer in layers for a in (layer.weight, layer.bias))
    object.__setattr__(attention, "_fused_qkv", (sources, weight, bias))


def _fused(attention: nn.Module):
    """(weight, bias) where fuse_qkv ran on the current parameters, else None."""
    fused = getattr(attention, "_fused_qkv", None)
    if fused is None:
        return None
    current = tuple(a for layer in (attention.q_proj, attention.k_proj, attention.v_proj) for a in (layer.weight, layer.bias))
    return fused[1:] if all(a is b for a, b in zip(fused[0], current)) else None


def self_attention(attention: nn.Module, hidden: mx.array, mask: Optional[mx.array]) -> mx.array:
    """mlx-audio's Wav2Vec2Attention (self-attention, no cache) on the fused projection."""
    fused = _fused(attention)
    if fused is None:
        return attention(hidden, attention_mask=mask)[0]
    batch, frames, width = hidden.shape
    heads = attention.num_heads
    qkv = mx.addmm(fused[1], hidden, fused[0].T).reshape(batch, frames, 3, heads, width // heads)
    q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
    out = cpu_math.attention(q, k, v, attention.scaling, mask)  # MLX's fused kernel, NumPy on an x86 CPU
    return attention.out_proj(out.transpose(0, 2, 1, 3).reshape(batch, frames, width))


def encoder_layer(layer: nn.Module, hidden: mx.array, mask: Optional[mx.array], stable_layer_norm: bool) -> mx.array:
    """One of mlx-audio's wav2vec2 encoder layers (stable layer norm or not), fused attention."""
    if not stable_layer_norm:
        hidden = layer.layer_norm(hidden + self_attention(layer.attention, hidden, mask))
        return layer.final_layer_norm(hidden + layer.feed_forward(hidden))
    hidden = hidden + self_attention(layer.attention, layer.layer_norm(hidden), mask)
    hidden = hidden + layer.feed_forward(layer.final_layer_norm(hidden))
    if layer.adapter_layer is not None:
        hidden = hidden + layer.adapter_layer(hidden)
    return hidden
