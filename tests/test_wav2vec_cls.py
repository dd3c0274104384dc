"""`wav2vec_cls` against transformers' Wav2Vec2ForSequenceClassification, built here with random weights."""

import logging

import mlx.core as mx
import numpy as np
import pytest

from transformers import Wav2Vec2ForSequenceClassification

import mlx_audio_lid as lid
from mlx_audio_lid.identification import pad_batch

import conversion_sources
from references import mms as ref
from references.signals import SYNTHETIC_VAD, speechlike_clips

CLIP_LENGTHS = [16000, 9000, 4000]  # 1 s, 0.56 s, 0.25 s: a padded batch of three lengths
FLOAT32_TOLERANCE = 1e-4

VARIANTS = {
    "stable-ln/layer-norm": dict(stable_layer_norm=True, feat_extract_norm="layer"),
    "post-ln/group-norm": dict(stable_layer_norm=False, feat_extract_norm="group"),
    "post-ln/layer-norm": dict(stable_layer_norm=False, feat_extract_norm="layer"),
    "stable-ln/group-norm": dict(stable_layer_norm=True, feat_extract_norm="group"),
    "adapters": dict(stable_layer_norm=True, feat_extract_norm="layer", adapter_attn_dim=8),
}


@pytest.fixture(scope="module")
def clips():
    return speechlike_clips(CLIP_LENGTHS)


def published(tmp_path, spelling="parametrizations", seed=0, **config):
    reference = ref.build(ref.tiny_config(**config), seed=seed)
    folder = ref.save_published_layout(reference, tmp_path / "published", spelling)
    return reference, folder


def logits_alone(model, clips):
    return np.concatenate([np.array(model(mx.array(c)[None])) for c in clips])


def logits_batched(model, clips):
    waveforms, lengths = pad_batch(clips)
    return np.array(model(waveforms, lengths).astype(mx.float32))


@pytest.mark.parametrize("spelling", ["parametrizations", "weight_g"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_float32_matches_transformers_alone_and_batched(tmp_path, clips, variant, spelling):
    reference, folder = published(tmp_path, spelling, **VARIANTS[variant])
    model = lid.load(folder)
    expected_alone = ref.reference_logits(reference, clips, batched=False)
    alone = logits_alone(model, clips)
    batched = logits_batched(model, clips)
    assert np.abs(alone - expected_alone).max() <= FLOAT32_TOLERANCE
    assert np.abs(batched - alone).max() <= FLOAT32_TOLERANCE
    if VARIANTS[variant]["feat_extract_norm"] == "layer":
        # transformers is padding-invariant here too, so its masked batch is a second reference.
        expected_batched = ref.reference_logits(reference, clips, batched=True)
        assert np.abs(batched - expected_batched).max() <= FLOAT32_TOLERANCE
    else:
        # Group norm: transformers' statistics include the padding, so its batch differs from
        # its own single clips; this model keeps batched == alone.
        expected_batched = ref.reference_logits(reference, clips, batched=True)
        assert np.abs(expected_batched - expected_alone).max() > 10 * FLOAT32_TOLERANCE


def test_results_are_informative(tmp_path, clips):
    """Guards the parity tests: logits vary by clip and label, so agreement means something."""
    reference, folder = published(tmp_path)
    expected = ref.reference_logits(reference, clips, batched=False)
    assert expected.std(axis=1).min() > 0.05
    assert np.abs(expected[0] - expected[1]).max() > 0.05


@pytest.mark.parametrize("num_labels", [126, 256, 512, 1024, 2048, 4017])
def test_every_mms_label_count(tmp_path, clips, num_labels):
    reference, folder = published(tmp_path, num_labels=num_labels)
    model = lid.load(folder)
    assert len(model.labels) == num_labels
    expected = ref.reference_logits(reference, clips[:1], batched=False)
    assert np.abs(logits_alone(model, clips[:1]) - expected).max() <= FLOAT32_TOLERANCE


def test_config_adapters_without_weights_builds_without_and_says_so(tmp_path, clips, caplog):
    reference, folder = published(tmp_path)  # built without adapters
    config_file = folder / "config.json"
    config_file.write_text(config_file.read_text().replace('"adapter_attn_dim": null', '"adapter_attn_dim": 16'))
    with caplog.at_level(logging.WARNING):
        model = lid.load(folder)
    assert "no adapter_layer weights" in caplog.text
    assert model.wav2vec2.encoder.layers[0].adapter_layer is None
    expected = ref.reference_logits(reference, clips, batched=False)
    assert np.abs(logits_alone(model, clips) - expected).max() <= FLOAT32_TOLERANCE


def test_unsupported_architecture_lists_supported(tmp_path):
    _, folder = published(tmp_path)
    config_file = folder / "config.json"
    config_file.write_text(config_file.read_text().replace("Wav2Vec2ForSequenceClassification", "Wav2Vec2ForCTC"))
    with pytest.raises(ValueError, match=r"Wav2Vec2ForCTC.*not supported.*Wav2Vec2ForSequenceClassification"):
        lid.load(folder)



def test_fused_qkv_is_used_saved_as_three_keys_and_dropped_when_stale(tmp_path, clips):
    """prepare_weights stacks q/k/v; the three layers are views of it, so the folder is unchanged."""
    from mlx.utils import tree_flatten

    from mlx_audio_lid.models.wav2vec_cls import encoder

    reference, folder = published(tmp_path)
    model = lid.load(folder)
    attention = model.wav2vec2.encoder.layers[0].attention
    assert encoder._fused(attention) is not None
    keys = {k for k, _ in tree_flatten(model.parameters())}
    assert {f"wav2vec2.encoder.layers.0.attention.{p}_proj.weight" for p in "qkv"} <= keys
    assert not any("fused" in k for k in keys)
    fused = logits_alone(model, clips)
    for layer in model.wav2vec2.encoder.layers:
        layer.attention.q_proj.weight = layer.attention.q_proj.weight + 0.0  # new array: the stack is stale
    assert encoder._fused(attention) is None
    assert np.abs(logits_alone(model, clips) - fused).max() <= FLOAT32_TOLERANCE


@pytest.mark.parametrize("kernel", [16, 7])
def test_positional_conv_as_matmul_equals_the_grouped_conv_in_pieces_too(monkeypatch, kernel):
    import mlx.nn as nn

    from mlx_audio_lid.models.wav2vec_cls import positional

    conv = nn.Conv1d(32, 32, kernel, padding=kernel // 2, groups=4)
    x = mx.random.normal((3, 21, 32), key=mx.random.key(0))
    expected = np.array(conv(x)[:, :21])
    assert np.abs(np.array(positional.positional_conv_as_matmul(conv, x)) - expected).max() <= 1e-5
    monkeypatch.setattr(positional, "TAPS_BUDGET", 21 * kernel * 32)  # one clip per piece
    assert np.abs(np.array(positional.positional_conv_as_matmul(conv, x)) - expected).max() <= 1e-5


@pytest.fixture(scope="module")
def downsampling_320x(tmp_path_factory):
    """A tiny checkpoint with the real conv stack's 320x downsampling (30 s = 1500 frames), and
    transformers' model read back from its published folder."""
    folder = conversion_sources.tiny_mms(tmp_path_factory.mktemp("mms320") / "published")
    return Wav2Vec2ForSequenceClassification.from_pretrained(folder).eval(), lid.load(folder)


def transformers_log_probabilities(reference, clip):
    logits = ref.reference_logits(reference, [clip])[0].astype(np.float64)
    return logits - logits.max() - np.log(np.exp(logits - logits.max()).sum())


@pytest.mark.parametrize("seconds, max_whole", [(1, None), (5, None), (12, None), (30, None), (45, 60)])
def test_identify_gives_transformers_answer_for_the_whole_clip(downsampling_320x, seconds, max_whole):
    """identify's defaults run clips up to 30 s whole (transformers' audio-classification pipeline
    runs any length whole; max_whole=60 takes a 45 s clip whole too)."""
    reference, model = downsampling_320x
    clip = speechlike_clips([seconds * 16000], seed=seconds)[0]
    expected = transformers_log_probabilities(reference, clip)
    prediction = lid.identify(model, clip, max_whole=max_whole, vad=SYNTHETIC_VAD)
    got = np.log([prediction.probs[label] for label in model.labels])
    assert np.abs(got - expected).max() <= FLOAT32_TOLERANCE


def test_past_max_whole_the_answer_comes_from_windows(downsampling_320x):
    reference, model = downsampling_320x
    clip = speechlike_clips([45 * 16000], seed=45)[0]
    windowed = lid.identify(model, clip, vad=SYNTHETIC_VAD)  # 45 s > 30 s: 10 s windows every 5 s
    got = np.log([windowed.probs[label] for label in model.labels])
    assert np.abs(got - transformers_log_probabilities(reference, clip)).max() > 100 * FLOAT32_TOLERANCE
