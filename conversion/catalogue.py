"""Convert the whole catalogue into an mlx-community-ready tree, and upload it when asked.

    python conversion/catalogue.py --out TREE [--org mlx-community] [--only mms-lid-256 ...]
                                   [--sources DIR] [--upload [--dry-run]]

The six MMS-LID sizes in float16, 8-bit and 4-bit (quantized Linear layers, the rest float16),
and the two SpeechBrain models in float16. SpeechBrain's ECAPA-TDNN has no quantized variants:
MLX quantizes Linear layers only, which hold under 1 % of its weights (the rest are
convolutions), so an 8- or 4-bit folder would be as large as the float16 one.

Each variant goes to TREE/<org>/<source name>-<variant>/, named as its Hub repo, through
`mlx_audio_lid.convert` (verified against the float32 source; the card names the repo). A
folder that already exists is kept as it is (conversions never overwrite), so an interrupted
run resumes; a variant that misses its fidelity bound is left out. TREE/catalogue.json and
TREE/CATALOGUE.md list every entry with its status, size and fidelity.

Each variant must reach convert's default fidelity bound for it, unless --bound states another
(e.g. --bound fp16=0.2 4bit=3,0.9: max |Δ log-prob|, and top-1 agreement). On the random-weight
full-size model the 4-bit variant misses its default bound (benchmarks/results/
quantization_mms_h100.md); with real weights it is published only if it holds.

Run it where MLX is fast with float16 (Apple silicon, or MLX's CUDA build): every folder is
verified on the probe, and MLX's Linux CPU kernels for float16-scaled quantized matmuls are slow
(0.05 GFLOP/s measured on a 2-core EPYC, 1.6 with float32 scales), so a full-size 8- or 4-bit
verification there takes hours.

--sources DIR reads each source from DIR/<source name> (a local copy in the published layout)
instead of the Hub. --upload uploads every folder in the tree with huggingface_hub; with
--dry-run it prints what would be uploaded (huggingface_hub's own commit plan) and sends nothing.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional

import mlx_audio_lid  # noqa: F401  (before mlx.core: the optimized CPU BLAS on Linux)
from mlx_audio_lid.converter import FidelityError, convert, folder_bytes, variant_name
from mlx_audio_lid.fidelity import DEFAULT_BOUNDS, Bound
from mlx_audio_lid.upload import upload

MMS_LID = [f"facebook/mms-lid-{n}" for n in (126, 256, 512, 1024, 2048, 4017)]
SPEECHBRAIN = ["speechbrain/lang-id-voxlingua107-ecapa", "speechbrain/lang-id-commonlanguage_ecapa"]
# variant suffix -> convert() options (mlx-community's names: -fp16, -8bit, -4bit)
VARIANTS: Dict[str, dict] = {
    "fp16": dict(dtype="float16"),
    "8bit": dict(dtype="float16", quantize=True, q_bits=8),
    "4bit": dict(dtype="float16", quantize=True, q_bits=4),
}
CATALOGUE: Dict[str, List[str]] = {
    **{source: ["fp16", "8bit", "4bit"] for source in MMS_LID},
    **{source: ["fp16"] for source in SPEECHBRAIN},
}


def entries(org: str, only: Optional[List[str]] = None) -> List[dict]:
    chosen = []
    for source, variants in CATALOGUE.items():
        name = source.split("/")[-1]
        if only and name not in only:
            continue
        chosen += [{"source": source, "variant": v, "repo_id": f"{org}/{name}-{v}"} for v in variants]
    return chosen


def default_bound(variant: str) -> Bound:
    options = VARIANTS[variant]
    return DEFAULT_BOUNDS[variant_name(options["dtype"], options.get("quantize", False), options.get("q_bits", 0))]


def parse_bound(text: str) -> tuple:
    """`4bit=3` or `4bit=3,0.5` -> ("4bit", Bound(3, default agreement or 0.5))."""
    variant, _, value = text.partition("=")
    if variant not in VARIANTS or not value:
        raise ValueError(f"--bound {text}: expected VARIANT=MAX_DELTA[,MIN_AGREEMENT], VARIANT one of {', '.join(VARIANTS)}")
    delta, _, agreement = value.partition(",")
    default = default_bound(variant)
    return variant, Bound(float(delta), float(agreement) if agreement else default.min_top1_agreement)


def build(tree: Path, org: str, sources: Optional[Path], only: Optional[List[str]], bounds: Dict[str, Bound]) -> List[dict]:
    """Convert every missing entry; return each entry with its status and figures."""
    results = []
    for entry in entries(org, only):
        folder = tree / entry["repo_id"]
        source = sources / entry["source"].split("/")[-1] if sources else entry["source"]
        if folder.exists():
            entry["status"] = "exists"
        else:
            print(f"converting {entry['source']} -> {entry['repo_id']}", flush=True)
            try:
                convert(source, folder, base_model=entry["source"], repo_id=entry["repo_id"],
                        bound=bounds.get(entry["variant"]) or default_bound(entry["variant"]), **VARIANTS[entry["variant"]])
                entry["status"] = "converted"
            except FidelityError as error:
                entry["status"] = f"left out: {error}"
        if folder.exists():
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            entry["bytes"] = folder_bytes(folder)
            entry["fidelity"] = {k: config["conversion"]["fidelity"][k] for k in ("max_abs_delta_log_prob", "top1_agreement", "windows", "bound")}
        results.append(entry)
    return results


def summary(results: List[dict]) -> str:
    lines = ["| repo | source | status | size | max abs Δ log-prob | top-1 agreement |", "|---|---|---|---|---|---|"]
    for e in results:
        f = e.get("fidelity")
        figures = [f"{f['max_abs_delta_log_prob']:.3g}", f"{round(f['top1_agreement'] * f['windows'])}/{f['windows']}"] if f else ["", ""]
        size = f"{e['bytes'] / 1e6:,.1f} MB" if "bytes" in e else ""
        lines.append("| " + " | ".join([e["repo_id"], e["source"], e["status"], size] + figures) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the tree: <out>/<org>/<repo name>/")
    parser.add_argument("--org", default="mlx-community")
    parser.add_argument("--only", nargs="+", default=None, help="source names to convert (e.g. mms-lid-256)")
    parser.add_argument("--sources", type=Path, default=None, help="local copies of the sources, as <dir>/<source name>")
    parser.add_argument(
        "--bound", nargs="+", default=[], metavar="VARIANT=MAX_DELTA[,MIN_AGREEMENT]",
        help=f"fidelity bound of a variant ({', '.join(VARIANTS)}) instead of convert's default, e.g. 4bit=3,0.9",
    )
    parser.add_argument("--upload", action="store_true", help="upload every folder of the tree")
    parser.add_argument("--dry-run", action="store_true", help="with --upload: print the upload plan, send nothing")
    args = parser.parse_args(argv)
    if args.dry_run and not args.upload:
        parser.error("--dry-run plans an upload: give --upload too")

    try:
        bounds = dict(parse_bound(text) for text in args.bound)
    except ValueError as error:
        parser.error(str(error))
    results = build(args.out, args.org, args.sources, args.only, bounds)
    (args.out / "catalogue.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (args.out / "CATALOGUE.md").write_text(summary(results), encoding="utf-8")
    print(summary(results))
    if args.upload:
        for entry in results:
            if "bytes" in entry:
                upload(args.out / entry["repo_id"], entry["repo_id"], dry_run=args.dry_run)
    return 0 if all("bytes" in e for e in results) else 1


if __name__ == "__main__":
    sys.exit(main())
