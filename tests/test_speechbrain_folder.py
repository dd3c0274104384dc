"""Reading SpeechBrain folders: nothing in them is executed, and bad folders are clear errors."""

import shutil

import pytest
import torch

import mlx_audio_lid as lid
from mlx_audio_lid.models.ecapa_lid.source import read_hyperparams, read_labels, split_label

from references import ecapa as ref


@pytest.fixture
def folder(tmp_path):
    copy = tmp_path / "voxlingua107_tiny"
    shutil.copytree(ref.FIXTURES / "voxlingua107_tiny", copy)
    return copy


class RunsCode:
    """A pickle payload that would create `marker` if unpickled without restriction."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (shutil.copy, (__file__, str(self.marker)))


def test_yaml_tags_execute_nothing(folder, tmp_path):
    marker = tmp_path / "executed"
    hyperparams = folder / "hyperparams.yaml"
    hyperparams.write_text(
        hyperparams.read_text()
        + f'\nharm_python: !!python/object/apply:os.system ["touch {marker}"]\n'
        + f'harm_hyperpyyaml: !apply:os.system ["touch {marker}"]\n'
        + f"harm_new: !new:subprocess.call\n    args: [touch, {marker}]\n"
    )
    read_hyperparams(hyperparams)
    model = lid.load(folder)
    assert not marker.exists()
    assert len(model.labels) == 107


def test_malicious_tag_in_a_used_key_is_refused(folder, tmp_path):
    marker = tmp_path / "executed"
    hyperparams = folder / "hyperparams.yaml"
    text = hyperparams.read_text().replace(
        "embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN",
        f'embedding_model: !!python/object/apply:os.system ["touch {marker}"]\nunused:',
    )
    hyperparams.write_text(text)
    with pytest.raises(ValueError, match="embedding_model"):
        lid.load(folder)
    assert not marker.exists()


def test_checkpoint_whose_pickle_carries_code_is_refused(folder, tmp_path):
    marker = tmp_path / "executed"
    state = torch.load(folder / "classifier.ckpt", weights_only=True)
    state["payload"] = RunsCode(marker)
    torch.save(state, folder / "classifier.ckpt")
    with pytest.raises(ValueError, match="refusing to load .*classifier.ckpt"):
        lid.load(folder)
    assert not marker.exists()


def test_missing_weight_is_named(folder):
    state = torch.load(folder / "embedding_model.ckpt", weights_only=True)
    del state["blocks.2.se_block.conv1.conv.weight"]
    torch.save(state, folder / "embedding_model.ckpt")
    with pytest.raises(ValueError, match=r"embedding_model\.blocks\.2\.se_block\.conv1\.weight"):
        lid.load(folder)


def test_missing_file_is_named(folder):
    (folder / "label_encoder.txt").unlink()
    with pytest.raises(FileNotFoundError, match="label_encoder.txt"):
        lid.load(folder)


def test_unsupported_settings_are_refused(folder):
    hyperparams = folder / "hyperparams.yaml"
    hyperparams.write_text(hyperparams.read_text().replace("std_norm: False", "std_norm: True"))
    with pytest.raises(ValueError, match="InputNormalization"):
        lid.load(folder)


def test_label_encoder_parsing(tmp_path):
    labels = read_labels(ref.FIXTURES / "voxlingua107_tiny" / "label_encoder.txt")
    assert labels[0] == "ab: Abkhazian" and len(labels) == 107
    assert split_label("en: English") == ("en", "English")
    assert split_label("Basque") == ("Basque", "Basque")
    broken = tmp_path / "label_encoder.txt"
    broken.write_text("'en: English' => 0\n'fr: French' => 2\n")
    with pytest.raises(ValueError, match="numbered 0..N-1"):
        read_labels(broken)


def test_labels_keep_code_and_name():
    vox = lid.load(ref.FIXTURES / "voxlingua107_tiny")
    assert len(vox.labels) == 107
    assert vox.label_names[vox.labels.index("en")] == "English"
    assert {"iw", "jw"} <= set(vox.labels)  # VoxLingua107's legacy codes are kept as the model's labels
    common = lid.load(ref.FIXTURES / "commonlanguage_tiny")
    assert len(common.labels) == 45 and "German" in common.labels
