"""`convert`: tiny models of both families, in every dtype and quantization, reloaded by both loaders
and checked against the fidelity each folder records."""

import json
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx_audio.lid
import numpy as np
import pytest
from huggingface_hub import ModelCard
from mlx.utils import tree_flatten

import mlx_audio_lid as lid
from mlx_audio_lid import cli, fidelity, quantization
from mlx_audio_lid.converter import FidelityError, main

import conversion_sources as sources

# Loose enough for these random models' extreme logits (the ECAPA fixture's span 70-340 nats),
# still requiring every probe window to keep its top-1 label.
LOOSE = fidelity.Bound(max_delta_log_prob=50.0, min_top1_agreement=1.0)
VARIANTS = {
    "float32": dict(),
    "float16": dict(dtype="float16"),
    "bfloat16": dict(dtype="bfloat16"),
    "8bit": dict(quantize=True, q_bits=8),
    "4bit": dict(quantize=True, q_bits=4),
    "8bit-float16": dict(dtype="float16", quantize=True, q_bits=8),
    "4bit-bfloat16": dict(dtype="bfloat16", quantize=True, q_bits=4),
}
FAMILIES = {  # name -> (base model named in the card, license it inherits)
    "mms": ("facebook/mms-lid-126", "cc-by-nc-4.0"),
    "voxlingua107": ("speechbrain/lang-id-voxlingua107-ecapa", "apache-2.0"),
    "commonlanguage": ("speechbrain/lang-id-commonlanguage_ecapa", "apache-2.0"),
}
# CommonLanguage has no Linear layer (cosine classifier): it has no quantized variants.
CASES = [(f, v) for f in FAMILIES for v in VARIANTS if not (f == "commonlanguage" and "bit" in v)]


@pytest.fixture(scope="module")
def source_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("sources")
    return {
        "mms": sources.tiny_mms(root / "mms-lid-126", num_labels=126),
        "voxlingua107": sources.ECAPA["speechbrain/lang-id-voxlingua107-ecapa"],
        "commonlanguage": sources.ECAPA["speechbrain/lang-id-commonlanguage_ecapa"],
    }


@pytest.fixture(scope="module")
def converted(source_folders, tmp_path_factory):
    """(family, variant) -> folder, each converted once for the whole module."""
    root, done = tmp_path_factory.mktemp("converted"), {}

    def get(family, variant):
        if (family, variant) not in done:
            done[family, variant] = lid.convert(
                source_folders[family], root / f"{family}-{variant}", base_model=FAMILIES[family][0],
                repo_id=f"mlx-community/{family}-{variant}", bound=LOOSE, **VARIANTS[variant],
            )
        return done[family, variant]

    return get


def recorded(folder):
    return json.loads((folder / "config.json").read_text(encoding="utf-8"))


def float_dtypes(model):
    return {str(v.dtype) for _, v in tree_flatten(model.parameters()) if mx.issubdtype(v.dtype, mx.floating)}


@pytest.mark.parametrize("family, variant", CASES)
def test_converted_folder_reloads_and_matches_its_recorded_fidelity(source_folders, converted, family, variant):
    folder = converted(family, variant)
    options = VARIANTS[variant]
    config = recorded(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert config["dtype"] == options.get("dtype", "float32")

    ours, theirs = lid.load(folder), mlx_audio.lid.load(str(folder))
    assert type(ours) is type(theirs)
    assert float_dtypes(ours) == {f"mlx.core.{config['dtype']}"}

    reference = lid.load(source_folders[family])
    expected_quantized = set()
    if options.get("quantize"):
        q = config["quantization"]
        assert (q["bits"], q["mode"]) == (options["q_bits"], "affine")
        rule = quantization.predicate(q["group_size"])
        expected_quantized = {p for p, m in reference.named_modules() if rule(p, m)}
        assert expected_quantized
    else:
        assert "quantization" not in config
    for model in (ours, theirs):
        assert {p for p, m in model.named_modules() if isinstance(m, nn.QuantizedLinear)} == expected_quantized

    # A fresh comparison gives what the folder records, through either loader.
    figures = config["conversion"]["fidelity"]
    expected, _ = fidelity.log_probabilities(reference)
    for model in (ours, theirs):
        got, _ = fidelity.log_probabilities(model)
        fresh = fidelity.Fidelity.between(expected, got)
        assert fresh.max_abs_delta_log_prob == pytest.approx(figures["max_abs_delta_log_prob"], rel=1e-4, abs=1e-6)
        assert fresh.top1_agreement == figures["top1_agreement"] == 1.0
    assert figures["windows"] == len(fidelity.probe_windows())
    if variant == "float32":
        assert figures["max_abs_delta_log_prob"] == 0.0  # saved and reloaded bit for bit
    else:
        assert figures["max_abs_delta_log_prob"] > 0.0  # the cast or quantization did happen

    base_model, license = FAMILIES[family]
    card = ModelCard.load(folder / "README.md")
    assert card.data.license == license
    assert card.data.base_model == base_model
    assert card.data.library_name == "mlx-audio"
    assert card.data.pipeline_tag == "audio-classification"
    assert {"mlx", "mlx-audio", "language-identification"} <= set(card.data.tags)
    assert f"mlx_audio.lid.load(\"mlx-community/{family}-{variant}\")" in card.text
    assert f"{figures['max_abs_delta_log_prob']:.3g}" in card.text
    label_rows = [line for line in card.text.splitlines() if line.startswith("| ") and line.split("|")[1].strip().isdigit()]
    assert [row.split("`")[1] for row in label_rows] == ours.labels


def test_lower_precision_costs_more_fidelity(converted):
    delta = {v: recorded(converted("mms", v))["conversion"]["fidelity"]["max_abs_delta_log_prob"] for v in VARIANTS}
    assert delta["float32"] < delta["float16"] < delta["bfloat16"]
    assert delta["float32"] < delta["8bit"] < delta["4bit"]


def test_quantized_folder_is_smaller(converted):
    size = {v: (converted("mms", v) / "model.safetensors").stat().st_size for v in ("float32", "8bit", "4bit")}
    assert size["4bit"] < size["8bit"] < size["float32"]


def test_existing_destination_is_refused_and_left_alone(source_folders, tmp_path, capsys):
    destination = tmp_path / "taken"
    destination.mkdir()
    (destination / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="already exists"):
        lid.convert(source_folders["mms"], destination)
    assert main(["--hf-path", str(source_folders["mms"]), "--mlx-path", str(destination)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in destination.iterdir()] == ["keep.txt"]


def test_conversion_that_misses_its_bound_fails_and_leaves_nothing(source_folders, tmp_path):
    with pytest.raises(FidelityError, match=r"float16 conversion .* misses its bound"):
        lid.convert(source_folders["mms"], tmp_path / "out", dtype="float16", bound=fidelity.Bound(1e-6, 1.0))
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its temporary twin


def test_model_without_quantizable_layers_is_refused(source_folders, tmp_path):
    with pytest.raises(ValueError, match="no Linear layer that MLX can quantize"):
        lid.convert(source_folders["commonlanguage"], tmp_path / "out", quantize=True, q_bits=8)
    assert list(tmp_path.iterdir()) == []


def test_group_size_that_divides_no_layer_is_refused(source_folders, tmp_path):
    # The tiny MMS-LID's Linear layers are 20 to 48 wide: 32 divides some, 64 none.
    with pytest.raises(ValueError, match="divisible by 64"):
        lid.convert(source_folders["mms"], tmp_path / "out", quantize=True, q_group_size=64)


@pytest.mark.parametrize("variant", ["8bit", "float16"])
def test_converted_folder_is_not_a_source(converted, tmp_path, variant):
    with pytest.raises(ValueError, match="convert from the original float32 checkpoint"):
        lid.convert(converted("mms", variant), tmp_path / "again")


def test_float32_folder_is_a_source(converted, tmp_path):
    folder = lid.convert(converted("mms", "float32"), tmp_path / "again", dtype="float16", bound=LOOSE)
    assert recorded(folder)["dtype"] == "float16"


def test_group_size_choice():
    def widths(*sizes):
        model = nn.Module()
        model.layers = [nn.Linear(size, 8) for size in sizes]
        return model

    assert quantization.choose_group_size(widths(128, 64, 20)) == 64  # 20: kept in float
    assert quantization.choose_group_size(widths(128, 96)) == 32
    with pytest.raises(ValueError, match="no Linear layer"):
        quantization.choose_group_size(widths(20, 24))
    model = widths(128, 96, 20)
    split = quantization.parameter_split(model, 32)
    assert split == {"Linear, quantized": 8 * 128 + 8 + 8 * 96 + 8, "Linear, width not a multiple of 32": 8 * 20 + 8}


def test_command_lines(source_folders, tmp_path, capsys):
    """`mlx_audio_lid convert` (cli.py) passes everything to the converter's own command line."""
    arguments = ["--hf-path", str(source_folders["mms"]), "--dtype", "float16", "-q", "--q-bits", "8", "--max-delta", "5"]
    assert cli.main(["convert", *arguments, "--mlx-path", str(tmp_path / "a")]) == 0
    assert "max |Δ log-prob|" in capsys.readouterr().out
    config = recorded(tmp_path / "a")
    assert config["quantization"]["bits"] == 8 and config["conversion"]["fidelity"]["bound"]["max_delta_log_prob"] == 5
    result = subprocess.run([sys.executable, "-m", "mlx_audio_lid", "convert", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--q-group-size" in result.stdout


def test_probe_is_what_make_probe_makes(tmp_path):
    """The committed probe audio is reproducible with the espeak-ng and SoX it records."""
    manifest = fidelity.probe_manifest()
    for tool in ("espeak-ng", "sox"):
        found = subprocess.run([tool, "--version"], capture_output=True, text=True)
        recorded_version = next(line for line in manifest["made_with"] if tool.split("-")[0] in line.lower())
        if found.returncode != 0 or found.stdout.strip().splitlines()[0] != recorded_version:
            pytest.skip(f"{tool} here is not the version the probe was made with ({recorded_version})")
    script = Path(__file__).parents[1] / "conversion" / "make_probe.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], check=True, capture_output=True)
    for entry in manifest["windows"]:
        assert (tmp_path / entry["file"]).read_bytes() == (fidelity.PROBE / entry["file"]).read_bytes()
    assert np.all([np.abs(w).max() > 0.05 for w in fidelity.probe_windows()])  # speech, not silence


def test_card_inherits_the_source_cards_license(source_folders, tmp_path):
    source = tmp_path / "with-card"
    source.mkdir()
    for path in source_folders["mms"].iterdir():
        (source / path.name).write_bytes(path.read_bytes())
    (source / "README.md").write_text("---\nlicense: mit\n---\n# a source card\n", encoding="utf-8")
    folder = lid.convert(source, tmp_path / "out", base_model="someone/tiny-mms")
    card = ModelCard.load(folder / "README.md")
    assert (card.data.license, card.data.base_model) == ("mit", "someone/tiny-mms")
