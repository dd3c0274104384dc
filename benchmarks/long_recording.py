"""A long recording through `identify(..., segments=True)`: time and peak memory per family.

Writes a synthetic recording (a 16 kHz 16-bit WAV: speech-like harmonics under noise, 20 s
stretches separated by 5 s of silence), builds each family at its published size with random
weights (ECAPA as speechbrain/lang-id-voxlingua107-ecapa, MMS-LID as facebook/mms-lid-256; no
download, no transformers), and runs the file through `identify` with the default windows in
a fresh process per family, so each peak is that family's alone.

    python -m benchmarks.long_recording [--ecapa-minutes 120] [--mms-minutes 120]

Peak memory is the process's peak resident set (ru_maxrss), which includes the model's
weights; "after load" is the resident set once the model is built, before any audio; "MLX
peak" is MLX's own peak allocation during identify (GPU memory on a GPU).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from references import sizes

from .common import machine_description, markdown_table

RATE = 16000
SPEECH_SECONDS, SILENCE_SECONDS = 20, 5
CONFIGS = {"ecapa": sizes.voxlingua107_ecapa, "mms": sizes.mms_lid}  # speechbrain/lang-id-voxlingua107-ecapa, facebook/mms-lid-256


def write_recording(path: Path, seconds: int, seed: int = 0) -> None:
    """Speech-like stretches and silences, written block by block (never the whole in memory)."""
    rng = np.random.default_rng(seed)
    period = SPEECH_SECONDS + SILENCE_SECONDS
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        for begin in range(0, seconds, period):
            speech = min(SPEECH_SECONDS, seconds - begin)
            t = np.arange(speech * RATE) / RATE
            f0 = rng.uniform(100, 220) + 30 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t)
            phase = 2 * np.pi * np.cumsum(f0) / RATE
            voice = sum(np.sin(k * phase) / k for k in range(1, 6)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)
            block = 0.2 * voice + 0.01 * rng.standard_normal(len(t))
            silence = np.zeros(min(SILENCE_SECONDS, seconds - begin - speech) * RATE)
            samples = np.concatenate([block, silence])
            out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_family(family: str, path: str, dtype: str, compile: bool = False, batch: int = 8) -> dict:
    """In a fresh process: build the model, run the file, report time and memory as JSON."""
    import mlx_audio_lid as lid  # first: on Linux it puts an optimized BLAS under MLX's CPU build

    import mlx.core as mx
    from mlx.utils import tree_flatten

    from .common import random_model

    model = random_model(CONFIGS[family](), dtype)
    mx.reset_peak_memory()
    weight_mb = sum(v.nbytes for _, v in tree_flatten(model.parameters())) / 2**20
    after_load = rss_mb()
    started = time.perf_counter()
    prediction = lid.identify(model, path, segments=True, batch_size=batch, compile=compile,
                              vad="energy")  # synthetic speech: Silero finds none
    seconds = time.perf_counter() - started
    return {
        "duration": prediction.duration, "speech": prediction.speech, "seconds": seconds,
        "segments": len(prediction.segments), "weights_mb": weight_mb, "after_load_mb": after_load,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "mlx_peak_mb": mx.get_peak_memory() / 2**20,  # MLX's own arrays: GPU memory on a GPU
        "language": prediction.language,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ecapa-minutes", type=int, nargs="*", default=[120], help="recording lengths to run")
    parser.add_argument("--mms-minutes", type=int, nargs="*", default=[120], help="recording lengths to run")
    parser.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float32")
    parser.add_argument("--compile", action="store_true", help="identify(compile=True): the compiled forward")
    parser.add_argument("--batch", type=int, default=8, help="identify's batch_size (windows per forward pass)")
    parser.add_argument("--child", choices=["ecapa", "mms"], help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_family(args.child, args.path, args.dtype, args.compile, args.batch)))
        return

    work = Path(tempfile.mkdtemp(prefix="long_recording_"))
    rows, notes = [], []
    runs = [("ecapa", m) for m in args.ecapa_minutes] + [("mms", m) for m in args.mms_minutes]
    for family, minutes in runs:
        path = work / f"recording_{minutes}min.wav"
        if not path.exists():
            write_recording(path, minutes * 60)
        load = os.getloadavg()[0]
        print(f"{family}: {minutes} min recording ({path.stat().st_size / 2**20:.0f} MB WAV)...", file=sys.stderr)
        done = subprocess.run([sys.executable, "-m", __spec__.name, "--child", family, "--path", str(path),
                               "--dtype", args.dtype, "--batch", str(args.batch)] + (["--compile"] if args.compile else []),
                              check=True, capture_output=True, text=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        name = "ECAPA-TDNN (VoxLingua107 size)" if family == "ecapa" else "MMS-LID-256 size"
        rows.append([
            name, f"{result['duration'] / 60:.0f} min", f"{result['speech'] / 60:.1f} min",
            f"{result['seconds']:.1f} s", f"{result['duration'] / result['seconds']:.1f}x",
            result["segments"], f"{result['weights_mb']:.0f} MB", f"{result['after_load_mb']:.0f} MB",
            f"{result['peak_mb']:.0f} MB", f"{result['mlx_peak_mb']:.0f} MB", f"{load:.1f} / {os.getloadavg()[0]:.1f}",
        ])
        print(f"{family}: {result}", file=sys.stderr)
        if minutes < 120 and minutes == max(m for f, m in runs if f == family):
            hours = 120 * 60 / (result["duration"] / result["seconds"]) / 3600
            notes.append(f"{name} ran on {minutes} min, not 2 hours: at {result['duration'] / result['seconds']:.2f}x "
                         f"real time on this machine, 2 hours would take about {hours:.1f} h.")
    print(f"Machine: {machine_description()}\n")
    print(markdown_table([f"model (random weights, {args.dtype}{', compiled' if args.compile else ''}, batch {args.batch})", "recording", "sound (VAD)", "wall time",
                          "x real time", "segments", "weights", "RSS after load", "peak RSS",
                          "MLX peak", "load avg before / after"], rows))
    for note in notes:
        print(f"\n{note}")


if __name__ == "__main__":
    main()
