"""Full-size MMS-LID parity: the mms-lid-256 architecture with random weights, transformers vs this package.

Builds Wav2Vec2ForSequenceClassification at the published size (964 M parameters) in
transformers, saves it in the Hub layout (config.json, model.safetensors,
preprocessor_config.json), loads that folder with `mlx_audio_lid.load`, and prints max |Δ logit|
and top-1 agreement for a 10 s clip, a 30 s clip and a padded batch of three lengths (float32).

    python -m benchmarks.parity_mms [--work-dir DIR]

Needs ~16 GB of memory and ~8 GB of disk.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import mlx_audio_lid as lid  # first: on Linux it puts an optimized BLAS under MLX

import mlx.core as mx  # noqa: E402
import numpy as np  # noqa: E402

from mlx_audio_lid.identification import pad_batch  # noqa: E402
from references import mms as ref  # noqa: E402  (the same builder the tests use)
from references.signals import speechlike_clips  # noqa: E402

from .common import machine_description, markdown_table  # noqa: E402

SECONDS = 16000


def compare(name, ours, expected):
    delta = np.abs(ours - expected).max()
    scale = np.abs(expected).max()
    agree = int((ours.argmax(1) == expected.argmax(1)).sum())
    return [name, f"{delta:.2e}", f"{scale:.2f}", f"{delta / scale:.1e}", f"{agree}/{len(expected)}"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work-dir", type=Path, default=None, help="where to write the 3.9 GB checkpoint")
    parser.add_argument("--num-labels", type=int, default=256)
    args = parser.parse_args()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="parity_mms_"))

    started = time.perf_counter()
    reference = ref.build(ref.mms_lid_config(args.num_labels), seed=0, classifier_gain=30.0)
    folder = ref.save_published_layout(reference, work / "mms-lid-256-random")
    print(f"built and saved the reference in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    model = lid.load(folder)

    clip_10s, clip_30s, clip_4s = speechlike_clips([10 * SECONDS, 30 * SECONDS, 4 * SECONDS], seed=7)
    rows = []
    for name, clip in (("10 s clip", clip_10s), ("30 s clip", clip_30s)):
        expected = ref.reference_logits(reference, [clip])
        rows.append(compare(name, np.array(model(mx.array(clip)[None])), expected))
        print(f"{name} done", file=sys.stderr)
    batch = [clip_30s, clip_10s, clip_4s]
    waveforms, lengths = pad_batch(batch)
    ours = np.array(model(waveforms, lengths))
    rows.append(compare("padded batch 30+10+4 s vs transformers batched (attention_mask)", ours,
                        ref.reference_logits(reference, batch, batched=True)))
    rows.append(compare("padded batch 30+10+4 s vs transformers alone", ours,
                        ref.reference_logits(reference, batch, batched=False)))

    print(f"Machine: {machine_description()}\n")
    print(markdown_table(["case (float32)", "max abs Δ logit", "max abs logit", "relative", "top-1 agree"], rows))
    print(f"\nTotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
