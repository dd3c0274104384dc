"""`whisper_lid` on tiny random Whisper checkpoints: every layout it reads gives transformers' logits,
CTranslate2's own runtime agrees on its quantized folders, batches equal clips alone, and the
whole-file rule is faster-whisper's."""

import struct

import ctranslate2
import mlx.core as mx
import numpy as np
import pytest
from faster_whisper import WhisperModel
from mlx.utils import tree_flatten
from mlx_audio.stt.models.whisper.tokenizer import LANGUAGES

import mlx_audio_lid as lid
from mlx_audio_lid.identification import pad_batch
from mlx_audio_lid.labels import UNDETERMINED, describe_labels
from mlx_audio_lid.masking import length_mask, masked_mean
from mlx_audio_lid.models.whisper_lid import ModelConfig, detect_language, source
from mlx_audio_lid.models.whisper_lid.features import encoder_input

from references import whisper as ref
from references.signals import SYNTHETIC_VAD, speechlike_clips

LENGTHS = [6_000, 64_000, 500_000]  # 0.4 s, 4 s and 31 s (past Whisper's 30 s: trimmed)


@pytest.fixture(scope="module")
def clips():
    return speechlike_clips(LENGTHS, seed=3)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The transformers model and its transformers folder."""
    model = ref.build(ref.tiny_config())
    return model, ref.save_transformers(model, tmp_path_factory.mktemp("transformers"))


@pytest.fixture(scope="module")
def mlx_weights(tiny):
    """(weights under mlx-audio's names, mlx-audio's dimensions) of the tiny model."""
    config, weights = source.read(tiny[1])
    return {k: v for k, v in weights.items()}, {k: config[k] for k in config if k.startswith("n_")}


@pytest.fixture(scope="module")
def folders(tiny, mlx_weights, tmp_path_factory):
    root, (weights, dimensions) = tmp_path_factory.mktemp("layouts"), mlx_weights
    made = {
        "transformers": tiny[1],
        "ctranslate2": ref.save_ctranslate2(tiny[1], root / "ct2"),
        "ctranslate2-float16": ref.save_ctranslate2(tiny[1], root / "ct2-f16", "float16"),
        "ctranslate2-int8": ref.save_ctranslate2(tiny[1], root / "ct2-int8", "int8"),
        "mlx-safetensors": ref.save_mlx_community(weights, dimensions, root / "mlx"),
        "mlx-npz": ref.save_mlx_community(weights, dimensions, root / "mlx-npz", "weights.npz"),
        "mlx-8bit": ref.save_mlx_community(weights, dimensions, root / "mlx-8bit", q_bits=8),
        "openai": ref.save_openai(weights, dimensions, root / "openai"),
    }
    return made


def logits(model, clips, batched=True):
    if not batched:
        return np.concatenate([logits(model, [c]) for c in clips])
    waveforms, lengths = pad_batch(clips)
    return np.array(model(waveforms, lengths))


@pytest.mark.parametrize("layout", ["transformers", "ctranslate2", "mlx-safetensors", "mlx-npz", "openai"])
def test_every_float_layout_gives_transformers_logits(layout, folders, tiny, clips):
    if layout == "openai":
        pytest.importorskip("mlx_audio_lid.torch_checkpoint", reason="mlx_audio_lid.torch_checkpoint (the torch-free .pt reader) is not on this branch yet")
    model = lid.load(folders[layout])
    assert model.labels == list(LANGUAGES)[:99]
    expected = ref.reference_logits(tiny[0], clips)
    np.testing.assert_allclose(logits(model, clips, batched=False), expected, atol=2e-5, rtol=0)


@pytest.mark.parametrize("layout", ["ctranslate2-float16", "ctranslate2-int8"])
def test_quantized_ctranslate2_folders_match_ctranslate2(layout, folders, clips):
    """Read into float32 exactly as CTranslate2 dequantizes them (its runtime at compute_type float32)."""
    runtime = ctranslate2.models.Whisper(str(folders[layout]), device="cpu", compute_type="float32")
    features = np.stack([ref.features(c, 80) for c in clips])
    tables = runtime.detect_language(ctranslate2.StorageView.from_array(features))
    model = lid.load(folders[layout])
    expected = np.log([[dict(t)[f"<|{code}|>"] for code in model.labels] for t in tables])
    scores = model(*pad_batch(clips))
    got = np.array(scores - mx.logsumexp(scores, axis=-1, keepdims=True))
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_quantized_mlx_community_folder_is_its_network(folders, mlx_weights, clips):
    """An 8-bit mlx-community folder reads into float32 weights that give the quantized network's logits."""
    from mlx_audio.stt.models.whisper.whisper import Model as MlxAudioWhisper
    from mlx_audio.stt.models.whisper.whisper import ModelDimensions
    import mlx.nn as nn

    network = MlxAudioWhisper(ModelDimensions(**mlx_weights[1]), mx.float32)
    nn.quantize(network, 64, 8, class_predicate=lambda _, m: isinstance(m, (nn.Linear, nn.Embedding)))
    network.load_weights(str(folders["mlx-8bit"] / "weights.safetensors"))
    waveforms, lengths = pad_batch(clips)
    mel = encoder_input(waveforms, lengths, 80)
    expected = network(mel, mx.full((len(clips), 1), ref.SOT))[:, 0, ref.SOT + 1 : ref.SOT + 100]
    np.testing.assert_allclose(np.array(lid.load(folders["mlx-8bit"])(waveforms, lengths)), np.array(expected), atol=2e-5)


def test_large_v3_shape_128_mels_and_cantonese(tmp_path, clips):
    config = ref.tiny_config(n_mels=128, languages=100)
    hf = ref.build(config, seed=1)
    model = lid.load(ref.save_ctranslate2(ref.save_transformers(hf, tmp_path / "hf"), tmp_path / "ct2"))
    assert (model.config.n_mels, len(model.labels), model.labels[-1]) == (128, 100, "yue")
    np.testing.assert_allclose(logits(model, clips[:2]), ref.reference_logits(hf, clips[:2]), atol=2e-5, rtol=0)


def test_padded_batch_equals_each_clip_alone(folders, clips):
    model = lid.load(folders["ctranslate2"])
    np.testing.assert_allclose(logits(model, clips), logits(model, clips, batched=False), atol=1e-5, rtol=0)
    embedded = np.array(model.embed(*pad_batch(clips)))
    alone = np.concatenate([np.array(model.embed(*pad_batch([c]))) for c in clips])
    np.testing.assert_allclose(embedded, alone, atol=1e-5, rtol=0)


def test_fused_encoder_attention_equals_mlx_audios(folders, clips):
    """The GPU's default path (MLX's fused attention), forced here on the CPU, against mlx-audio's own."""
    model = lid.load(folders["ctranslate2"])
    expected = logits(model, clips)
    for block in model.encoder.blocks:
        block.attn.fused = True
    np.testing.assert_allclose(logits(model, clips), expected, atol=2e-5, rtol=0)


def test_embed_is_the_mean_encoder_state_over_the_frames_the_clip_covers(folders, clips):
    model = lid.load(folders["ctranslate2"])
    clip = clips[1]  # 4 s: 401 feature frames -> 201 of the 1500 encoder frames
    states = model.encode_batch(mx.array(clip[None]), mx.array([len(clip)]))
    expected = masked_mean(states, length_mask(mx.array([201]), 1500))
    np.testing.assert_allclose(np.array(model.embed(mx.array(clip[None]))), np.array(expected), atol=1e-6)
    assert model.embed(mx.array(clip[None])).shape == (1, 64)


@pytest.mark.parametrize("threshold", [0.5, 0.999])  # 0.999: no segment is sure, so the majority vote decides
def test_detect_language_is_faster_whisper_detect_language(folders, threshold):
    audio = np.concatenate(speechlike_clips([400_000, 700_000, 300_000], seed=5))  # 87.5 s: three segments
    reference = WhisperModel(str(folders["ctranslate2"]), device="cpu", compute_type="float32")
    expected = reference.detect_language(audio, language_detection_segments=3, language_detection_threshold=threshold)
    got = detect_language(lid.load(folders["ctranslate2"]), audio, language_detection_segments=3,
                          language_detection_threshold=threshold)
    assert got[0] == expected[0]
    assert got[1] == pytest.approx(expected[1], abs=1e-4)
    assert dict(got[2]) == pytest.approx(dict(expected[2]), abs=1e-4)


def test_long_recordings_run_in_30_s_windows(folders):
    model = lid.load(folders["ctranslate2"])
    audio = np.concatenate(speechlike_clips([16000 * 40, 16000 * 30], seed=6))
    prediction = lid.identify(model, audio, segments=True, vad=SYNTHETIC_VAD)  # synthetic sound, not speech
    assert prediction.duration == pytest.approx(70.0)
    assert prediction.segments[0].start == 0.0 and prediction.segments[-1].end == pytest.approx(70.0)
    assert prediction.language in model.labels


def test_every_whisper_code_names_a_language():
    languages = describe_labels(tuple(LANGUAGES))
    assert len(languages) == 100
    assert not [label for label, info in languages.items() if info.code == UNDETERMINED]
    assert {k: languages[k].code for k in ("jw", "haw", "yue", "sa", "he", "no")} == {
        "jw": "jav", "haw": "haw", "yue": "yue", "sa": "san", "he": "heb", "no": "nor"}


def test_english_only_whisper_is_refused():
    dims = dict(n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=4, n_audio_layer=1,
                n_vocab=51864, n_text_ctx=448, n_text_state=64, n_text_head=4, n_text_layer=1)
    with pytest.raises(ValueError, match="English-only"):
        ModelConfig.from_dict(dims)
    with pytest.raises(ValueError, match="missing required keys: n_vocab"):
        ModelConfig.from_dict({k: v for k, v in dims.items() if k != "n_vocab"})


def test_broken_ctranslate2_files_are_named(folders, tmp_path):
    import shutil

    folder = shutil.copytree(folders["ctranslate2"], tmp_path / "truncated")
    data = (folder / "model.bin").read_bytes()
    (folder / "model.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        lid.load(folder)
    (folder / "model.bin").write_bytes(struct.pack("<I", 9) + data[4:])
    with pytest.raises(ValueError, match="binary version 9"):
        lid.load(folder)


def test_convert_from_ctranslate2_verifies_and_mlx_audio_loads_it(folders, tmp_path, clips):
    """8-bit, the variant a user of faster-whisper's cache wants (MLX's float16 matmuls are slow on a CPU)."""
    import mlx_audio.lid

    folder = lid.convert(folders["ctranslate2"], tmp_path / "8bit", quantize=True, q_bits=8)
    card = (folder / "README.md").read_text()
    assert "license: mit" in card and "`yue`" not in card and "| 98 | `su` | sun | Sundanese |" in card
    ours, theirs = lid.load(folder), mlx_audio.lid.load(str(folder))
    np.testing.assert_array_equal(logits(ours, clips[:2]), logits(theirs, clips[:2]))
    assert (logits(ours, clips[:2]).argmax(1) == logits(lid.load(folders["ctranslate2"]), clips[:2]).argmax(1)).all()
    quantized = {k for k, v in tree_flatten(ours.parameters()) if v.dtype == mx.uint32}
    assert "encoder.blocks.0.attn.query.weight" in quantized and "encoder.conv1.weight" not in quantized


def test_language_query_cross_attention_is_mlx_audios_for_one_query():
    """Without keys and values (one query per clip) it gives mlx-audio's cross-attention to float32 rounding."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_audio.stt.models.whisper.whisper import MultiHeadAttention

    from mlx_audio_lid.models.whisper_lid.model import LanguageQueryCrossAttention

    mx.random.seed(3)
    plain, ours = MultiHeadAttention(64, 4), LanguageQueryCrossAttention(64, 4)
    ours.load_weights(tree_flatten(plain.parameters()))
    x, frames = mx.random.normal((3, 1, 64)), mx.random.normal((3, 1500, 64))
    expected, got = plain(x, frames)[0], ours(x, frames)[0]
    assert float(mx.abs(expected - got).max()) < 1e-5 * float(mx.abs(expected).max())
    several = mx.random.normal((3, 2, 64))  # more than one query: mlx-audio's own path, keys and values returned
    out, (keys, values), _ = ours(several, frames)
    assert keys is not None and float(mx.abs(out - plain(several, frames)[0]).max()) == 0


def test_language_query_cross_attention_in_float16_is_no_worse_than_keys_and_values():
    """In float16 the folded products are computed in float32: nearer float32's answer than
    mlx-audio's float16 keys and values (folding in float16 was 1.6x further on a random base)."""
    from mlx_audio.stt.models.whisper.whisper import MultiHeadAttention

    from mlx_audio_lid.models.whisper_lid.model import LanguageQueryCrossAttention

    mx.random.seed(5)
    plain, ours = MultiHeadAttention(512, 8), LanguageQueryCrossAttention(512, 8)
    ours.load_weights(tree_flatten(plain.parameters()))
    x, frames = mx.random.normal((2, 1, 512)), 4 * mx.random.normal((2, 1500, 512))
    exact = plain(x, frames)[0]
    plain.set_dtype(mx.float16)
    ours.set_dtype(mx.float16)
    half_x, half_frames = x.astype(mx.float16), frames.astype(mx.float16)
    got = ours(half_x, half_frames)[0]
    assert got.dtype == mx.float16
    ours_error = float(mx.abs(got.astype(mx.float32) - exact).max())
    plain_error = float(mx.abs(plain(half_x, half_frames)[0].astype(mx.float32) - exact).max())
    assert ours_error <= plain_error, (ours_error, plain_error)


@pytest.mark.parametrize("dtype", ["float32", "float16", "8-bit"])
def test_first_step_is_mlx_audios_decoder_step_bit_for_bit(folders, clips, dtype):
    """classify's one decoder step (self-attention of one token as its value projection, the
    encoder states cast once) gives exactly what mlx-audio's decoder gives through the same
    cross-attention (folded, or with quantized keys and values), and it refuses more than one token."""
    from mlx_audio_lid import quantization
    from mlx_audio_lid.models.whisper_lid.model import first_step

    model = lid.load(folders["ctranslate2"], dtype="float32" if dtype == "8-bit" else dtype)
    if dtype == "8-bit":
        quantization.quantize(model, 8, 64)
        assert not model.decoder.blocks[0].cross_attn.folds
    waveforms, lengths = pad_batch(clips)
    states = model.encode_batch(waveforms, lengths)
    tokens = mx.full((len(clips), 1), model.config.sot_token, dtype=mx.int32)
    expected = model.decoder(tokens, states)[0][:, 0]
    got = first_step(model.decoder, tokens, states)
    assert got.dtype == expected.dtype and got.shape == (len(clips), len(model.labels))
    np.testing.assert_array_equal(np.array(got.astype(mx.float32)), np.array(expected.astype(mx.float32)))
    np.testing.assert_array_equal(np.array(model.classify(states).astype(mx.float32)), np.array(expected.astype(mx.float32)))
    with pytest.raises(ValueError, match="one token per clip"):
        first_step(model.decoder, mx.concatenate([tokens, tokens], axis=1), states)


def test_language_logits_are_the_full_vocabularys_language_columns(folders, clips):
    """The decoder projects onto the language tokens' rows only; with mlx-audio's own embedding
    (all 51865 rows, as after a user's nn.quantize swaps it) classify picks the same columns."""
    import mlx.nn as nn

    model = lid.load(folders["ctranslate2"])
    waveforms, lengths = pad_batch(clips)
    states = model.encode_batch(waveforms, lengths)
    projected = np.array(model.classify(states))
    assert projected.shape == (len(clips), len(model.labels))
    full = nn.Embedding(*model.decoder.token_embedding.weight.shape)
    full.weight = model.decoder.token_embedding.weight
    model.decoder.token_embedding = full
    np.testing.assert_allclose(np.array(model.classify(states)), projected, atol=1e-5, rtol=0)
