"""Where the time goes: each stage of both networks timed on its own (evaluated between stages).

Full-size architectures with random weights, on MLX's default device (GPU where there is one).
The sum of the stages is close to, but not the same as, a whole forward: evaluating between
stages removes overlap and keeps every intermediate alive.

    python -m benchmarks.profile_models --model mms --batch 16 --seconds 10 --dtype float16
    python -m benchmarks.profile_models --model ecapa --batch 1 --seconds 10
"""

import argparse
import time

import mlx_audio_lid  # noqa: F401  (first: an optimized BLAS under MLX on Linux CPUs)

import mlx.core as mx  # noqa: E402
import mlx.nn as nn  # noqa: E402

from mlx_audio_lid.loading import DTYPES  # noqa: E402
from mlx_audio_lid.masking import length_mask, masked_mean  # noqa: E402
from mlx_audio_lid.models.ecapa_lid import model as ecapa_lid  # noqa: E402
from mlx_audio_lid.models.ecapa_lid.fbank import fbank_frame_lengths  # noqa: E402
from references import sizes  # noqa: E402

from .common import machine_description, markdown_table, random_model  # noqa: E402


def stage(rows, name, fn, repeats, count=1):
    """Time fn (returns arrays), `count` identical calls per step (e.g. one per layer)."""
    out = fn()
    mx.eval(out)
    mx.reset_peak_memory()
    start = time.perf_counter()
    for _ in range(repeats):
        mx.eval(fn())
    seconds = (time.perf_counter() - start) / repeats
    rows.append([name, f"{seconds * 1e3:.2f}", f"{seconds * count * 1e3:.2f}", f"{mx.get_peak_memory() / 1e9:.2f}"])
    return out


def whole_forward(config, x, lengths, dtype, repeats):
    """Build the model at `dtype` and time its whole forward, eager and compiled."""
    model = random_model(config, dtype)
    compiled = mx.compile(model.forward)
    rows = []
    stage(rows, "whole forward", lambda: model(x, lengths), repeats)
    stage(rows, "whole forward, compiled", lambda: compiled(x, lengths, False), repeats)
    return model, rows


def profile_mms(x, lengths, dtype, repeats):
    model, rows = whole_forward(sizes.mms_lid(256), x, lengths, dtype, repeats)
    hidden = stage(rows, "normalise + conv stack", lambda: model._conv_features(x.astype(DTYPES[dtype]), lengths), repeats)
    projection = model.wav2vec2.feature_projection
    hidden = stage(rows, "feature projection", lambda: projection.projection(projection.layer_norm(hidden)), repeats)
    mask = length_mask(model.frame_lengths(lengths), hidden.shape[1])
    conv = model.wav2vec2.encoder.pos_conv_embed.conv
    stage(rows, "positional conv", lambda: nn.gelu(conv(hidden)), repeats)
    layer = model.wav2vec2.encoder.layers[0]
    count = len(model.wav2vec2.encoder.layers)
    attention_mask = mx.where(mask, 0.0, -mx.inf).astype(DTYPES[dtype])[:, None, None, :]  # as the model builds it
    stage(rows, "encoder layer (x48)", lambda: layer(hidden, attention_mask=attention_mask)[0], repeats, count)
    normed = layer.layer_norm(hidden)
    stage(rows, "  attention block (x48)", lambda: layer.attention(normed, attention_mask=attention_mask)[0], repeats, count)
    stage(rows, "  attention block, no mask (x48)", lambda: layer.attention(normed)[0], repeats, count)
    stage(rows, "  feed-forward block (x48)", lambda: layer.feed_forward(layer.final_layer_norm(hidden)), repeats, count)
    stage(rows, "  adapter (x48)", lambda: layer.adapter_layer(hidden), repeats, count)
    stage(rows, "head", lambda: model.classify(masked_mean(model.projector(hidden), mask)), repeats)
    return rows


def profile_ecapa(x, lengths, dtype, repeats):
    model, rows = whole_forward(sizes.voxlingua107_ecapa(), x, lengths, dtype, repeats)
    feats = stage(rows, "fbank + mean norm", lambda: model.features(x, lengths).astype(DTYPES[dtype]), repeats)
    frames = fbank_frame_lengths(lengths)
    mask = length_mask(frames, feats.shape[1])
    blocks = model.embedding_model.blocks
    out = stage(rows, "block 0 (TDNN k=5)", lambda: ecapa_lid.tdnn(blocks[0], feats, frames), repeats)
    for i, block in enumerate(blocks[1:], start=1):
        out = stage(rows, f"block {i} (SE-Res2Net)", lambda b=block, o=out: ecapa_lid.se_res2net(b, o, frames, mask), repeats)
    sub = blocks[1].res2net_block.blocks[0]
    piece = out[..., : out.shape[-1] // 8]
    stage(rows, "  one Res2Net conv (x21)", lambda: ecapa_lid.tdnn(sub, piece, frames), repeats, 21)
    aggregated = mx.concatenate([out] * 3, axis=-1)
    out = stage(rows, "mfa (1x1, 3072)", lambda: ecapa_lid.tdnn(model.embedding_model.mfa, aggregated, frames), repeats)
    stage(rows, "attentive statistics", lambda: ecapa_lid.attentive_statistics(model.embedding_model.asp, out, mask), repeats)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=["mms", "ecapa"], default="mms")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--dtype", choices=list(DTYPES), default="float32")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    samples = int(args.seconds * 16000)
    x = 0.1 * mx.random.normal((args.batch, samples))
    lengths = mx.full((args.batch,), samples, dtype=mx.int32)
    profile = profile_mms if args.model == "mms" else profile_ecapa
    rows = profile(x, lengths, args.dtype, args.repeats)
    print(f"{args.model}: {args.batch} x {args.seconds:g} s, {args.dtype}\nMachine: {machine_description()}\n")
    print(markdown_table(["stage", "ms per call", "ms in forward", "peak GB"], rows))


if __name__ == "__main__":
    main()
