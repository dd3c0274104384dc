"""Model cards: the family's template (`models/<family>/card.md`) rendered into a converted folder's README.md.

The front matter is written by huggingface_hub's `ModelCardData` (library, license inherited
from the source, base model, tags, pipeline tag); the body gives usage with mlx-audio and with
this package, what was quantized and what kept in float, the fidelity measured at conversion,
the folder's size, the probe's wall time, and every label with its ISO 639-3 code and name.
"""

import platform
from pathlib import Path
from string import Template
from typing import Dict, Mapping, Optional

import mlx.core as mx
from huggingface_hub import ModelCardData
from huggingface_hub.repocard import metadata_load

from . import registry
from .labels import LanguageInfo


def source_license(source: Path, model_type: str) -> str:
    """The source card's `license`, else the family's (a local copy without its card)."""
    card = source / "README.md"
    metadata = metadata_load(card) if card.exists() else None
    return (metadata or {}).get("license") or registry.family(model_type).license


def front_matter(config: dict, license: str) -> str:
    conversion = config["conversion"]
    tags = ["mlx", "mlx-audio", "mlx-audio-lid", "audio-classification", "language-identification", "speech"]
    tags += list(registry.family(config["model_type"]).tags)
    extra = {}
    if "quantization" in config:
        tags.append(f"{config['quantization']['bits']}-bit")
        extra["base_model_relation"] = "quantized"
    data = ModelCardData(
        library_name="mlx-audio",
        license=license,
        base_model=conversion.get("base_model"),
        pipeline_tag="audio-classification",
        tags=tags,
        **extra,
    )
    return data.to_yaml()


def _megabytes(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def precision_table(config: dict, parameters: Optional[Mapping[str, int]]) -> str:
    rows = [f"| weights kept in float | {config['dtype']} |"]
    if "quantization" in config:
        q = config["quantization"]
        rows.insert(0, f"| quantization | {q['bits']}-bit {q['mode']}, group size {q['group_size']} (MLX `nn.quantize`) |")
    for kind, count in (parameters or {}).items():
        rows.append(f"| {kind} | {count:,} parameters |")
    return "| | |\n|---|---|\n" + "\n".join(rows)


def label_table(languages: Mapping[str, LanguageInfo]) -> str:
    rows = [f"| {i} | `{info.label}` | {info.code} | {info.name} |" for i, info in enumerate(languages.values())]
    return "| index | model label | ISO 639-3 | English name |\n|---|---|---|---|\n" + "\n".join(rows)


def fidelity_text(config: dict) -> str:
    figures = config["conversion"]["fidelity"]
    probe, bound = figures["probe"], figures["bound"]
    agree = round(figures["top1_agreement"] * figures["windows"])
    return (
        "| | measured | bound |\n|---|---|---|\n"
        f"| max \\|Δ log-probability\\| | {figures['max_abs_delta_log_prob']:.3g} | ≤ {bound['max_delta_log_prob']:g} |\n"
        f"| top-1 agreement | {agree}/{figures['windows']} | ≥ {bound['min_top1_agreement']:.0%} |\n\n"
        f"Measured at conversion against {figures['reference']}, on the probe: {probe['windows']} windows of "
        f"{probe['window_seconds']:g} s of espeak-ng speech ({', '.join(probe['languages'])}; sha256 "
        f"`{probe['sha256'][:16]}…`), one batch, MLX device `{figures['device']}`. The maximum is over every "
        "window and every label, the least probable included."
    )


def speed_text(seconds: Optional[Mapping[str, float]], config: dict) -> str:
    if not seconds:
        return "Not measured."
    probe = config["conversion"]["fidelity"]["probe"]
    audio = probe["windows"] * probe["window_seconds"]
    return (
        f"One batch of the {probe['windows']} probe windows ({audio:g} s of audio), first call, on the machine that "
        f"converted it ({platform.system()} {platform.machine()}, MLX device `{mx.default_device()}`): "
        f"{seconds['converted_s']:.2f} s for this folder, {seconds['reference_s']:.2f} s for the float32 source."
    )


def write_card(
    folder: Path,
    config: dict,
    *,
    repo_id: str,
    license: str,
    languages: Mapping[str, LanguageInfo],
    total_parameters: int,
    parameters: Optional[Dict[str, int]] = None,
    seconds: Optional[Mapping[str, float]] = None,
) -> Path:
    """Render the family's template into `folder`/README.md (after the weights are written)."""
    conversion = config["conversion"]
    weights = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
    base = conversion.get("base_model")
    named = base or conversion["source"] or conversion["source_folder"]
    template = registry.family(config["model_type"]).card_template
    text = Template(template.read_text(encoding="utf-8")).substitute(
        front_matter=front_matter(config, license).strip(),
        repo_id=repo_id,
        base_model=base or "the original",
        base_model_link=f"[{base}](https://huggingface.co/{base})" if base else f"`{named}`",
        license=license,
        num_labels=len(languages),
        total_parameters=f"{total_parameters / 1e6:,.1f} M" if total_parameters >= 1e6 else f"{total_parameters:,}",
        variant=conversion["variant"],
        convert_command=convert_command(conversion, config, repo_id),
        precision_table=precision_table(config, parameters),
        weights_size=_megabytes(weights),
        fidelity=fidelity_text(config),
        speed=speed_text(seconds, config),
        labels=label_table(languages),
        mlx_audio_lid_version=conversion["mlx_audio_lid"],
        mlx_version=conversion["mlx"],
    )
    path = folder / "README.md"
    path.write_text(text, encoding="utf-8")
    return path


def convert_command(conversion: dict, config: dict, repo_id: str) -> str:
    source = conversion.get("base_model") or conversion["source"] or f"path/to/{conversion['source_folder']}"
    words = ["mlx_audio_lid convert", f"--hf-path {source}"]
    if conversion.get("revision"):
        words.append(f"--revision {conversion['revision']}")
    words.append(f"--mlx-path {repo_id.split('/')[-1]} --dtype {config['dtype']}")
    if "quantization" in config:
        q = config["quantization"]
        words.append(f"-q --q-bits {q['bits']} --q-group-size {q['group_size']}")
    return " ".join(words)
