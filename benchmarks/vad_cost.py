"""What voice activity detection costs per hour of audio: energy, Silero on MLX, and Silero's reference.

Rows, all on the same audio in the same run: the energy VAD (numpy); Silero on MLX as
SileroVAD runs it (a block's frames batched through the front end, the LSTM along them), on each
MLX device asked for; mlx-audio's own Silero loop (`Model.predict_proba`, one frame per call);
and Silero's reference, its ONNX file on onnxruntime frame by frame on one CPU thread, as
silero-vad's OnnxWrapper runs it. Audio is pushed in 30 s blocks, as identify streams a file.

    python -m benchmarks.vad_cost [--minutes 10] [--devices cpu gpu]

Each row is the fastest of `--repeats` runs. The audio is the real speech in ../shared/real/speech/ end to end, repeated to length (else
speech-like synthetic signal). onnxruntime's row needs silero-vad and onnxruntime ([test]).
"""

import argparse
import os
import time

import numpy as np

from references import silero as reference
from references.signals import speechlike_clips

from .common import machine_description, markdown_table

RATE = 16000
BLOCK = 30 * RATE  # samples: identify's decoding block


def audio(minutes: float) -> np.ndarray:
    n = int(minutes * 60 * RATE)
    paths = reference.real_speech()
    if not paths:  # a machine without ../shared (the lent GPU): soundfile may be missing too
        return speechlike_clips([n])[0]
    import soundfile

    clips = [soundfile.read(path, dtype="float32")[0] for path in paths]
    speech = np.concatenate(clips)
    return np.tile(speech, -(-n // len(speech)))[:n]


def stream_through(vad, samples: np.ndarray) -> float:
    """Seconds of speech found, pushing 30 s blocks."""
    stream = vad.stream()
    flags = [stream.push(samples[i : i + BLOCK]) for i in range(0, len(samples), BLOCK)] + [stream.finish()]
    return float(np.concatenate(flags).sum()) * vad.frame / RATE


def onnxruntime_frames(samples: np.ndarray) -> np.ndarray:
    """Silero's ONNX file frame by frame on one CPU thread (silero-vad's OnnxWrapper loop, without torch)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.inter_op_num_threads = options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(reference.onnx_file()), options, providers=["CPUExecutionProvider"])
    state, context, out = np.zeros((2, 1, 128), np.float32), np.zeros((1, 64), np.float32), []
    rate = np.array(RATE, np.int64)
    padded = np.pad(samples, (0, -len(samples) % 512))
    for start in range(0, len(padded), 512):
        window = np.concatenate([context, padded[None, start : start + 512]], axis=1)
        probability, state = session.run(None, {"input": window, "state": state, "sr": rate})
        out.append(probability[0, 0])
        context = window[:, -64:]
    return np.array(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="audio to run (the mlx-audio loop runs at most 2 min)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per row; the fastest is reported (a shared machine)")
    parser.add_argument("--devices", nargs="*", choices=["cpu", "gpu"], help="MLX devices (default: cpu, and gpu if present)")
    args = parser.parse_args()

    import mlx_audio_lid  # noqa: F401  first: on Linux it puts an optimized BLAS under MLX's CPU build
    import mlx.core as mx

    from mlx_audio_lid.vad.energy import EnergyVAD
    from mlx_audio.vad import load

    from mlx_audio_lid.vad.silero import WEIGHTS, SileroVAD

    devices = args.devices or ["cpu"] + (["gpu"] if mx.is_available(mx.gpu) else [])
    samples = audio(args.minutes)
    load_before = os.getloadavg()
    results = []  # (implementation, device, audio seconds, wall seconds, speech seconds or None)

    def run(name, device, clip, work):
        walls = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            found = work(clip)  # the VADs' speech seconds; the bare networks' probabilities
            walls.append(time.perf_counter() - started)
        results.append((name, device, len(clip) / RATE, min(walls), found if isinstance(found, float) else None))

    run("energy VAD (-50 dBFS, numpy)", "cpu", samples, lambda x: stream_through(EnergyVAD(), x))
    for device in devices:
        mx.set_default_device(mx.gpu if device == "gpu" else mx.cpu)
        silero = SileroVAD()
        stream_through(silero, samples[: 10 * RATE])  # warm-up: kernels, caches
        run("Silero on MLX (SileroVAD: frames batched)", device, samples, lambda x: stream_through(silero, x))
        short = samples[: int(min(args.minutes, 2.0) * 60 * RATE)]
        model = load(str(WEIGHTS), strict=True)
        run("Silero on MLX (mlx-audio's predict_proba: a frame per call)", device, short,
            lambda x: np.array(model.predict_proba(x, sample_rate=RATE)))
    if reference.package_folder() is not None:
        run("Silero reference (ONNX on onnxruntime: a frame per call, 1 thread)", "cpu", samples,
            onnxruntime_frames)
    reference_rate = next((wall / seconds for name, _, seconds, wall, _ in results if "reference" in name), None)

    rows = []
    for name, device, seconds, wall, found in results:
        per_hour = wall / seconds * 3600
        ratio = f"{wall / seconds / reference_rate:.2f}x" if reference_rate else "-"
        speech = "-" if found is None else f"{found / 60:.1f} min"
        rows.append([name, device, f"{seconds / 60:.1f} min", f"{wall:.2f} s", f"{per_hour:.1f} s",
                     f"{seconds / wall:.0f}x", ratio, speech])
    print(f"Machine: {machine_description()}; load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after\n")
    print(markdown_table(["implementation", "device", "audio", "wall", "per hour of audio", "x real time",
                          "time vs onnxruntime", "speech found"], rows))


if __name__ == "__main__":
    main()
