"""Convert a published checkpoint into a verified MLX folder: load, cast or quantize, save, check.

    mlx_audio_lid convert --hf-path facebook/mms-lid-256 --mlx-path mms-lid-256-8bit \\
        --dtype float16 -q --q-bits 8

(also `python -m mlx_audio_lid convert ...`; `main(argv)` here is that command.)

The source is a Hub id or a local folder in any layout `mlx_audio_lid.load` reads (transformers
MMS-LID, SpeechBrain ECAPA, or a float32 MLX folder). The folder is written under a temporary
name beside the destination, reloaded from disk and run beside the float32 source on the probe
audio (`fidelity.py`); the figures go into config.json and the model card. A conversion that
misses its bound is deleted and fails. An existing destination is never overwritten.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import List, Optional, Union

import mlx.core as mx
from mlx.utils import tree_flatten

from . import cards, fidelity, quantization
from .labels import model_languages
from .loading import DTYPES as LOAD_DTYPES
from .loading import build_model, load, read_source, resolve_folder

DTYPES = tuple(LOAD_DTYPES)  # the float types load() knows
WEIGHTS_FILE = "model.safetensors"


class FidelityError(ValueError):
    """The converted model missed its fidelity bound; nothing was written."""


def variant_name(dtype: str, quantize: bool, q_bits: int) -> str:
    """The key of DEFAULT_BOUNDS: "8bit"/"4bit" when quantized, else the dtype."""
    return f"{q_bits}bit" if quantize else dtype


def _float32_reference(config: dict, weights: dict):
    if config.get("quantization") or config.get("quantization_config"):
        raise ValueError("the source is already quantized: convert from the original float32 checkpoint")
    reference = build_model(config, weights)
    dtypes = {str(v.dtype) for _, v in tree_flatten(reference.parameters()) if mx.issubdtype(v.dtype, mx.floating)}
    if dtypes != {"mlx.core.float32"}:
        raise ValueError(
            f"the source's weights are {', '.join(sorted(dtypes))}: fidelity is measured against a float32 "
            "source, so convert from the original float32 checkpoint"
        )
    return reference


def convert(
    hf_path: Union[str, Path],
    mlx_path: Union[str, Path],
    *,
    revision: Optional[str] = None,
    dtype: str = "float32",
    quantize: bool = False,
    q_bits: int = 4,
    q_group_size: Optional[int] = None,
    upload_repo: Optional[str] = None,
    base_model: Optional[str] = None,
    repo_id: Optional[str] = None,
    bound: Optional[fidelity.Bound] = None,
) -> Path:
    """Convert `hf_path` into a new MLX folder `mlx_path` and verify it against the float32 source.

    dtype: the float type of every weight that is not quantized (and of the quantization scales).
    quantize: quantize the Linear layers to `q_bits` (4 or 8) in groups of `q_group_size` (32, 64,
    128; by default 64, or 32 where a layer's width needs it); see `quantization.py` for what
    stays in float. bound: the fidelity the folder must reach (default: `fidelity.DEFAULT_BOUNDS`
    for this variant). base_model: the Hub id named in the model card (default: `hf_path` when it
    is not a local folder). upload_repo: upload the folder to this Hub repo once it is verified.
    repo_id: the Hub id the card's examples load (default: upload_repo, else the folder's name).
    """
    destination = Path(mlx_path)
    if destination.exists():
        raise FileExistsError(f"{destination} already exists; choose a new folder")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    variant = variant_name(dtype, quantize, q_bits)
    bound = bound or fidelity.DEFAULT_BOUNDS[variant]
    local = Path(hf_path).exists()
    source = resolve_folder(hf_path, revision)
    if base_model is None and not local:
        base_model = str(hf_path)

    config, weights = read_source(source)
    reference = _float32_reference(config, weights)
    model = build_model(config, weights)  # shares the reference's arrays until cast
    del weights
    if dtype != "float32":
        model.set_dtype(LOAD_DTYPES[dtype])
    config = dict(config, dtype=dtype)
    config.pop("torch_dtype", None)
    split = None
    if quantize:
        group_size = q_group_size or quantization.choose_group_size(model)
        split = quantization.parameter_split(model, group_size)
        config["quantization"] = quantization.quantize(model, q_bits, group_size)
    weights = dict(tree_flatten(model.parameters()))
    del model

    destination.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    os.chmod(work, 0o777 & ~_umask())  # mkdtemp makes it private; the folder is meant to be shared
    try:
        mx.save_safetensors(str(work / WEIGHTS_FILE), weights, metadata={"format": "mlx"})
        del weights
        _write_config(work, config)
        figures, seconds = fidelity.compare(reference, load(work))
        config["conversion"] = {
            "source": None if local else str(hf_path),  # a Hub id; of a local folder only its name,
            "source_folder": source.name if local else None,  # so that no local path is published
            "revision": revision,
            "base_model": base_model,
            "variant": variant,
            "mlx_audio_lid": _version("mlx-audio-lid"),
            "mlx": _version("mlx"),
            "fidelity": {
                **figures.as_dict(),
                "bound": asdict(bound),
                "reference": "the float32 source, loaded by mlx_audio_lid",
                "probe": fidelity.probe_summary(),
                "device": str(mx.default_device()),
            },
        }
        if not figures.meets(bound):
            raise FidelityError(
                f"{variant} conversion of {hf_path} misses its bound: max |Δ log-prob| "
                f"{figures.max_abs_delta_log_prob:.3g} (bound {bound.max_delta_log_prob:g}), top-1 agreement "
                f"{figures.top1_agreement:.0%} (bound {bound.min_top1_agreement:.0%}); nothing was written"
            )
        _write_config(work, config)
        cards.write_card(
            work, config, repo_id=repo_id or upload_repo or destination.name,
            license=cards.source_license(source, config["model_type"]), languages=model_languages(reference),
            total_parameters=sum(v.size for _, v in tree_flatten(reference.parameters())),
            parameters=split, seconds=seconds,
        )
        if destination.exists():
            raise FileExistsError(f"{destination} appeared during the conversion; it was left alone")
        os.rename(work, destination)
    finally:
        if work.exists():
            shutil.rmtree(work)  # never leave a half-written or failed folder behind
    if upload_repo:
        from .upload import upload

        upload(destination, upload_repo)
    return destination


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:  # e.g. run from a source checkout on PYTHONPATH
        return "not installed"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_config(folder: Path, config: dict) -> None:
    with open(folder / "config.json", "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, sort_keys=True, ensure_ascii=False)
        f.write("\n")


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in Path(folder).rglob("*") if path.is_file())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlx_audio_lid convert",
        description="Convert an MMS-LID or SpeechBrain language-ID checkpoint into a verified MLX folder.",
    )
    parser.add_argument("--hf-path", required=True, help="Hub repo id or local folder of the source checkpoint")
    parser.add_argument("--mlx-path", default="mlx_model", help="new folder to write (never overwritten)")
    parser.add_argument("--revision", default=None, help="Hub revision of the source")
    parser.add_argument("--dtype", choices=DTYPES, default="float32", help="float type of the weights kept in float")
    parser.add_argument("-q", "--quantize", action="store_true", help="quantize the Linear layers")
    parser.add_argument("--q-bits", type=int, choices=quantization.BITS, default=4, help="bits per quantized weight")
    parser.add_argument(
        "--q-group-size", type=int, choices=quantization.GROUP_SIZES, default=None,
        help="quantization group size (default: 64, or 32 where a layer's width needs it)",
    )
    parser.add_argument("--upload-repo", default=None, help="Hub repo (ORG/NAME) to upload the verified folder to")
    parser.add_argument("--base-model", default=None, help="Hub id of the source for the model card")
    parser.add_argument("--max-delta", type=float, default=None, help="bound on max |Δ log-prob| vs float32")
    parser.add_argument("--min-agreement", type=float, default=None, help="bound on top-1 agreement (0-1)")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    default = fidelity.DEFAULT_BOUNDS[variant_name(args.dtype, args.quantize, args.q_bits)]
    bound = fidelity.Bound(
        default.max_delta_log_prob if args.max_delta is None else args.max_delta,
        default.min_top1_agreement if args.min_agreement is None else args.min_agreement,
    )
    try:
        folder = convert(
            args.hf_path, args.mlx_path, revision=args.revision, dtype=args.dtype, quantize=args.quantize,
            q_bits=args.q_bits, q_group_size=args.q_group_size, upload_repo=args.upload_repo,
            base_model=args.base_model, bound=bound,
        )
    except (FileExistsError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    figures = json.loads((folder / "config.json").read_text(encoding="utf-8"))["conversion"]["fidelity"]
    print(
        f"wrote {folder} ({folder_bytes(folder) / 1e6:.1f} MB): max |Δ log-prob| "
        f"{figures['max_abs_delta_log_prob']:.3g}, top-1 agreement {figures['top1_agreement']:.0%} "
        f"over {figures['windows']} probe windows"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
