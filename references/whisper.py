"""Tiny random Whisper checkpoints built with transformers, saved in every layout whisper_lid reads.

- transformers: `save_pretrained` (config.json, model.safetensors, generation_config.json);
- CTranslate2 / faster-whisper: converted by CTranslate2's own `TransformersConverter` (float32,
  float16, int8), with a stand-in tokenizer (the real one needs the Hub) and a tokenizers-made
  `tokenizer.json`, so faster-whisper's `WhisperModel` opens the folder too;
- mlx-community: config.json with mlx-audio's dimensions + weights.safetensors / weights.npz
  (also 8-bit quantized, as mlx-audio quantizes Whisper: Linear and Embedding layers);
- openai-whisper: `torch.save({"dims", "model_state_dict"})` under openai-whisper's names.
"""

import json
from pathlib import Path
from typing import List, Sequence

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import torch
from ctranslate2.converters import TransformersConverter
from faster_whisper.audio import pad_or_trim
from faster_whisper.feature_extractor import FeatureExtractor
from mlx.utils import tree_flatten
from mlx_audio.stt.models.whisper.tokenizer import LANGUAGES
from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration

EOT, SOT = 50257, 50258
SPECIALS = ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"]


def tiny_config(n_mels: int = 80, languages: int = 99) -> WhisperConfig:
    """Whisper's real vocabulary and 30 s context (1500 encoder frames), a tiny width and depth."""
    return WhisperConfig(
        vocab_size=EOT + 2 + languages + len(SPECIALS) + 1501, num_mel_bins=n_mels, d_model=64,
        encoder_layers=2, encoder_attention_heads=4, decoder_layers=2, decoder_attention_heads=4,
        encoder_ffn_dim=256, decoder_ffn_dim=256, max_source_positions=1500, max_target_positions=448,
        decoder_start_token_id=SOT, eos_token_id=EOT, pad_token_id=EOT, bos_token_id=EOT,
    )


def language_ids(config: WhisperConfig) -> List[int]:
    return list(range(SOT + 1, SOT + 1 + config.vocab_size - 51865 + 99))


def vocabulary(config: WhisperConfig) -> List[str]:
    codes = list(LANGUAGES)[: len(language_ids(config))]
    # As in Whisper's multilingual vocabulary, token 50256 is empty (CTranslate2 4.8 tells a
    # multilingual vocabulary by it).
    tokens = [f"t{i}" for i in range(EOT - 1)] + ["", "<|endoftext|>", "<|startoftranscript|>"]
    tokens += [f"<|{c}|>" for c in codes] + SPECIALS
    return tokens + ["<|%.2f|>" % (i * 0.02) for i in range(config.vocab_size - len(tokens))]


def build(config: WhisperConfig, seed: int = 0, language_gain: float = 40.0) -> WhisperForConditionalGeneration:
    """A model in eval mode whose every parameter is random (norm gains and biases too)."""
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.ndim == 1:
                param.add_(0.1 * torch.randn_like(param))
            elif "embed_positions" not in name or name.startswith("model.decoder"):
                param.add_(0.02 * torch.randn_like(param))
        # Peaky language posteriors that differ by clip, like a trained model's.
        model.model.decoder.embed_tokens.weight[language_ids(config)] *= language_gain
    model.generation_config = GenerationConfig(
        decoder_start_token_id=SOT, lang_to_id={f"<|{c}|>": i for c, i in zip(LANGUAGES, language_ids(config))},
    )
    return model


def features(clip: np.ndarray, n_mels: int) -> np.ndarray:
    """faster-whisper's encoder input for one clip: (n_mels, 3000)."""
    return pad_or_trim(FeatureExtractor(n_mels)(clip[:480000]))


def reference_logits(model: WhisperForConditionalGeneration, clips: Sequence[np.ndarray]) -> np.ndarray:
    """transformers' language-token logits, one decoder step from <|startoftranscript|>."""
    n_mels = model.config.num_mel_bins
    batch = torch.tensor(np.stack([features(c, n_mels) for c in clips]))
    with torch.no_grad():
        logits = model(input_features=batch, decoder_input_ids=torch.full((len(clips), 1), SOT)).logits
    return logits[:, 0, language_ids(model.config)].numpy()


def save_transformers(model, folder: Path) -> Path:
    model.save_pretrained(folder, safe_serialization=True)
    return folder


class _Vocabulary:
    """What CTranslate2's Whisper loader asks of a tokenizer: get_vocab()."""

    def __init__(self, tokens: List[str]):
        self.tokens = tokens

    def get_vocab(self):
        return {t: i for i, t in enumerate(self.tokens) if not t.startswith("<|") or not t[2].isdigit()}


class _Converter(TransformersConverter):
    def __init__(self, folder: Path, tokens: List[str]):
        super().__init__(str(folder))
        self.tokens = tokens

    def load_tokenizer(self, tokenizer_class, model_name_or_path, **kwargs):
        return _Vocabulary(self.tokens)


def save_ctranslate2(transformers_folder: Path, folder: Path, quantization: str = "float32") -> Path:
    """CTranslate2's own conversion of the transformers folder, plus what faster-whisper opens."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel

    config = WhisperConfig.from_pretrained(transformers_folder)
    tokens = vocabulary(config)
    _Converter(transformers_folder, tokens).convert(str(folder), quantization=quantization)
    Tokenizer(WordLevel({t: i for i, t in enumerate(tokens)}, unk_token="t0")).save(str(folder / "tokenizer.json"))
    (folder / "preprocessor_config.json").write_text(json.dumps({"feature_size": config.num_mel_bins}))
    return folder


def base_config() -> WhisperConfig:
    """Whisper base's dimensions (74 M parameters) with this module's vocabulary: random-weight speed runs."""
    return WhisperConfig(**dict(tiny_config().to_dict(), d_model=512, encoder_layers=6, encoder_attention_heads=8,
                                decoder_layers=6, decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048))


def random_ctranslate2(folder: Path, config: WhisperConfig, seed: int = 0) -> Path:
    """A random Whisper of `config` in the faster-whisper layout (its transformers source beside it)."""
    source = save_transformers(build(config, seed=seed), folder.parent / f"{folder.name}-transformers")
    return save_ctranslate2(source, folder)


def tiny_ctranslate2(folder: Path, seed: int = 0) -> Path:
    """A tiny multilingual Whisper in the faster-whisper layout (its transformers source beside it)."""
    return random_ctranslate2(folder, tiny_config(), seed)


def save_mlx_community(weights: dict, dimensions: dict, folder: Path, file: str = "weights.safetensors",
                       q_bits: int = 0) -> Path:
    """mlx-audio's layout: config.json (its dimensions) + weights under its names, maybe quantized."""
    from mlx_audio.stt.models.whisper.whisper import Model as MlxAudioWhisper
    from mlx_audio.stt.models.whisper.whisper import ModelDimensions

    folder.mkdir(parents=True)
    config = dict(dimensions, model_type="whisper")
    if q_bits:
        network = MlxAudioWhisper(ModelDimensions(**dimensions), mx.float32)
        network.load_weights(list(weights.items()))
        nn.quantize(network, group_size=64, bits=q_bits, class_predicate=lambda _, m: isinstance(m, (nn.Linear, nn.Embedding)))
        weights = dict(tree_flatten(network.parameters()))
        config["quantization"] = {"group_size": 64, "bits": q_bits}
    if file.endswith(".safetensors"):
        mx.save_safetensors(str(folder / file), weights)
    else:
        mx.savez(str(folder / file), **weights)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def save_openai(weights: dict, dimensions: dict, folder: Path) -> Path:
    """openai-whisper's checkpoint: its names (`mlp.0`, `mlp.2`), PyTorch conv layout, sinusoids."""
    from mlx_audio.stt.models.whisper.whisper import sinusoids

    state = {"encoder.positional_embedding": np.array(sinusoids(dimensions["n_audio_ctx"], dimensions["n_audio_state"]))}
    for name, value in weights.items():
        value = np.array(value)
        if name.endswith(("conv1.weight", "conv2.weight")):
            value = value.transpose(0, 2, 1)
        state[name.replace(".mlp1.", ".mlp.0.").replace(".mlp2.", ".mlp.2.")] = value
    folder.mkdir(parents=True)
    torch.save({"dims": dimensions, "model_state_dict": {k: torch.tensor(v) for k, v in state.items()}}, folder / "tiny.pt")
    return folder
