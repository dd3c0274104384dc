"""`whisper_lid`: OpenAI Whisper's language detection on MLX, with mlx-audio's Whisper network.

Language ID as openai-whisper's `detect_language` and faster-whisper's compute it: the log-mel
features of the first 30 s (features.py, faster-whisper's arithmetic), the encoder, one decoder
step from `<|startoftranscript|>`, and the logits of the language tokens only, whose softmax is
the probability of each language. Each clip is padded or trimmed to 30 s on its own, so a batch
needs no mask: every row is exactly what the clip gives alone.

The encoder and decoder are mlx-audio's (`mlx_audio.stt.models.whisper`), under the names that
mlx-audio and mlx-community Whisper folders use (`encoder.blocks.0.attn.query.weight`, ...).
"""

from dataclasses import dataclass, field, fields
from typing import List, Optional, Tuple

import mlx.core as mx
import mlx.nn as nn
from mlx_audio.stt.models.whisper.tokenizer import LANGUAGES
from mlx_audio.stt.models.whisper.whisper import (
    AudioEncoder,
    ModelDimensions,
    MultiHeadAttention,
    ResidualAttentionBlock,
    TextDecoder,
)

from ... import cpu_math
from ...masking import conv_output_lengths, length_mask, masked_mean
from ..base import SINGLE_PASS_BYTES, LanguageIdModel, check_config
from .features import N_FFT, N_FRAMES, encoder_input, frame_counts
from .source import MODEL_TYPE

DIMENSIONS = tuple(f.name for f in fields(ModelDimensions))  # every one required: no defaults
# Size limits, 8-16x large-v3's (32 layers of 1280, 20 heads, 128 mels): anything above is a damaged config.
SIZE_LIMITS = {
    "n_mels": 1024, "n_audio_state": 16384, "n_audio_head": 256, "n_audio_layer": 512, "n_vocab": 1_000_000,
    "n_text_ctx": 65536, "n_text_state": 16384, "n_text_head": 256, "n_text_layer": 512,
}
ENCODER_FRAMES = N_FRAMES // 2  # the encoder's stride-2 conv over 30 s of features: its positional table
# Whisper's multilingual vocabularies: 50257 byte-pair tokens, <|endoftext|>, <|startoftranscript|>,
# then one token per language in openai-whisper's LANGUAGES order (99; large-v3 adds yue: 100),
# then the task and timestamp tokens. English-only vocabularies (51864) have no language tokens.
MULTILINGUAL_VOCAB = 51865
END_OF_TEXT = 50257
START_OF_TRANSCRIPT = END_OF_TEXT + 1


def language_tokens(n_vocab: int) -> Tuple[List[str], List[int]]:
    """A multilingual Whisper vocabulary's size -> (language codes, their token ids)."""
    if n_vocab < MULTILINGUAL_VOCAB:
        raise ValueError(
            f"a Whisper vocabulary of {n_vocab} tokens is English-only (tiny.en, base.en, ...): it has no "
            "language tokens to identify languages with; use a multilingual checkpoint"
        )
    count = n_vocab - MULTILINGUAL_VOCAB + 99
    if count > len(LANGUAGES):
        raise ValueError(f"a Whisper vocabulary of {n_vocab} tokens has {count} languages; mlx-audio knows {len(LANGUAGES)}")
    return list(LANGUAGES)[:count], list(range(START_OF_TRANSCRIPT + 1, START_OF_TRANSCRIPT + 1 + count))


@dataclass
class ModelConfig(ModelDimensions):
    model_type: str = MODEL_TYPE
    sample_rate: int = 16000
    languages: List[str] = field(default_factory=list)  # Whisper's codes, in logit order ("en", "zh", ...)
    language_tokens: List[int] = field(default_factory=list)  # their token ids
    sot_token: int = START_OF_TRANSCRIPT

    @classmethod
    def from_dict(cls, params: dict) -> "ModelConfig":
        check_config(MODEL_TYPE, params, DIMENSIONS, SIZE_LIMITS)
        if params["n_audio_ctx"] != ENCODER_FRAMES:
            raise ValueError(f"{MODEL_TYPE} config: n_audio_ctx is {params['n_audio_ctx']}; Whisper's encoder reads "
                             f"30 s, {ENCODER_FRAMES} frames")
        for width, heads in (("n_audio_state", "n_audio_head"), ("n_text_state", "n_text_head")):
            if params[width] % params[heads]:
                raise ValueError(f"{MODEL_TYPE} config: {width} ({params[width]}) is not a multiple of {heads} ({params[heads]})")
        known = {f.name for f in fields(cls)}
        config = cls(**{k: v for k, v in params.items() if k in known})
        if not config.languages:
            config.languages, config.language_tokens = language_tokens(config.n_vocab)
        if len(config.languages) != len(config.language_tokens):
            raise ValueError(f"{len(config.languages)} languages but {len(config.language_tokens)} language tokens")
        if not all(0 <= t < config.n_vocab for t in [*config.language_tokens, config.sot_token]):
            raise ValueError(f"{MODEL_TYPE} config: a language or start token is outside the {config.n_vocab}-token vocabulary")
        return config


class EncoderAttention(MultiHeadAttention):
    """mlx-audio's attention, without the (B, heads, 1500, 1500) scores it returns beside its output.

    The encoder never reads those scores. On a GPU MLX's fused kernel keeps them out of memory;
    on an x86 CPU NumPy computes the attention (cpu_math.py: 80 against 388 ms for base's 8 heads
    at 30 s on the 2-core CPU); elsewhere, or with `fused=False`, it is mlx-audio's own.
    (`fused=True` forces the first two.)
    """

    fused: Optional[bool] = None

    def qkv_attention(self, q, k, v, mask=None):
        if self.fused is None:
            fused = mx.default_device() == mx.gpu or cpu_math.enabled(q, k, v)
        else:
            fused = self.fused
        if mask is not None or not fused:
            return super().qkv_attention(q, k, v, mask)
        batch, frames, width = q.shape
        head_width = width // self.n_head

        def heads(x):  # (B, frames, width) -> (B, heads, frames, head_width)
            return x.reshape(batch, -1, self.n_head, head_width).transpose(0, 2, 1, 3)

        out = cpu_math.attention(heads(q), heads(k), heads(v), head_width**-0.5)
        return out.transpose(0, 2, 1, 3).reshape(batch, frames, width), None


class EncoderBlock(ResidualAttentionBlock):
    """mlx-audio's encoder block (self-attention, no mask or cache: all the encoder passes), with
    EncoderAttention and cpu_math's GELU (NumPy's on an x86 CPU, MLX's elsewhere); same parameters."""

    def __init__(self, n_state: int, n_head: int):
        super().__init__(n_state, n_head)
        self.attn = EncoderAttention(n_state, n_head)

    def __call__(self, x, xa=None, mask=None, kv_cache=None):
        if xa is not None or mask is not None or kv_cache is not None:
            raise ValueError("EncoderBlock is the encoder's: self-attention only, no mask or cache")
        x = x + self.attn(self.attn_ln(x))[0]
        return x + self.mlp2(cpu_math.gelu(self.mlp1(self.mlp_ln(x)))), (None, None), None


class LanguageQueryCrossAttention(MultiHeadAttention):
    """mlx-audio's cross-attention, without keys and values when each clip has one query.

    Language detection is one decoder step: one query per clip. Then q . (xa Wk^T)^T is
    (q Wk) . xa, and softmax(s) (xa Wv^T + bv) is (softmax(s) xa) Wv^T + bv (the weights sum
    to 1), so two products with the encoder states replace the keys and values of all 1500
    frames (9.4 GFLOP in base's 6 decoder layers). The same values to float32 rounding; any
    other call (several queries, a cache, quantized weights) is mlx-audio's own.
    """

    def __call__(self, x, xa=None, mask=None, kv_cache=None):
        if xa is None or mask is not None or kv_cache is not None or x.shape[1] != 1 or not self.folds:
            return super().__call__(x, xa, mask, kv_cache)
        return self.attend(x, xa.astype(mx.float32)), (None, None), None

    def attend(self, x: mx.array, frames: mx.array) -> mx.array:
        """The folded cross-attention's output: x (B, 1, width), one query per clip, against
        `frames`, the encoder states already in float32 (B, T, width)."""
        batch, _, width = x.shape
        head_width = width // self.n_head
        # In float32 whatever the weights' dtype: in float16 the folded products round where
        # keys and values would not (probabilities 1.6x further from float32's on a random base),
        # and with one query per clip the float32 work is small.
        f32 = mx.float32
        q = self.query(x).astype(f32).reshape(batch, self.n_head, 1, head_width)
        rows = (self.n_head, head_width, width)  # head h's rows of a (width, width) projection
        # Each clip's heads as the rows of one (heads, width) matrix against its own frames:
        # one batched matmul per clip, not a product broadcast over heads (B=16 on the 2-core
        # CPU: 39 to 17 ms a layer).
        folded_queries = (q @ self.key.weight.astype(f32).reshape(rows)).reshape(batch, self.n_head, width)
        scores = (folded_queries @ frames.swapaxes(1, 2)) * head_width**-0.5  # (B, heads, T)
        mixed = (mx.softmax(scores, axis=-1) @ frames)[:, :, None]  # (B, heads, 1, width)
        value_rows = self.value.weight.astype(f32).reshape(rows).swapaxes(1, 2)
        heads = mixed @ value_rows + self.value.bias.astype(f32).reshape(self.n_head, 1, head_width)
        heads = heads.astype(x.dtype).transpose(0, 2, 1, 3).reshape(batch, 1, width)
        return self.out(heads)

    @property
    def folds(self) -> bool:
        """Whether `attend` can run: it reads the key and value weights, which quantized layers pack."""
        return isinstance(self.key, nn.Linear) and isinstance(self.value, nn.Linear)  # not QuantizedLinear


class LanguageLogitsEmbedding(nn.Embedding):
    """mlx-audio's token embedding, whose output projection gives the language tokens' logits only.

    The decoder ends with `token_embedding.as_linear(x)`, logits over the whole vocabulary;
    language detection keeps 99 of them. Projecting onto those rows alone skips reading the
    other 51766 (106 MB in base's float32: 10 of the decoder step's 38 ms on the 2-core CPU).
    The same parameter (`decoder.token_embedding.weight`); embedding lookups are unchanged.
    """

    def __init__(self, n_vocab: int, n_state: int, rows: mx.array):
        super().__init__(n_vocab, n_state)
        self._rows = rows  # a leading underscore: not a parameter

    def as_linear(self, x: mx.array) -> mx.array:
        return x @ self.weight[self._rows].T


def first_step(decoder: TextDecoder, tokens: mx.array, encoder_states: mx.array) -> mx.array:
    """`decoder(tokens, encoder_states)[0][:, 0]` for one token per clip and no cache, in fewer ops.

    mlx-audio's decoder runs the general step. For the first, a single token: its
    self-attention has one score, whose softmax is exactly 1, so the attention's output is the
    value projection itself (the query, key, scores and mask of every layer skipped: the same
    values, bit for bit); and every layer's folded cross-attention reads the encoder states in
    float32, cast once here instead of once a layer (quantized cross-attention cannot fold: it
    is mlx-audio's, keys and values). One clip on a GPU is bound by how many ops run, not by
    their arithmetic: on an H100 base's step went from 2.6 to 1.65 ms of a 4.6 ms clip, 16
    clips taking ~10 ms.
    """
    if tokens.shape[1] != 1:
        raise ValueError(f"first_step takes one token per clip, got {tokens.shape[1]}")
    x = decoder.token_embedding(tokens) + decoder.positional_embedding[:1]
    frames = encoder_states.astype(mx.float32)  # lazy: never computed where no layer folds
    for block in decoder.blocks:
        x = x + block.attn.out(block.attn.value(block.attn_ln(x)))
        cross, query = block.cross_attn, block.cross_attn_ln(x)
        x = x + (cross.attend(query, frames) if cross.folds else cross(query, encoder_states)[0])
        x = x + block.mlp2(nn.gelu(block.mlp1(block.mlp_ln(x))))
    return decoder.token_embedding.as_linear(decoder.ln(x))[:, 0]


class Encoder(AudioEncoder):
    """mlx-audio's audio encoder with cpu_math's GELU after its two convolutions too (on 30 s of
    base, MLX's x86 CPU GELU took ~75 of the stem's 83 ms); same parameters, same blocks."""

    def __call__(self, x):
        x = cpu_math.gelu(self.conv1(x))
        x = cpu_math.gelu(self.conv2(x))
        if x.shape[1:] != self._positional_embedding.shape:
            raise ValueError(f"encoder input of {x.shape[1]} frames; Whisper's encoder reads {self._positional_embedding.shape[0]}")
        x = x + self._positional_embedding
        for block in self.blocks:
            x = block(x)[0]
        return self.ln_post(x)


class Model(LanguageIdModel):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self._labels = list(config.languages)
        # Built in float32; `_sync_buffers` keeps the two non-parameter arrays in the weights' dtype.
        self.encoder = Encoder(
            config.n_mels, config.n_audio_ctx, config.n_audio_state, config.n_audio_head, config.n_audio_layer, mx.float32
        )
        self.encoder.blocks = [EncoderBlock(config.n_audio_state, config.n_audio_head) for _ in self.encoder.blocks]
        self.decoder = TextDecoder(
            config.n_vocab, config.n_text_ctx, config.n_text_state, config.n_text_head, config.n_text_layer, mx.float32
        )
        self._language_tokens = mx.array(config.language_tokens)
        self.decoder.token_embedding = LanguageLogitsEmbedding(config.n_vocab, config.n_text_state, self._language_tokens)
        for block in self.decoder.blocks:
            block.cross_attn = LanguageQueryCrossAttention(config.n_text_state, config.n_text_head)

    @property
    def labels(self) -> List[str]:
        return list(self._labels)

    @property
    def label_names(self) -> List[Optional[str]]:
        return [None] * len(self._labels)  # Whisper's codes are named by langcodes (labels.py)

    @property
    def min_samples(self) -> int:
        return N_FFT  # one STFT window (25 ms); shorter clips would reflect their own padding

    max_samples_reason = "only the input grows with the length: the network reads the first 30 s"

    @property
    def max_samples(self) -> int:
        return SINGLE_PASS_BYTES // 4  # the float32 input row itself (9.3 hours)

    # -- dtype ---------------------------------------------------------------------------
    def _sync_buffers(self) -> None:
        # The encoder's sinusoids and the decoder's causal mask are not parameters, so neither
        # set_dtype nor load_weights casts them; a float32 one would silently promote a
        # float16 model's activations back to float32.
        dtype = self.encoder.conv1.weight.dtype  # convolutions are never quantized
        self.encoder._positional_embedding = self.encoder._positional_embedding.astype(dtype)
        self.decoder._mask = self.decoder._mask.astype(dtype)

    def set_dtype(self, dtype, predicate=None) -> None:
        kwargs = {} if predicate is None else {"predicate": predicate}
        super().set_dtype(dtype, **kwargs)
        self._sync_buffers()

    def load_weights(self, file_or_weights, strict: bool = True) -> "Model":
        super().load_weights(file_or_weights, strict=strict)
        self._sync_buffers()
        return self

    # -- forward -------------------------------------------------------------------------
    def encode_features(self, features: mx.array) -> mx.array:
        """(B, N_FRAMES, n_mels) log-mel features -> (B, n_audio_ctx, n_audio_state) encoder states."""
        return self.encoder(features.astype(self.encoder.conv1.weight.dtype))

    def encode_batch(self, waveforms: mx.array, lengths: mx.array) -> mx.array:
        """(B, T) raw waveforms -> encoder states of each clip's first 30 s."""
        return self.encode_features(encoder_input(waveforms, lengths, self.config.n_mels))

    def embed_batch(self, waveforms: mx.array, lengths: mx.array, padded: bool = True) -> mx.array:
        """(B, T) -> (B, n_audio_state): the mean encoder state over the frames the clip covers."""
        states = self.encode_batch(waveforms, lengths)
        frames = mx.minimum(conv_output_lengths(frame_counts(lengths), 3, 2, padding=1), states.shape[1])
        return masked_mean(states.astype(mx.float32), length_mask(frames, states.shape[1]))

    def classify(self, encoder_states: mx.array) -> mx.array:
        """(B, n_audio_ctx, n_audio_state) encoder states -> (B, languages) logits.

        Whisper's language head reads every encoder state (through cross-attention), not a pooled
        embedding: one decoder step from <|startoftranscript|>, keeping the language tokens' logits.
        """
        tokens = mx.full((encoder_states.shape[0], 1), self.config.sot_token, dtype=mx.int32)
        logits = first_step(self.decoder, tokens, encoder_states)  # (B, languages): LanguageLogitsEmbedding
        if logits.shape[-1] == self.config.n_vocab:  # the embedding was swapped (e.g. quantized): all tokens
            logits = logits[:, self._language_tokens]
        return logits

    def forward(self, waveforms: mx.array, lengths: mx.array, padded: bool = True) -> mx.array:
        return self.classify(self.encode_batch(waveforms, lengths))
