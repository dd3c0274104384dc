"""Whisper's answers on the recorded clips (../shared/real/speech), this package beside faster-whisper.

Per clip: the true language (the file name's prefix), `identify()`'s answer (its default: the
recording whole up to 30 s, else 30 s windows every 15 s averaged over the speech), the
first-30-s answer (`whisper_lid.detect_language`, faster-whisper's rule and the model's own
output for one pass), and faster-whisper's `detect_language` (CTranslate2 float32).

    python -m benchmarks.accuracy_whisper [--model CT2_OR_MLX_FOLDER] [--dtype float32]
"""

import argparse
import os
import subprocess
from pathlib import Path

import mlx_audio_lid as lid  # first: it puts an optimized BLAS under MLX on Linux CPUs

import soundfile as sf  # noqa: E402

from mlx_audio_lid.models.whisper_lid import detect_language  # noqa: E402

from .common import machine_description, markdown_table  # noqa: E402

SHARED = Path(os.environ.get("MLX_AUDIO_LID_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
CACHE = Path(os.environ.get("MLX_AUDIO_LID_REAL_CACHE", Path.home() / ".cache" / "mlx-audio-lid-real"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="a Whisper folder (default: fetch Whisper base, CTranslate2 layout)")
    parser.add_argument("--reference", type=Path, help="the CTranslate2 folder faster-whisper runs (default: --model)")
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()
    if args.model is None:
        done = subprocess.run([str(SHARED / "real" / "get-whisper-base"), str(CACHE / "whisper-base-ct2")],
                              capture_output=True, text=True, check=True)
        args.model = Path(done.stdout.strip().splitlines()[-1])
    from faster_whisper import WhisperModel

    reference = WhisperModel(str(args.reference or args.model), device="cpu", compute_type="float32")
    model = lid.load(args.model, dtype=args.dtype)
    rows, right = [], [0, 0, 0]
    paths = sorted((SHARED / "real" / "speech").glob("*.wav"))
    for path in paths:
        truth = path.name.split("_")[0]
        samples, _ = sf.read(path, dtype="float32")
        whole = lid.identify(model, samples)
        first, first_p, _ = detect_language(model, samples)
        theirs, theirs_p, _ = reference.detect_language(samples)
        for i, answer in enumerate((whole.language, first, theirs)):
            right[i] += answer == truth
        rows.append([path.name, f"{len(samples) / 16000:.1f}", truth, f"{whole.language} {whole.probability:.4f}",
                     f"{first} {first_p:.4f}", f"{theirs} {theirs_p:.4f}"])
    rows.append(["**right**", "", "", f"{right[0]}/{len(paths)}", f"{right[1]}/{len(paths)}", f"{right[2]}/{len(paths)}"])
    print(f"Whisper language ID on the recorded clips ({args.model.name}, MLX {args.dtype})\n\n"
          f"Machine: {machine_description()}\n")
    print(markdown_table(["clip", "s", "true", "identify()", "first 30 s (detect_language)", "faster-whisper"], rows))


if __name__ == "__main__":
    main()
