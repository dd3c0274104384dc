"""Tiny MMS-LID-shaped checkpoints built with transformers itself, saved in the published layout."""

from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

from . import sizes

LANGUAGES = ["ara", "cmn", "eng", "spa", "fra", "rus", "deu"]  # MMS-style ISO 639-3 labels


def mms_lid_config(num_labels: int = 256) -> Wav2Vec2Config:
    """The published facebook/mms-lid-* architecture (sizes.mms_lid), as transformers' config."""
    config = sizes.mms_lid(num_labels)
    labels = [config["id2label"][str(i)] for i in range(num_labels)]
    settings = {k: v for k, v in config.items() if k not in ("model_type", "id2label")}
    return Wav2Vec2Config(
        **settings, layerdrop=0.0, mask_time_prob=0.05,
        id2label={i: label for i, label in enumerate(labels)},
        label2id={label: i for i, label in enumerate(labels)},
    )


def tiny_config(
    stable_layer_norm: bool = True,
    feat_extract_norm: str = "layer",
    adapter_attn_dim: Optional[int] = None,
    num_labels: int = len(LANGUAGES),
) -> Wav2Vec2Config:
    labels = LANGUAGES if num_labels == len(LANGUAGES) else [f"l{i:04d}" for i in range(num_labels)]
    return Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48,
        conv_dim=(16, 16, 24), conv_kernel=(10, 3, 2), conv_stride=(5, 2, 2), conv_bias=True,
        feat_extract_norm=feat_extract_norm, do_stable_layer_norm=stable_layer_norm,
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
        classifier_proj_size=20, adapter_attn_dim=adapter_attn_dim,
        id2label={i: label for i, label in enumerate(labels)},
        label2id={label: i for i, label in enumerate(labels)},
        layerdrop=0.0, mask_time_prob=0.05,  # mask_time_prob > 0 makes it save masked_spec_embed, as MMS does
    )


def build(config: Wav2Vec2Config, seed: int = 0, classifier_gain: float = 300.0) -> Wav2Vec2ForSequenceClassification:
    """A model in eval mode whose every parameter is random (norm gains and biases too)."""
    torch.manual_seed(seed)
    model = Wav2Vec2ForSequenceClassification(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "parametrizations.weight.original0" in name or name.endswith("weight_g"):
                param.mul_(1 + 0.2 * torch.rand_like(param))
            elif param.ndim == 1 and ("norm" in name or name.endswith("bias")):
                param.add_(0.1 * torch.randn_like(param))
            else:
                param.add_(0.02 * torch.randn_like(param))
        model.classifier.weight.mul_(classifier_gain)  # peaky posteriors that differ by clip, like a trained model's
        model.classifier.bias.zero_()
    return model


def save_published_layout(model, folder: Path, weight_norm_spelling: str = "parametrizations") -> Path:
    """config.json + model.safetensors + preprocessor_config.json, as the Hub repos ship.

    `weight_norm_spelling`: "parametrizations" (transformers' current saving) or "weight_g"
    (older checkpoints: `weight_g`/`weight_v`).
    """
    model.save_pretrained(folder, safe_serialization=True)
    feature_extractor().save_pretrained(folder)
    weights_file = folder / "model.safetensors"
    weights = load_file(weights_file)
    renames = {"parametrizations.weight.original0": "weight_g", "parametrizations.weight.original1": "weight_v"}
    for key in list(weights):
        for new_name, old_name in renames.items():
            source, target = (old_name, new_name) if weight_norm_spelling == "parametrizations" else (new_name, old_name)
            if key.endswith(source):
                weights[key[: -len(source)] + target] = weights.pop(key)
    save_file(weights, weights_file, metadata={"format": "pt"})
    return folder


def feature_extractor() -> Wav2Vec2FeatureExtractor:
    return Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True, return_attention_mask=True
    )


def reference_logits(model, clips: Sequence[np.ndarray], batched: bool = True) -> np.ndarray:
    """transformers' logits: one padded batch with attention_mask, or each clip alone."""
    groups: List[Sequence[np.ndarray]] = [clips] if batched else [[c] for c in clips]
    out = []
    for group in groups:
        inputs = feature_extractor()(list(group), sampling_rate=16000, padding=True, return_tensors="pt")
        with torch.no_grad():
            out.append(model(inputs.input_values, attention_mask=inputs.attention_mask).logits.numpy())
    return np.concatenate(out)
