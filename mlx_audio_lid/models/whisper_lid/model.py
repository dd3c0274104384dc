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
from mlx_audio.stt.models.whisper.tokenizer import LANGUAGES
from mlx_audio.stt.models.whisper.whisper import AudioEncoder, ModelDimensions, TextDecoder

from ...masking import conv_output_lengths, length_mask, masked_mean
from ..base import LanguageIdModel
from .features import N_FFT, encoder_input, frame_counts

MODEL_TYPE = "whisper_lid"
DIMENSIONS = tuple(f.name for f in fields(ModelDimensions))  # every one required: no defaults
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
        missing = [k for k in DIMENSIONS if k not in params]
        if missing:
            raise ValueError(f"{MODEL_TYPE} config is missing required keys: {', '.join(missing)}")
        known = {f.name for f in fields(cls)}
        config = cls(**{k: v for k, v in params.items() if k in known})
        if not config.languages:
            config.languages, config.language_tokens = language_tokens(config.n_vocab)
        if len(config.languages) != len(config.language_tokens):
            raise ValueError(f"{len(config.languages)} languages but {len(config.language_tokens)} language tokens")
        return config


class Model(LanguageIdModel):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.sample_rate = config.sample_rate
        self._labels = list(config.languages)
        # Built in float32; `_sync_buffers` keeps the two non-parameter arrays in the weights' dtype.
        self.encoder = AudioEncoder(
            config.n_mels, config.n_audio_ctx, config.n_audio_state, config.n_audio_head, config.n_audio_layer, mx.float32
        )
        self.decoder = TextDecoder(
            config.n_vocab, config.n_text_ctx, config.n_text_state, config.n_text_head, config.n_text_layer, mx.float32
        )
        self._language_tokens = mx.array(config.language_tokens)

    @property
    def labels(self) -> List[str]:
        return list(self._labels)

    @property
    def label_names(self) -> List[Optional[str]]:
        return [None] * len(self._labels)  # Whisper's codes are named by langcodes (labels.py)

    @property
    def min_samples(self) -> int:
        return N_FFT  # one STFT window (25 ms); shorter clips would reflect their own padding

    def sanitize(self, weights):
        """Unchanged: every reader in source.py already gives mlx-audio's names and layouts."""
        return weights

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
        logits = self.decoder(tokens, encoder_states)[0][:, 0]  # (B, n_vocab)
        return logits[:, self._language_tokens]

    def forward(self, waveforms: mx.array, lengths: mx.array, padded: bool = True) -> mx.array:
        return self.classify(self.encode_batch(waveforms, lengths))
