"""Importing mlx_audio_lid teaches mlx-audio's own loaders our model types, and breaks none of theirs."""

import subprocess
import sys

import mlx.core as mx
import mlx_audio.lid
import mlx_audio.utils
import numpy as np
import pytest

import mlx_audio_lid as lid
from mlx_audio_lid.models import wav2vec_cls

import reference_mms as ref


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("registration")
    reference = ref.build(ref.tiny_config())
    ref.save_published_layout(reference, folder / "published")
    return reference, lid.convert(folder / "published", folder / "mlx")


@pytest.mark.parametrize("loader", [mlx_audio.lid.load, mlx_audio.utils.load_model], ids=["lid.load", "utils.load_model"])
def test_mlx_audio_loaders_load_converted_folder(converted, loader):
    reference, folder = converted
    model = loader(str(folder))
    assert isinstance(model, wav2vec_cls.Model)
    clip = ref.speechlike_clips([12000])[0]
    expected = ref.reference_logits(reference, [clip])
    assert np.abs(np.array(model(mx.array(clip)[None])) - expected).max() <= 1e-4
    # mlx-audio's predict contract: [(label, probability)], best first
    ranked = model.predict(clip, top_k=3)
    assert [label for label, _ in ranked] == [ref.LANGUAGES[i] for i in np.argsort(-expected[0])[:3]]


def test_mlx_audio_loader_still_refuses_missing_weights(converted, tmp_path):
    """mlx-audio loads with strict=False; a missing weight must still be an error, not random."""
    from safetensors.numpy import load_file, save_file

    _, folder = converted
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((folder / "config.json").read_text())
    weights = load_file(folder / "model.safetensors")
    weights.pop("classifier.weight")
    save_file(weights, broken / "model.safetensors")
    with pytest.raises(ValueError, match="classifier.weight"):
        mlx_audio.lid.load(str(broken))


def test_converted_folder_refuses_overwrite(converted):
    _, folder = converted
    with pytest.raises(FileExistsError):
        lid.convert(folder, folder)


def test_mlx_audio_own_tests_pass_with_plugin_imported():
    """A sample of mlx-audio's own suite (its LID models, model-type resolution) still passes."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "mlx_audio_lid", "-p", "no:cacheprovider",
         "--pyargs", "mlx_audio.lid.tests.test_lid", "mlx_audio.tests.test_model_resolution"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout
