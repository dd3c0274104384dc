"""Damaged model folders (issue 15): structural keys required, weight dtypes checked, sizes bounded.

A config.json without `do_stable_layer_norm` once built a different network with the same weight
names; integer weights loaded; `num_hidden_layers: 1e9` built for ever. Each is now an error
raised before (or instead of) building the wrong thing.
"""

import json
import shutil
import time

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten
from safetensors.numpy import load_file, save_file

import mlx_audio_lid as lid
from mlx_audio_lid.loading import read_source
from mlx_audio_lid.models.wav2vec_cls import model as wav2vec_cls

from references import ecapa as reference_ecapa
from references import mms as ref
from references.signals import SYNTHETIC_VAD, speechlike_clips


@pytest.fixture(scope="module")
def mms_folder(tmp_path_factory):
    return ref.save_published_layout(ref.build(ref.tiny_config(), seed=5), tmp_path_factory.mktemp("mms") / "published")


@pytest.fixture(scope="module")
def ecapa_folder(tmp_path_factory):
    """The SpeechBrain fixture as an MLX folder (config.json + model.safetensors)."""
    source = reference_ecapa.FIXTURES / "voxlingua107_tiny"
    config, _ = read_source(source)
    folder = tmp_path_factory.mktemp("ecapa") / "mlx"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    mx.save_safetensors(str(folder / "model.safetensors"), dict(tree_flatten(lid.load(source).parameters())))
    return folder


def edited(folder, tmp_path, config_change=None, weight_change=None):
    """A copy of `folder` with its config.json and/or model.safetensors changed."""
    copy = tmp_path / "edited"
    shutil.copytree(folder, copy)
    if config_change:
        config = json.loads((copy / "config.json").read_text())
        config_change(config)
        (copy / "config.json").write_text(json.dumps(config))
    if weight_change:
        weights = load_file(copy / "model.safetensors")
        weight_change(weights)
        save_file(weights, copy / "model.safetensors")
    return copy


def _drop(key):
    return lambda config: config.pop(key)


@pytest.mark.parametrize("key", wav2vec_cls.REQUIRED_KEYS)
def test_every_structural_key_of_an_mms_config_is_required(mms_folder, tmp_path, key):
    with pytest.raises(ValueError, match=f"missing required keys: {key}"):
        lid.load(edited(mms_folder, tmp_path, _drop(key)))


def test_do_stable_layer_norm_changes_the_answer_so_it_cannot_default(mms_folder, tmp_path):
    """Why the key is required: the same weights load under either value and answer differently."""
    clip = speechlike_clips([16000], seed=9)[0]
    stated = lid.identify(lid.load(mms_folder), clip, vad=SYNTHETIC_VAD).probs
    flipped = lid.load(edited(mms_folder, tmp_path, lambda config: config.update(do_stable_layer_norm=False)))
    assert max(abs(stated[k] - p) for k, p in lid.identify(flipped, clip, vad=SYNTHETIC_VAD).probs.items()) > 1e-3


@pytest.mark.parametrize("key, value, message", [
    ("do_stable_layer_norm", "yes", "true or false"),
    ("feat_extract_norm", "batch", "'layer' or 'group'"),
    ("conv_kernel", [10, 3], "one entry per conv layer"),
])
def test_structural_values_of_the_wrong_kind_are_refused(mms_folder, tmp_path, key, value, message):
    with pytest.raises(ValueError, match=message):
        lid.load(edited(mms_folder, tmp_path, lambda config: config.update({key: value})))


@pytest.mark.parametrize("key, value", [("num_hidden_layers", 1e9), ("num_hidden_layers", 10**9),
                                        ("hidden_size", -32), ("conv_dim", [16] * 1000), ("num_attention_heads", True)])
def test_absurd_sizes_are_refused_before_anything_is_built(mms_folder, tmp_path, key, value):
    folder = edited(mms_folder, tmp_path, lambda config: config.update({key: value}))
    start = time.perf_counter()
    with pytest.raises(ValueError, match=f"{key}"):
        lid.load(folder)
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("key, value", [("channels", [10**9] * 5), ("res2net_scale", 0), ("n_mels", 2.5)])
def test_absurd_ecapa_sizes_are_refused(ecapa_folder, tmp_path, key, value):
    with pytest.raises(ValueError, match=key):
        lid.load(edited(ecapa_folder, tmp_path, lambda config: config.update({key: value})))


@pytest.mark.parametrize("dtype", [np.int32, np.int8, np.bool_])
@pytest.mark.parametrize("family", ["mms", "ecapa"])
def test_integer_and_boolean_weights_are_refused(request, tmp_path, family, dtype):
    folder = request.getfixturevalue(f"{family}_folder")
    key = "classifier.weight" if family == "mms" else "classifier.out.w.weight"

    def to_integers(weights):
        weights[key] = np.ones_like(weights[key]).astype(dtype)

    with pytest.raises(ValueError, match=f"weight {key} has dtype .*floating point"):
        lid.load(edited(folder, tmp_path, weight_change=to_integers))


def test_weights_with_nan_are_refused(ecapa_folder, tmp_path):
    def poison(weights):
        weights["embedding_model.fc.bias"] = np.full_like(weights["embedding_model.fc.bias"], np.nan)

    with pytest.raises(ValueError, match="NaN or infinite values"):
        lid.load(edited(ecapa_folder, tmp_path, weight_change=poison))


def test_an_intact_folder_still_loads_and_answers(mms_folder, ecapa_folder):
    for folder in (mms_folder, ecapa_folder):
        prediction = lid.identify(lid.load(folder), speechlike_clips([16000])[0], vad=SYNTHETIC_VAD)
        assert np.isfinite(prediction.probability)
