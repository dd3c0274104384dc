"""wav2vec2's positional convolution (grouped, kernel 128, 16 groups) as one batched matmul.

MLX's grouped convolution ran at ~24 TFLOP/s on an H100 (8.9 ms of a 60 ms forward at
16 x 10 s, README "Speed"), a tenth of its matmul rate. Here the kernel's taps are laid side
by side through a strided view of the zero-padded input, one copy makes them a
(groups, frames, kernel x group width) array, and one batched matmul against the conv's own
weight (read as (groups, kernel x group width, group width), no second copy) does the rest.
The copy is kernel-size times the input, so batches are cut into pieces of at most
TAPS_BUDGET elements of taps.
"""

import mlx.core as mx
import mlx.nn as nn

TAPS_BUDGET = 2**29  # elements of unfolded taps per piece (1 GiB in float16)


def positional_conv_as_matmul(conv: nn.Conv1d, x: mx.array) -> mx.array:
    """conv(x)[:, :T] for the positional conv (stride 1, padding kernel // 2), x (B, T, C)."""
    batch, frames, channels = x.shape
    out_channels, kernel, group_width = conv.weight.shape
    groups = channels // group_width
    per_piece = max(1, TAPS_BUDGET // (frames * kernel * channels))
    weight = conv.weight.reshape(groups, out_channels // groups, kernel * group_width).transpose(0, 2, 1)
    pieces = [_pieces_conv(x[start : start + per_piece], weight, kernel, groups) for start in range(0, batch, per_piece)]
    out = pieces[0] if len(pieces) == 1 else mx.concatenate(pieces, axis=0)
    return out + conv.bias if "bias" in conv else out


def _pieces_conv(x: mx.array, weight: mx.array, kernel: int, groups: int) -> mx.array:
    batch, frames, channels = x.shape
    group_width = channels // groups
    padded = mx.pad(x, [(0, 0), (kernel // 2, kernel // 2), (0, 0)])  # contiguous (B, T + 2 pad, C)
    span = padded.shape[1]
    # taps[b, t, k, g, i] = padded[b, t + k, g * width + i]
    taps = mx.as_strided(padded, (batch, frames, kernel, groups, group_width),
                         (span * channels, channels, channels, group_width, 1))
    taps = taps.transpose(3, 0, 1, 2, 4).reshape(groups, batch * frames, kernel * group_width)
    out = taps @ weight  # (groups, B * T, group out width)
    return out.reshape(groups, batch, frames, -1).transpose(1, 2, 0, 3).reshape(batch, frames, -1)
