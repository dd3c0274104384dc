"""Length masks: how a padded batch gives every clip the result it gets alone."""

import mlx.core as mx


def length_mask(lengths: mx.array, max_length: int) -> mx.array:
    """(B,) valid lengths -> (B, max_length) bool, True on the valid part."""
    return mx.arange(max_length)[None, :] < lengths[:, None]


def masked_mean(x: mx.array, mask: mx.array, axis: int = 1) -> mx.array:
    """Mean of x over `axis`, counting only positions where mask is True.

    x: (B, T, C) with mask (B, T), or any x whose leading axes match mask. Two passes: MLX's
    float32 sums over thousands of frames drift (1e-4 on a 60 s clip's fbank mean), so the
    mean of what the first estimate leaves over corrects it, as a compensated sum would.
    """
    weights = mask.astype(x.dtype)
    while weights.ndim < x.ndim:
        weights = weights[..., None]
    count = weights.sum(axis=axis)
    first = (x * weights).sum(axis=axis) / count
    residual = ((x - mx.expand_dims(first, axis)) * weights).sum(axis=axis) / count
    return first + residual


def conv_output_lengths(lengths: mx.array, kernel: int, stride: int, padding: int = 0, dilation: int = 1) -> mx.array:
    """Frames a convolution produces from `lengths` input frames (PyTorch's formula)."""
    return (lengths + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
