"""`ecapa_lid`: SpeechBrain's ECAPA-TDNN language ID (VoxLingua107, CommonLanguage) on MLX.

The conv, SE and pooling modules are mlx-audio's ECAPA pieces; this file runs them with length
masks: reflect padding at each clip's own end, masked SE means, masked attentive statistics,
so a padded batch gives each clip exactly what it gets alone (SpeechBrain's own convs see the
padding of a batch). Module names follow SpeechBrain's checkpoints (`embedding_model`,
`classifier`, `blocks`, `mfa`, `asp`, `asp_bn`, `fc`, `DNN.block_0`, `out.w`).
"""

import dataclasses
from dataclasses import dataclass
from functools import partial
from typing import List, Optional

import mlx.core as mx
import mlx.nn as nn
from mlx_audio.codec.models.ecapa_tdnn.ecapa_tdnn import AttentiveStatisticsPooling, SERes2NetBlock, TDNNBlock

from ... import cpu_math
from ...masking import length_mask, masked_mean
from ..base import SINGLE_PASS_BYTES, LanguageIdModel, check_config
from .fbank import fbank_frame_lengths, speechbrain_fbank
from .source import MODEL_TYPE

CLASSIFIERS = ("xvector", "cosine")  # Xvector.Classifier (log-softmax), ECAPA_TDNN.Classifier (cosine)
STD_FLOOR = 1e-12  # SpeechBrain's AttentiveStatisticsPooling eps, a clamp on the variance
LEAKY_SLOPE = 0.01  # torch.nn.LeakyReLU default
# Size limits, 8-16x VoxLingua107's ECAPA (channels 1024-3072, 60 mels): anything above is a damaged config.
SIZE_LIMITS = {
    "n_mels": 1024, "channels": 32768, "kernel_sizes": 1024, "dilations": 1024, "attention_channels": 16384,
    "lin_neurons": 16384, "res2net_scale": 64, "se_channels": 16384, "classifier_lin_neurons": 16384,
}


@dataclass
class ModelConfig:
    n_mels: int
    channels: List[int]  # [block0, SE-Res2Net blocks..., mfa], e.g. [1024, 1024, 1024, 1024, 3072]
    kernel_sizes: List[int]
    dilations: List[int]
    attention_channels: int
    lin_neurons: int  # embedding size
    classifier: str  # one of CLASSIFIERS
    labels: List[str]  # the model's label per output, e.g. "en" (VoxLingua107) or "Arabic" (CommonLanguage)
    label_names: Optional[List[str]] = None  # English names where the label encoder gives them
    res2net_scale: int = 8
    se_channels: int = 128
    global_context: bool = True
    classifier_lin_neurons: int = 512  # hidden width of the Xvector classifier's one DNN block
    cosine_scale: float = 30.0  # softmax(scale * cos) are the CommonLanguage probabilities
    sample_rate: int = 16000
    model_type: str = MODEL_TYPE

    @classmethod
    def from_dict(cls, params: dict) -> "ModelConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING]
        check_config(MODEL_TYPE, params, required, SIZE_LIMITS)
        config = cls(**{k: v for k, v in params.items() if k in names})
        if config.classifier not in CLASSIFIERS:
            raise ValueError(f"classifier {config.classifier!r} is not one of {CLASSIFIERS}")
        inner = config.channels[:-1]
        if len(config.channels) < 3 or len(set(inner)) != 1:
            raise ValueError(f"channels {config.channels}: the TDNN and SE-Res2Net blocks must share one width")
        if not len(config.channels) == len(config.kernel_sizes) == len(config.dilations):
            raise ValueError("channels, kernel_sizes and dilations must have one entry per block")
        return config


def reflect_sources(lengths: mx.array, time: int, pad: int) -> mx.array:
    """(B, T + 2 pad, 1) frame indices that reflect each clip at its own start and end.

    Positions past a clip's end mirror its last frames, as a clip alone gets them; frames
    further out are don't-care and are clamped into range.
    """
    position = mx.arange(-pad, time + pad)[None, :]  # (1, T + 2 pad)
    last = (lengths - 1)[:, None]
    source = mx.where(position < 0, -position, mx.where(position > last, 2 * last - position, position))
    return mx.clip(source, 0, time - 1)[:, :, None]


class ReflectPadding:
    """SpeechBrain's 'same' reflect padding per clip, for every conv of one forward pass.

    All of ECAPA's convs see the same frames and lengths, so each padding width's gather
    indices are built once per forward (3 widths) instead of once per conv (29 convs).
    """

    def __init__(self, lengths: mx.array, time: int):
        self.lengths, self.time, self._sources = lengths, time, {}

    def __call__(self, x: mx.array, pad: int) -> mx.array:
        if pad not in self._sources:
            self._sources[pad] = reflect_sources(self.lengths, self.time, pad)
        return mx.take_along_axis(x, self._sources[pad], axis=1)


def reflect_pad(x: mx.array, lengths: mx.array, pad: int) -> mx.array:
    """(B, T, C) -> (B, T + 2 pad, C), reflecting each clip at its own start and end."""
    return ReflectPadding(lengths, x.shape[1])(x, pad)


def unfolded_conv(x: mx.array, weight: mx.array, dilation: int) -> mx.array:
    """A stride-1, unpadded, bias-free Conv1d as one matmul over its k taps laid side by side.

    MLX's CPU convolution is slow for dilated kernels (ECAPA's Res2Net convs: k=3, dilation
    2-4), ~4x slower than this on a 128-channel sub-block; the GPU's is not (see
    benchmarks/bench_ecapa.py), so the choice is made per device.
    """
    kernel = weight.shape[1]
    frames = x.shape[1] - dilation * (kernel - 1)
    taps = x if kernel == 1 else mx.concatenate([x[:, j * dilation : j * dilation + frames] for j in range(kernel)], -1)
    return taps @ weight.reshape(weight.shape[0], -1).T  # weight (out, k, in): tap-major


@partial(mx.compile, shapeless=True)
def _bias_relu_affine(y: mx.array, bias: mx.array, scale: mx.array, shift: mx.array) -> mx.array:
    # One fused kernel on a GPU for what is otherwise bias add, ReLU and five BatchNorm ops.
    # scale and shift stay float32 (in bfloat16, b - mean * scale loses the digits the
    # unfolded BatchNorm keeps: a tiny model's top-1 moved); one rounding to y's dtype at the end.
    return (mx.maximum(y + bias, 0) * scale + shift).astype(y.dtype)


def fold_batch_norm(block: TDNNBlock) -> None:
    """Store the eval-mode BatchNorm of a TDNN block as a per-channel scale and shift.

    BatchNorm follows the ReLU, so it cannot go into the conv's weights; as `scale * x + shift`
    (computed once, kept in float32) it joins the bias and the ReLU in one elementwise pass. The
    folded pair is kept beside the parameters it came from, not among them, so saved folders
    and strict loading are unchanged, and it is used only while those parameters are current.
    """
    norm = block.norm
    scale = norm.weight.astype(mx.float32) * mx.rsqrt(norm.running_var.astype(mx.float32) + norm.eps)
    shift = norm.bias.astype(mx.float32) - norm.running_mean.astype(mx.float32) * scale
    mx.eval(scale, shift)
    object.__setattr__(block, "_folded", (_norm_sources(block), scale, shift))


def _norm_sources(block: TDNNBlock) -> tuple:
    norm = block.norm
    return (norm.weight, norm.bias, norm.running_mean, norm.running_var, block.conv.weight, block.conv.bias)


def _folded(block: TDNNBlock) -> Optional[tuple]:
    """(scale, shift) where fold_batch_norm ran on the block's current parameters, else None."""
    folded = getattr(block, "_folded", None)
    if folded is None or block.norm.training or any(a is not b for a, b in zip(folded[0], _norm_sources(block))):
        return None
    return folded[1:]


def tdnn(block: TDNNBlock, x: mx.array, padding: ReflectPadding) -> mx.array:
    """conv -> ReLU -> BatchNorm, with SpeechBrain's 'same' reflect padding per clip."""
    if block.reflect_padding:
        x = padding(x, block.reflect_padding)
    conv = block.conv
    folded = _folded(block)
    if folded is None:
        unfold = conv.weight.shape[1] > 1 and mx.default_device() == mx.cpu
        return block.norm(nn.relu(unfolded_conv(x, conv.weight, conv.dilation) + conv.bias if unfold else conv(x)))
    if conv.weight.shape[1] == 1 or mx.default_device() == mx.cpu:
        y = unfolded_conv(x, conv.weight, conv.dilation)
    else:
        y = mx.conv1d(x, conv.weight, dilation=conv.dilation)
    return _bias_relu_affine(y, conv.bias, *folded)


def frame_average(mask: mx.array, dtype) -> mx.array:
    """(B, T) valid-frame mask -> (B, 1, T) weights whose matmul with (B, T, C) is the masked mean.

    One batched matvec per SE block instead of masked_mean's two-pass eight ops: the SE
    squeeze feeds a sigmoid gate, where a single float32-accumulated pass is plenty.
    """
    return (mask / mask.sum(axis=1, keepdims=True))[:, None, :].astype(dtype)


def se_res2net(block: SERes2NetBlock, x: mx.array, padding: ReflectPadding, average: mx.array) -> mx.array:
    out = tdnn(block.tdnn1, x, padding)
    chunks = mx.split(out, block.res2net_block.scale, axis=-1)
    pieces = [chunks[0]]
    for index, sub_block in enumerate(block.res2net_block.blocks):
        inputs = chunks[index + 1] if index == 0 else chunks[index + 1] + pieces[-1]
        pieces.append(tdnn(sub_block, inputs, padding))
    out = tdnn(block.tdnn2, mx.concatenate(pieces, axis=-1), padding)
    squeeze = average @ out  # (B, 1, C): the mean over valid frames only (frame_average)
    excite = mx.sigmoid(block.se_block.conv2(nn.relu(block.se_block.conv1(squeeze))))
    return out * excite + x


def attentive_statistics(pool: AttentiveStatisticsPooling, x: mx.array, mask: mx.array, padded: bool = True) -> mx.array:
    """(B, T, C) -> (B, 2C): attention-weighted mean and std over each clip's valid frames.

    `padded=False` (every frame valid) skips the two masks: on an x86 CPU each select over
    (T, C) cost ~16 ms of a 10 s clip, and with every frame valid they change nothing.
    """
    if padded:
        x = mx.where(mask[:, :, None], x, 0.0)
    weights = (mask / mask.sum(axis=1, keepdims=True))[:, :, None].astype(x.dtype)  # uniform over valid frames
    mean, std = _weighted_statistics(x, weights)
    scores = pool.conv(mx.tanh(_attention_tdnn(pool, x, mx.concatenate([mean, std], axis=-1))))
    if padded:  # -inf on padded frames, added (the mask is (B, T, 1): no select over (T, C))
        scores = scores + mx.where(mask, 0.0, -mx.inf)[:, :, None].astype(scores.dtype)
    mean, std = _weighted_statistics(x, cpu_math.softmax(scores.astype(mx.float32), axis=1).astype(x.dtype))
    return mx.concatenate([mean, std], axis=-1)


def _attention_tdnn(pool: AttentiveStatisticsPooling, x: mx.array, context: mx.array) -> mx.array:
    """The pooling's TDNN on [x, mean, std] per frame, without building that (B, T, 3C) input.

    With global context the mean and std are the same for every frame, so their share of the
    1x1 conv is one (B, 2C) @ (2C, A) product added to every frame, not a matmul over T frames.
    """
    block, channels = pool.tdnn, x.shape[-1]
    weight = block.conv.weight[:, 0, :]  # (A, C or 3C): a 1x1 conv
    hidden = x @ weight[:, :channels].T
    if pool.global_context:
        hidden = hidden + (context @ weight[:, channels:].T)[:, None, :]
    folded = _folded(block)
    return block.norm(nn.relu(hidden + block.conv.bias)) if folded is None else _bias_relu_affine(hidden, block.conv.bias, *folded)


def _weighted_statistics(x: mx.array, weights: mx.array):
    mean = (weights * x).sum(axis=1)
    var = (weights * mx.square(x - mean[:, None, :])).sum(axis=1)
    return mean, mx.sqrt(mx.maximum(var, STD_FLOOR))


class EcapaEmbedding(nn.Module):
    """SpeechBrain's ECAPA_TDNN: (B, frames, n_mels) features -> (B, lin_neurons) embedding."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        width, kernels, dilations = config.channels, config.kernel_sizes, config.dilations
        self.blocks = [TDNNBlock(config.n_mels, width[0], kernels[0], dilations[0], padding_mode="reflect")] + [
            SERes2NetBlock(width[i], kernels[i], dilations[i], config.res2net_scale, config.se_channels, "reflect")
            for i in range(1, len(width) - 1)
        ]
        self.mfa = TDNNBlock(width[-2] * (len(width) - 2), width[-1], kernels[-1], dilations[-1], padding_mode="reflect")
        self.asp = AttentiveStatisticsPooling(width[-1], config.attention_channels, config.global_context)
        self.asp_bn = nn.BatchNorm(width[-1] * 2)
        self.fc = nn.Conv1d(width[-1] * 2, config.lin_neurons, 1)

    def __call__(self, features: mx.array, frame_lengths: mx.array, padded: bool = True) -> mx.array:
        mask = length_mask(frame_lengths, features.shape[1])
        padding = ReflectPadding(frame_lengths, features.shape[1])
        out = tdnn(self.blocks[0], features, padding)
        aggregated = []
        average = frame_average(mask, features.dtype)
        for block in self.blocks[1:]:
            out = se_res2net(block, out, padding, average)
            aggregated.append(out)
        out = tdnn(self.mfa, mx.concatenate(aggregated, axis=-1), padding)
        pooled = self.asp_bn(attentive_statistics(self.asp, out, mask, padded))
        return self.fc(pooled[:, None, :])[:, 0, :]


class _Linear(nn.Module):
    """SpeechBrain's `Linear` wrapper (its weights live under `.w`)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.w = nn.Linear(in_features, out_features)

    def __call__(self, x: mx.array) -> mx.array:
        return self.w(x)


class _DNNBlock(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.linear = _Linear(in_features, out_features)
        self.norm = nn.BatchNorm(out_features)

    def __call__(self, x: mx.array) -> mx.array:
        return self.norm(nn.leaky_relu(self.linear(x), LEAKY_SLOPE))


class XvectorClassifier(nn.Module):
    """Xvector.Classifier: LeakyReLU -> BN -> (Linear -> LeakyReLU -> BN) -> Linear -> log-softmax."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.norm = nn.BatchNorm(config.lin_neurons)
        self.DNN = {"block_0": _DNNBlock(config.lin_neurons, config.classifier_lin_neurons)}
        self.out = _Linear(config.classifier_lin_neurons, len(config.labels))

    def __call__(self, embedding: mx.array) -> mx.array:
        hidden = self.DNN["block_0"](self.norm(nn.leaky_relu(embedding, LEAKY_SLOPE)))
        return nn.log_softmax(self.out(hidden).astype(mx.float32), axis=-1)


class CosineClassifier(nn.Module):
    """ECAPA_TDNN.Classifier: cosine between the embedding and each class weight, times the scale."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.weight = mx.zeros((len(config.labels), config.lin_neurons))
        self.scale = config.cosine_scale

    def __call__(self, embedding: mx.array) -> mx.array:
        unit = lambda v: v / mx.maximum(mx.linalg.norm(v, axis=-1, keepdims=True), 1e-12)  # noqa: E731 (F.normalize)
        cosine = unit(embedding.astype(mx.float32)) @ unit(self.weight.astype(mx.float32)).T
        return self.scale * cosine


class Model(LanguageIdModel):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embedding_model = EcapaEmbedding(config)
        self.classifier = XvectorClassifier(config) if config.classifier == "xvector" else CosineClassifier(config)

    @property
    def labels(self) -> List[str]:
        return list(self.config.labels)

    @property
    def label_names(self) -> List[Optional[str]]:
        return list(self.config.label_names or [None] * len(self.config.labels))

    @property
    def min_samples(self) -> int:
        # Reflect padding needs more frames than it pads (as torch's F.pad does).
        widest = max((k - 1) * d // 2 for k, d in zip(self.config.kernel_sizes, self.config.dilations))
        return widest * 160 if widest else 1

    max_samples_reason = "its activations grow with the length"

    @property
    def max_samples(self) -> int:
        # The widest activation, frames x max(channels) float32 (the MFA output; 3072 wide in
        # VoxLingua107's ECAPA: 29 minutes), held within SINGLE_PASS_BYTES; 160 samples a frame.
        return SINGLE_PASS_BYTES // (4 * max(self.config.channels)) * 160

    def features(self, waveforms: mx.array, lengths: mx.array) -> mx.array:
        """Fbank followed by SpeechBrain's sentence mean normalisation (over valid frames)."""
        feats = speechbrain_fbank(waveforms, lengths, self.config.n_mels, self.config.sample_rate)
        return feats - masked_mean(feats, length_mask(fbank_frame_lengths(lengths), feats.shape[1]))[:, None, :]

    def embed_batch(self, waveforms: mx.array, lengths: mx.array, padded: bool = True) -> mx.array:
        """(B, T) raw 16 kHz waveforms -> (B, lin_neurons), SpeechBrain's `encode_batch`.

        `padded=False` (every clip fills the batch) lets the pooling skip its masks.
        """
        dtype = self.embedding_model.asp_bn.weight.dtype
        feats = self.features(waveforms, lengths).astype(dtype)
        return self.embedding_model(feats, fbank_frame_lengths(lengths), padded)

    def prepare_weights(self) -> None:
        """Fold every TDNN block's BatchNorm into a scale and shift (see fold_batch_norm)."""
        embedding = self.embedding_model
        for block in [embedding.blocks[0], embedding.mfa, embedding.asp.tdnn]:
            fold_batch_norm(block)
        for block in embedding.blocks[1:]:
            for tdnn_block in [block.tdnn1, *block.res2net_block.blocks, block.tdnn2]:
                fold_batch_norm(tdnn_block)

    def classify(self, embeddings: mx.array) -> mx.array:
        """Log-probabilities (VoxLingua107) or scaled cosines (CommonLanguage)."""
        return self.classifier(embeddings)

    def sanitize(self, weights):
        """SpeechBrain's checkpoint names and layouts -> this model's; a no-op on MLX folders.

        SpeechBrain wraps each conv and BatchNorm in a module of its own (`conv.conv`,
        `norm.norm`) and stores convs as (out, in, k). Its checkpoints are recognised by those
        doubled names, which are gone after one pass, so running sanitize twice is safe.
        """
        if not any(".conv.conv." in key or ".norm.norm." in key for key in weights):
            return weights
        renames = [(".conv.conv.", ".conv."), (".norm.norm.", ".norm."), ("se_block.conv1.conv.", "se_block.conv1."),
                   ("se_block.conv2.conv.", "se_block.conv2."), ("asp_bn.norm.", "asp_bn."), ("fc.conv.", "fc.")]
        out = {}
        for key, value in weights.items():
            if key.endswith("num_batches_tracked"):
                continue  # a training counter, not a weight
            for old, new in renames:
                key = key.replace(old, new)
            if key.startswith("embedding_model.") and key.endswith(".weight") and value.ndim == 3:
                value = value.swapaxes(1, 2)  # PyTorch (out, in, k) -> MLX (out, k, in)
            out[key] = value
        return out
