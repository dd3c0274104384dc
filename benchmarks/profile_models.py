"""Where the time goes: each stage of both networks timed on its own (evaluated between stages).

Full-size architectures with random weights, on MLX's default device (GPU where there is one).
The sum of the stages is close to, but not the same as, a whole forward: evaluating between
stages removes overlap and keeps every intermediate alive.

    python -m benchmarks.profile_models --model mms --batch 16 --seconds 10 --dtype float16
    python -m benchmarks.profile_models --model ecapa --batch 1 --seconds 10
    python -m benchmarks.profile_models --model whisper --batch 1 --dtype float16   # Whisper base, 30 s a clip
"""

import argparse
import time

import mlx_audio_lid  # noqa: F401  (first: an optimized BLAS under MLX on Linux CPUs)

import mlx.core as mx  # noqa: E402
import mlx.nn as nn  # noqa: E402

from mlx_audio_lid import cpu_math  # noqa: E402
from mlx_audio_lid.loading import DTYPES  # noqa: E402
from mlx_audio_lid.masking import length_mask, masked_mean  # noqa: E402
from mlx_audio_lid.models.ecapa_lid import model as ecapa_lid  # noqa: E402
from mlx_audio_lid.models.ecapa_lid.fbank import fbank_frame_lengths  # noqa: E402
from mlx_audio_lid.models.wav2vec_cls.positional import positional_conv_as_matmul  # noqa: E402
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


def whole_forward(config, x, lengths, dtype, repeats, eager_only=False):
    """Build the model at `dtype` and time its whole forward, eager and (unless eager_only) compiled."""
    model = random_model(config, dtype)
    rows = []
    stage(rows, "whole forward", lambda: model(x, lengths), repeats)
    if not eager_only:
        compiled = mx.compile(model.forward)
        stage(rows, "whole forward, compiled", lambda: compiled(x, lengths, False), repeats)
    return model, rows


def profile_mms(x, lengths, dtype, repeats, eager_only=False):
    model, rows = whole_forward(sizes.mms_lid(256), x, lengths, dtype, repeats, eager_only)
    hidden = stage(rows, "normalise + conv stack", lambda: model._conv_features(x.astype(DTYPES[dtype]), lengths), repeats)
    projection = model.wav2vec2.feature_projection
    hidden = stage(rows, "feature projection", lambda: projection.projection(projection.layer_norm(hidden)), repeats)
    mask = length_mask(model.frame_lengths(lengths), hidden.shape[1])
    conv = model.wav2vec2.encoder.pos_conv_embed.conv
    stage(rows, "positional conv (MLX grouped conv)", lambda: nn.gelu(conv(hidden)), repeats)
    stage(rows, "positional conv (batched matmul, the model's)", lambda: nn.gelu(positional_conv_as_matmul(conv, hidden)), repeats)
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


def profile_ecapa(x, lengths, dtype, repeats, eager_only=False):
    model, rows = whole_forward(sizes.voxlingua107_ecapa(), x, lengths, dtype, repeats, eager_only)
    feats = stage(rows, "fbank + mean norm", lambda: model.features(x, lengths).astype(DTYPES[dtype]), repeats)
    frames = fbank_frame_lengths(lengths)
    mask = length_mask(frames, feats.shape[1])
    padding = ecapa_lid.ReflectPadding(frames, feats.shape[1])
    average = ecapa_lid.frame_average(mask, feats.dtype)
    blocks = model.embedding_model.blocks
    out = stage(rows, "block 0 (TDNN k=5)", lambda: ecapa_lid.tdnn(blocks[0], feats, padding), repeats)
    for i, block in enumerate(blocks[1:], start=1):
        out = stage(rows, f"block {i} (SE-Res2Net)", lambda b=block, o=out: ecapa_lid.se_res2net(b, o, padding, average), repeats)
    sub = blocks[1].res2net_block.blocks[0]
    piece = out[..., : out.shape[-1] // 8]
    stage(rows, "  one Res2Net conv (x21)", lambda: ecapa_lid.tdnn(sub, piece, padding), repeats, 21)
    aggregated = mx.concatenate([out] * 3, axis=-1)
    out = stage(rows, "mfa (1x1, 3072)", lambda: ecapa_lid.tdnn(model.embedding_model.mfa, aggregated, padding), repeats)
    stage(rows, "attentive statistics", lambda: ecapa_lid.attentive_statistics(model.embedding_model.asp, out, mask), repeats)
    return rows


def profile_whisper(x, lengths, dtype, repeats, eager_only=False):
    """Whisper base: every clip is 30 s to the encoder, whatever its length. One clip on a GPU is
    bound by the ops it runs (hence the graph-building row: Python's part, nothing evaluated)."""
    from mlx_audio_lid.models.whisper_lid.features import encoder_input
    from mlx_audio_lid.models.whisper_lid.model import first_step

    model, rows = whole_forward(sizes.whisper_base(), x, lengths, dtype, repeats, eager_only)
    if mx.default_device() == mx.gpu:  # on an x86 CPU cpu_math evaluates as it goes: nothing to separate
        start = time.perf_counter()
        for _ in range(repeats):
            model(x, lengths)  # built, never evaluated
        rows.append(["  building its graph (Python, not evaluated)", f"{(time.perf_counter() - start) / repeats * 1e3:.2f}", "", ""])
    features = stage(rows, "log-mel (30 s)", lambda: encoder_input(x, lengths, model.config.n_mels).astype(DTYPES[dtype]), repeats)
    encoder = model.encoder
    hidden = stage(rows, "conv stem + positions", lambda: cpu_math.gelu(encoder.conv2(cpu_math.gelu(encoder.conv1(features))))
                   + encoder._positional_embedding, repeats)
    stage(rows, f"encoder block (x{len(encoder.blocks)})", lambda: encoder.blocks[0](hidden)[0], repeats, len(encoder.blocks))
    states = stage(rows, "whole encoder", lambda: model.encode_features(features), repeats)
    tokens = mx.full((x.shape[0], 1), model.config.sot_token, dtype=mx.int32)
    stage(rows, "decoder step: mlx-audio's decoder (folded cross-attention)",
          lambda: model.decoder(tokens, states)[0][:, 0], repeats)
    stage(rows, "decoder step: first_step (the model's)", lambda: first_step(model.decoder, tokens, states), repeats)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=["mms", "ecapa", "whisper"], default="mms")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--dtype", choices=list(DTYPES), default="float32")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--eager-only", action="store_true", help="skip the compiled whole forward")
    args = parser.parse_args()
    samples = int(args.seconds * 16000)
    x = 0.1 * mx.random.normal((args.batch, samples))
    lengths = mx.full((args.batch,), samples, dtype=mx.int32)
    profile = {"mms": profile_mms, "ecapa": profile_ecapa, "whisper": profile_whisper}[args.model]
    rows = profile(x, lengths, args.dtype, args.repeats, args.eager_only)
    print(f"{args.model}: {args.batch} x {args.seconds:g} s, {args.dtype}\nMachine: {machine_description()}\n")
    print(markdown_table(["stage", "ms per call", "ms in forward", "peak GB"], rows))


if __name__ == "__main__":
    main()
