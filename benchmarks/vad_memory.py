"""Silero VAD over a long recording in bounded memory: 2 hours pushed in 30 s blocks.

The audio is made block by block (never whole in memory): the real speech of
../shared/real/speech/ in turn with 10 s of loud music or noise (else speech-like synthetic
signal). It goes through the Windower that identify uses (3 s windows every 1.5 s) with
vad="silero", so what is measured is the VAD's stream plus the windowing around it, without a
language model. Resident memory is read at checkpoints: if the stream held on to audio,
probabilities or graph, the peak would grow with the length.

    python -m benchmarks.vad_memory [--minutes 120]
"""

import argparse
import itertools
import time
from typing import Iterator

import numpy as np

from references import silero as reference
from references.signals import noise_and_music, speechlike_clips

from .common import machine_description, markdown_table

RATE = 16000
BLOCK = 30 * RATE  # samples: identify's decoding block


def memory_mb() -> dict:
    """VmRSS (now) and VmHWM (peak so far) of this process, in MB."""
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                values[line.split(":")[0]] = int(line.split()[1]) / 1024
    return values


def blocks(minutes: float) -> Iterator[np.ndarray]:
    """30 s blocks of speech and loud non-speech, `minutes` long in all."""
    import soundfile

    pieces = [soundfile.read(path, dtype="float32")[0] for path in reference.real_speech()]
    pieces = pieces or speechlike_clips([20 * RATE] * 4)
    pieces += list(noise_and_music(10.0).values())
    source = itertools.cycle(pieces)
    left, pending = int(minutes * 60 * RATE), np.zeros(0, np.float32)
    while left > 0:
        while len(pending) < BLOCK:
            pending = np.concatenate([pending, next(source)])
        block, pending = pending[: min(BLOCK, left)], pending[BLOCK:]
        left -= len(block)
        yield block


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=120.0)
    args = parser.parse_args()

    import mlx_audio_lid  # noqa: F401  first: on Linux it puts an optimized BLAS under MLX's CPU build
    import mlx.core as mx

    from mlx_audio_lid.timeline import Windower
    from mlx_audio_lid.vad.silero import SileroVAD

    vad = SileroVAD()
    before = memory_mb()
    windower = Windower(3 * RATE, 3 * RATE // 2, vad)
    checkpoints = [m for m in (1, 15, 30, 60) if m < args.minutes]
    rows, windows, started = [], 0, time.perf_counter()
    mx.reset_peak_memory()

    def row(label: str) -> list:
        memory = memory_mb()
        return [label, windows, f"{windower.sound.sum() * vad.frame / RATE / 60:.1f} min", f"{memory['VmRSS']:.0f} MB",
                f"{memory['VmHWM']:.0f} MB", f"{mx.get_peak_memory() / 2**20:.0f} MB",
                f"{time.perf_counter() - started:.0f} s"]

    for _ in windower.windows(blocks(args.minutes)):
        windows += 1
        if checkpoints and windower.total >= checkpoints[0] * 60 * RATE:
            rows.append(row(f"{checkpoints.pop(0):g} min"))
    rows.append(row(f"{windower.total / RATE / 60:g} min (all)"))
    print(f"Machine: {machine_description()}\n")
    print(f"Before the first block (model loaded): RSS {before['VmRSS']:.0f} MB, peak {before['VmHWM']:.0f} MB\n")
    print(markdown_table(["audio pushed", "windows", "speech (Silero)", "RSS", "peak RSS so far", "MLX peak",
                          "wall"], rows))


if __name__ == "__main__":
    main()
