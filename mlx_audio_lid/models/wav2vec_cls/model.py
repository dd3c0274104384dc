"""`wav2vec_cls`: Meta's MMS-LID (transformers' Wav2Vec2ForSequenceClassification) on MLX.

The wav2vec2 blocks are mlx-audio's; this file adds what they lack for language ID on
batches: per-clip normalisation, conv-stack frame lengths, masked attention and a masked
mean, so a padded batch gives each clip what it gets alone.
"""

import math
from dataclasses import dataclass
from typing import Dict, List, Optional

import mlx.core as mx
import mlx.nn as nn
from mlx_audio.stt.models.wav2vec.wav2vec import ModelConfig as Wav2Vec2Config
from mlx_audio.stt.models.wav2vec.wav2vec import Wav2Vec2Model

from ... import cpu_math
from ...masking import conv_output_lengths, length_mask, masked_mean
from ..base import SINGLE_PASS_BYTES, LanguageIdModel, check_config
from .encoder import encoder_layer, fuse_qkv
from .positional import positional_conv_as_matmul
from .source import MODEL_TYPE

NORM_EPS = 1e-7  # transformers' Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm
# Keys a config must state: defaults for these would silently build the wrong network.
# (do_stable_layer_norm, for one, moves the layer norms without renaming a weight.)
REQUIRED_KEYS = (
    "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
    "conv_dim", "conv_kernel", "conv_stride", "classifier_proj_size", "do_stable_layer_norm",
    "feat_extract_norm", "conv_bias", "num_conv_pos_embeddings", "num_conv_pos_embedding_groups", "layer_norm_eps",
)
# Size limits, 8-16x MMS-LID's largest (48 layers of 1280, 4017 labels): anything above is a damaged config.
SIZE_LIMITS = {
    "num_hidden_layers": 512, "num_attention_heads": 256, "hidden_size": 16384, "intermediate_size": 65536,
    "classifier_proj_size": 16384, "conv_dim": 16384, "conv_kernel": 1024, "conv_stride": 1024,
    "num_conv_pos_embeddings": 4096, "num_conv_pos_embedding_groups": 4096, "num_labels": 100000,
    "adapter_attn_dim": 16384,
}


@dataclass
class ModelConfig(Wav2Vec2Config):
    model_type: str = MODEL_TYPE
    classifier_proj_size: int = 256
    num_labels: int = 2
    id2label: Optional[Dict[str, str]] = None
    use_weighted_layer_sum: bool = False
    do_normalize: bool = True  # from preprocessor_config.json
    sample_rate: int = 16000  # preprocessor_config.json's sampling_rate

    @classmethod
    def from_dict(cls, params: dict) -> "ModelConfig":
        check_config(MODEL_TYPE, params, REQUIRED_KEYS, SIZE_LIMITS)
        if not len(params["conv_dim"]) == len(params["conv_kernel"]) == len(params["conv_stride"]):
            raise ValueError(f"{MODEL_TYPE} config: conv_dim, conv_kernel and conv_stride must have one entry per conv layer")
        for key in ("do_stable_layer_norm", "conv_bias"):
            if not isinstance(params[key], bool):
                raise ValueError(f"{MODEL_TYPE} config: {key} must be true or false, got {params[key]!r}")
        if params["feat_extract_norm"] not in ("layer", "group"):
            raise ValueError(f"{MODEL_TYPE} config: feat_extract_norm must be 'layer' or 'group', got {params['feat_extract_norm']!r}")
        if params.get("use_weighted_layer_sum"):
            raise ValueError("use_weighted_layer_sum=true is not supported (MMS-LID does not use it)")
        for key in ("hidden_act", "feat_extract_activation"):
            if params.get(key, "gelu") != "gelu":
                raise ValueError(f"{key}={params[key]!r} is not supported, only 'gelu'")
        config = super().from_dict(params)
        config.num_feat_extract_layers = len(config.conv_dim)
        if config.id2label:
            config.num_labels = len(config.id2label)
        return config


class Model(LanguageIdModel):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self._labels = labels_from_id2label(config.id2label, config.num_labels)
        self.wav2vec2 = Wav2Vec2Model(config)
        # The positional conv's weight norm is folded into a plain grouped conv at load
        # (sanitize), instead of mlx-audio's WNConv1d recomputing it on every call.
        width, kernel = config.hidden_size, config.num_conv_pos_embeddings
        self.wav2vec2.encoder.pos_conv_embed.conv = nn.Conv1d(
            width, width, kernel, padding=kernel // 2, groups=config.num_conv_pos_embedding_groups
        )
        for layer in self.wav2vec2.encoder.layers:  # the same (parameter-free) GELU, NumPy's on an x86 CPU
            layer.feed_forward.intermediate_act_fn = cpu_math.GELU()
        self.projector = nn.Linear(config.hidden_size, config.classifier_proj_size)
        self.classifier = nn.Linear(config.classifier_proj_size, config.num_labels)

    @property
    def labels(self) -> List[str]:
        return list(self._labels)

    # -- lengths -------------------------------------------------------------------------
    def frame_lengths(self, lengths: mx.array) -> mx.array:
        """Samples -> encoder frames, through every layer of the conv stack."""
        for kernel, stride in zip(self.config.conv_kernel, self.config.conv_stride):
            lengths = conv_output_lengths(lengths, kernel, stride)
        return lengths

    @property
    def min_samples(self) -> int:
        samples = 1
        for kernel, stride in reversed(list(zip(self.config.conv_kernel, self.config.conv_stride))):
            samples = (samples - 1) * stride + kernel
        return samples

    max_samples_reason = "attention scores grow with the square of the length"

    @property
    def max_samples(self) -> int:
        # One layer's float32 scores, heads x frames x frames, held within SINGLE_PASS_BYTES
        # (MLX's CPU attention materialises them): 5792 frames, 116 s, for MMS-LID's 16 heads.
        frames = math.isqrt(SINGLE_PASS_BYTES // (4 * self.config.num_attention_heads))
        return frames * math.prod(self.config.conv_stride)

    # -- forward -------------------------------------------------------------------------
    def _conv_features(self, x: mx.array, lengths: mx.array) -> mx.array:
        """(B, T) samples -> (B, frames, conv_dim[-1]), channels-last throughout."""
        hidden = x[:, :, None]  # (B, T, 1)
        for layer in self.wav2vec2.feature_extractor.conv_layers:
            hidden = layer.conv(hidden)
            lengths = conv_output_lengths(lengths, layer.conv.weight.shape[1], layer.conv.stride)
            if isinstance(getattr(layer, "layer_norm", None), nn.GroupNorm):
                hidden = self._masked_group_norm(hidden, layer.layer_norm, lengths)
            elif hasattr(layer, "layer_norm"):
                hidden = layer.layer_norm(hidden)
            hidden = cpu_math.gelu(hidden)
        return hidden

    @staticmethod
    def _masked_group_norm(hidden: mx.array, norm: nn.GroupNorm, lengths: mx.array) -> mx.array:
        # One group per channel, normalised over time. transformers takes the statistics
        # over the padding too; here only valid frames count, so batched equals alone.
        mask = length_mask(lengths, hidden.shape[1])[:, :, None]
        mean = masked_mean(hidden, mask[..., 0])[:, None, :]
        var = masked_mean(mx.square(hidden - mean), mask[..., 0])[:, None, :]
        return (hidden - mean) * mx.rsqrt(var + norm.eps) * norm.weight + norm.bias

    def _encode(self, hidden: mx.array, frame_mask: mx.array, padded: bool) -> mx.array:
        encoder = self.wav2vec2.encoder
        hidden = hidden * frame_mask[:, :, None]  # padded frames must not leak into the pos conv
        position = positional_conv_as_matmul(encoder.pos_conv_embed.conv, hidden)  # see positional.py
        hidden = hidden + cpu_math.gelu(position)
        if not self.config.do_stable_layer_norm:
            hidden = encoder.layer_norm(hidden)
        # (B, 1, 1, frames): padded keys get -inf. An additive mask in the compute dtype keeps
        # MLX's fused attention kernel (a boolean one falls back to a slower path: 0.70 vs
        # 0.22 ms per float16 layer at 16 x 10 s on an H100); without padding, no mask at all.
        attention_mask = None
        if padded:
            attention_mask = mx.where(frame_mask, 0.0, -mx.inf).astype(hidden.dtype)[:, None, None, :]
        for layer in encoder.layers:
            hidden = encoder_layer(layer, hidden, attention_mask, self.config.do_stable_layer_norm)
        if self.config.do_stable_layer_norm:
            hidden = encoder.layer_norm(hidden)
        return hidden

    def embed_batch(self, waveforms: mx.array, lengths: mx.array, padded: bool = True) -> mx.array:
        """(B, T) raw waveforms -> (B, classifier_proj_size): the pooled projection."""
        dtype = self.wav2vec2.feature_projection.layer_norm.weight.dtype  # never quantized
        x = waveforms.astype(mx.float32)
        if self.config.do_normalize:
            x = normalize_waveforms(x, lengths)
        hidden = self._conv_features(x.astype(dtype), lengths)
        frame_mask = length_mask(self.frame_lengths(lengths), hidden.shape[1])
        hidden = self.wav2vec2.feature_projection.projection(
            self.wav2vec2.feature_projection.layer_norm(hidden)
        )
        hidden = self._encode(hidden, frame_mask, padded)
        return masked_mean(self.projector(hidden), frame_mask)

    def classify(self, embeddings: mx.array) -> mx.array:
        return self.classifier(embeddings)

    # -- weights -------------------------------------------------------------------------
    def prepare_weights(self) -> None:
        """One stacked q/k/v projection per encoder layer (see encoder.py)."""
        for layer in self.wav2vec2.encoder.layers:
            fuse_qkv(layer.attention)

    def sanitize(self, weights: Dict[str, mx.array]) -> Dict[str, mx.array]:
        """transformers' checkpoint names and layouts -> this model's; a no-op on MLX folders.

        A transformers checkpoint is recognised by its weight-normed positional conv
        (`weight_g`/`weight_v` or `parametrizations.weight.original0/1`); once folded, those
        keys are gone, so running sanitize twice changes nothing.
        """
        prefix = "wav2vec2.encoder.pos_conv_embed.conv."
        spellings = [("weight_g", "weight_v"), ("parametrizations.weight.original0", "parametrizations.weight.original1")]
        found = [(prefix + g, prefix + v) for g, v in spellings if prefix + g in weights]
        if not found:
            return weights
        g_key, v_key = found[0]
        out = {}
        for key, value in weights.items():
            if key in (g_key, v_key) or key == "wav2vec2.masked_spec_embed":
                continue  # weight norm is folded below; masked_spec_embed is for pretraining only
            if key.startswith("wav2vec2.feature_extractor.") and key.endswith(".conv.weight"):
                value = value.swapaxes(1, 2)  # PyTorch (out, in, k) -> MLX (out, k, in)
            out[key] = value
        out[prefix + "weight"] = fold_weight_norm(weights[g_key], weights[v_key]).swapaxes(1, 2)
        return out


def labels_from_id2label(id2label: Optional[Dict], num_labels: int) -> List[str]:
    """transformers' `id2label` ({"0": "ara", ...}) as a list in logit order."""
    if not id2label:
        return [f"LABEL_{i}" for i in range(num_labels)]
    by_index = {int(k): v for k, v in id2label.items()}
    if sorted(by_index) != list(range(len(by_index))):
        raise ValueError("id2label must map every index 0..N-1 exactly once")
    return [by_index[i] for i in range(len(by_index))]


def normalize_waveforms(waveforms: mx.array, lengths: mx.array) -> mx.array:
    """Zero mean, unit variance over each clip's valid samples; padding stays 0."""
    valid = length_mask(lengths, waveforms.shape[1])
    mean = masked_mean(waveforms, valid)[:, None]
    centred = mx.where(valid, waveforms - mean, 0.0)
    var = masked_mean(centred * centred, valid)[:, None]
    return centred / mx.sqrt(var + NORM_EPS)


def fold_weight_norm(g: mx.array, v: mx.array) -> mx.array:
    """PyTorch weight_norm(dim=2) on a (out, in/groups, k) conv: w = g * v / ||v|| per k."""
    norm = mx.sqrt(mx.sum(mx.square(v.astype(mx.float32)), axis=(0, 1), keepdims=True))
    return (g.astype(mx.float32) * v.astype(mx.float32) / norm).astype(v.dtype)
