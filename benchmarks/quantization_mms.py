"""Full-size MMS-LID converted at each precision: folder size and fidelity against float32.

Runs `mlx_audio_lid.convert` (what `mlx_audio_lid convert` runs) on a published-layout
checkpoint of the mms-lid-256 architecture with random weights (benchmarks/parity_mms.py saves
one), once per variant, with no fidelity bound so every figure is recorded, and writes a
markdown table of the figures each folder's config.json holds.

    python -m benchmarks.quantization_mms --source DIR/mms-lid-256-random \\
        --work-dir DIR/quantization [--variants float32 float16 bfloat16 8bit 4bit]

On a CPU, MLX's quantized kernels are fast only with float32 activations (here a 150x1280x1280
product took 0.3 s with float32 scales, 9 s with float16 ones), so the quantized variants keep
their other weights in float32 here (`--quantized-dtype`); on Apple GPUs the catalogue uses
float16. Needs ~10 GB of memory and ~10 GB of disk.

results/quantization_mms_h100.md is the same run on an H100 (MLX's CUDA build staged as
shared/gpu/README.md says, this checkout on PYTHONPATH) with `--quantized-dtype float16`, the
catalogue's setting; the checkpoint was rebuilt there as parity_mms.py builds it
(`references.mms.build(mms_lid_config(256), seed=0, classifier_gain=30.0)`, torch 2.11).
"""

import argparse
import json
import sys
from pathlib import Path

import mlx_audio_lid  # noqa: F401  (before mlx.core: the optimized CPU BLAS)
from mlx_audio_lid.converter import convert, folder_bytes
from mlx_audio_lid.fidelity import DEFAULT_BOUNDS, Bound, Fidelity

from .common import machine_description, markdown_table

VARIANTS = ("float32", "float16", "bfloat16", "8bit", "4bit")
NO_BOUND = Bound(float("inf"), 0.0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, required=True, help="published-layout MMS-LID folder")
    parser.add_argument("--work-dir", type=Path, required=True, help="where the converted folders go (new names)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--quantized-dtype", choices=("float32", "float16", "bfloat16"), default="float32")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "quantization_mms_cpu.md")
    args = parser.parse_args(argv)

    rows = []
    for variant in args.variants:
        quantized = variant.endswith("bit")
        options = dict(dtype=args.quantized_dtype, quantize=True, q_bits=int(variant[0])) if quantized else dict(dtype=variant)
        folder = args.work_dir / f"mms-lid-256-{variant}"
        if not folder.exists():  # a folder converted by an earlier run is read, not converted again
            convert(args.source, folder, bound=NO_BOUND, **options)
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        figures = config["conversion"]["fidelity"]
        quantization = config.get("quantization")
        default = DEFAULT_BOUNDS[variant]
        measured = Fidelity(figures["max_abs_delta_log_prob"], figures["top1_agreement"], figures["windows"])
        rows.append([
            variant,
            config["dtype"],
            f"{quantization['bits']}-bit, group {quantization['group_size']}" if quantization else "none",
            f"{folder_bytes(folder) / 1e9:.3f} GB",
            f"{figures['max_abs_delta_log_prob']:.3g}",
            f"{round(figures['top1_agreement'] * figures['windows'])}/{figures['windows']}",
            f"≤ {default.max_delta_log_prob:g}, ≥ {default.min_top1_agreement:.0%}",
            "yes" if measured.meets(default) else "no",
        ])
        print(" | ".join(rows[-1]), flush=True)

    table = markdown_table(
        ["variant", "float weights", "quantized Linear layers", "folder size", "max abs Δ log-prob vs float32",
         "top-1 agree", "default bound", "within it"],
        rows,
    )
    command = "python -m benchmarks.quantization_mms " + " ".join(sys.argv[1:] if argv is None else argv)
    text = (
        "# Full-size MMS-LID at each precision (mms-lid-256 architecture, random weights)\n\n"
        f"Machine: {machine_description()}\n\nCommand: `{command}`\n\n{table}\n\n"
        "Fidelity is measured as every folder's config.json records it: the folder reloaded from disk against the "
        "float32 source, on the probe audio (8 windows of 2 s of espeak-ng speech, one batch), max over every "
        "window and label. A folder already in --work-dir is read, not converted again: its figures are those "
        "recorded when it was converted.\n"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
