"""Whisper language ID speed: this package (MLX) against faster-whisper's `detect_language`
(CTranslate2), same weights, same recorded clips, one process.

Cases: one clip, and a batch of 16 clips (../shared/real/speech). Every Whisper input is 30 s
(clips are padded), so the cost per clip does not depend on its length. faster-whisper's
`detect_language` takes one clip per call, so the batch is 16 calls; its runtime's batched form
(features per clip, then one `model.detect_language` on the 16) is timed beside it. Ratios are
faster-whisper `detect_language`'s median time over each row's (above 1: faster than it). The
rows of a case are timed in interleaved rounds (common.timed_interleaved), so that the machine's
drift over minutes falls on both sides alike.

    python -m benchmarks.bench_whisper          # CPU: MLX float32, 8-bit vs CTranslate2 float32, int8
    python -m benchmarks.bench_whisper --gpu    # MLX's CUDA build float16, 8-bit vs CTranslate2 CUDA float16, int8_float16
    python -m benchmarks.bench_whisper --size tiny --repeats 1   # the reduced form CI runs

The model is Whisper base (../shared/real/get-whisper-base fetches it; --model takes any
CTranslate2 Whisper folder); `--size tiny` is a tiny random one on synthetic clips.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

# The reference first: imported after mlx_audio_lid, its BLAS calls would bind to the BLAS that
# mlx_audio_lid loads for MLX (cpu_blas.py), and it would not run as it does on its own.
import ctranslate2  # noqa: F401,I001

import mlx_audio_lid as lid  # noqa: E402  (before mlx.core: it puts an optimized BLAS under MLX on Linux CPUs)

import mlx.core as mx  # noqa: E402
import numpy as np  # noqa: E402


from mlx_audio_lid import quantization  # noqa: E402
from mlx_audio_lid.identification import pad_batch  # noqa: E402

from .common import machine_description, markdown_table, timed_interleaved  # noqa: E402

SHARED = Path(os.environ.get("MLX_AUDIO_LID_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
CACHE = Path(os.environ.get("MLX_AUDIO_LID_REAL_CACHE", Path.home() / ".cache" / "mlx-audio-lid-real"))


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="a CTranslate2 Whisper folder (default: fetch Whisper base)")
    parser.add_argument("--size", choices=["base", "base-random", "tiny"], default="base",
                        help="base-random: Whisper base's size with random weights (where the real weights cannot travel: "
                             "every input is padded to 30 s, so speed does not depend on them); tiny: a tiny random model; "
                             "both on synthetic clips")
    parser.add_argument("--speech", type=Path, default=SHARED / "real" / "speech")
    parser.add_argument("--gpu", action="store_true", help="MLX on its GPU, CTranslate2 on CUDA")
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds timed for the batch, after a first call and a warm-up of each row; "
                             "each round times every row once")
    parser.add_argument("--one-clip-repeats", type=int, default=9, help="rounds timed for one clip")
    parser.add_argument("--cpu-threads", type=int, default=0, help="CTranslate2's intra threads (0: its default)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--quantized", action=argparse.BooleanOptionalAction, default=None,
                        help="also time the 8-bit model (default: on a GPU only; MLX's x86 CPU kernels take ~45 s a clip for it)")
    parser.add_argument("--compiled", action="store_true", help="also time the compiled path (model.compiled_forward())")
    parser.add_argument("--json", type=Path)
    return parser.parse_args()


def whisper_base() -> Path:
    script = SHARED / "real" / "get-whisper-base"
    done = subprocess.run([str(script), str(CACHE / "whisper-base-ct2")], capture_output=True, text=True, check=True)
    return Path(done.stdout.strip().splitlines()[-1])


def ours(folder: Path, gpu: bool, quantized: bool):
    """name -> MLX model: float (float16 on a GPU, else float32) and, if `quantized`, 8-bit beside
    that float; on a GPU also the float model with mlx-audio's own attention instead of MLX's
    fused kernel, and with mlx-audio's decoder step instead of first_step."""
    dtype = "float16" if gpu else "float32"
    models = {f"MLX {dtype}": lid.load(folder, dtype=dtype)}
    if quantized:
        model = lid.load(folder, dtype=dtype)
        quantization.quantize(model, 8, 64)
        models[f"MLX 8-bit + {dtype}"] = model
    if gpu:
        unfused = lid.load(folder, dtype=dtype)
        for block in unfused.encoder.blocks:
            block.attn.fused = False
        models[f"MLX {dtype}, unfused attention"] = unfused
        models[f"MLX {dtype}, mlx-audio's decoder step"] = with_mlx_audio_decoder_step(lid.load(folder, dtype=dtype))
    return models


def with_mlx_audio_decoder_step(model):
    """The model with mlx-audio's general decoder step (the folded cross-attention kept) instead of
    `first_step`: what one clip on a GPU cost before first_step, timed beside it."""
    def classify(states):
        tokens = mx.full((states.shape[0], 1), model.config.sot_token, dtype=mx.int32)
        return model.decoder(tokens, states)[0][:, 0]

    model.classify = classify  # an instance attribute: forward's self.classify finds it first
    return model


def reference(folder: Path, gpu: bool, threads: int):
    """name -> faster-whisper WhisperModel, by CTranslate2 compute type; what failed to load, and why."""
    from faster_whisper import WhisperModel

    devices = [("cuda", "float16"), ("cuda", "int8_float16")] if gpu else []
    devices += [("cpu", "float32"), ("cpu", "int8")]  # on a GPU machine too: CTranslate2's CUDA build may not run there
    models, failed = {}, {}
    for device, compute_type in devices:
        name = f"faster-whisper {device} {compute_type}" if gpu else f"faster-whisper {compute_type}"
        try:
            models[name] = WhisperModel(str(folder), device=device, compute_type=compute_type, cpu_threads=threads)
        except (RuntimeError, ValueError, OSError) as error:  # e.g. no CUDA build of CTranslate2
            failed[name] = f"{type(error).__name__}: {error}"
    return models, failed


REFERENCE_CHECK = "faster-whisper cpu float32"  # CTranslate2's CPU float32: what every other row is checked against


def probability_deltas(ours_models, references, clip):
    """name -> (max |Δ probability| against REFERENCE_CHECK, top-1 equal) on one clip; {} without it."""
    check = references.get(REFERENCE_CHECK) or references.get(REFERENCE_CHECK.replace("cpu ", ""))
    if check is None:
        return {}

    def reference_probs(model):
        try:
            return dict(model.detect_language(clip)[2])
        except RuntimeError:  # it failed to run: its timing row says so
            return None

    expected = reference_probs(check)
    results = {}
    for name, model in ours_models.items():
        waveforms, lengths = pad_batch([clip])
        probs = np.array(mx.softmax(model(waveforms, lengths).astype(mx.float32), axis=-1))[0]
        results[name] = dict(zip(model.labels, probs.tolist()))
    for name, model in references.items():
        got = reference_probs(model)
        if got is not None:
            results[name] = got
    out = {}
    for name, probs in results.items():
        delta = max(abs(probs[c] - p) for c, p in expected.items())
        out[name] = (delta, max(probs, key=probs.get) == max(expected, key=expected.get))
    return out


def batched_detect(model, clips):
    """CTranslate2's batched form: faster-whisper's features per clip, one detect_language on all."""
    import ctranslate2
    from faster_whisper.audio import pad_or_trim

    features = np.stack([pad_or_trim(model.feature_extractor(c[: model.feature_extractor.n_samples])) for c in clips])
    return model.model.detect_language(ctranslate2.StorageView.from_array(features))


def main():
    args = arguments()
    if args.gpu:
        mx.set_default_device(mx.gpu)
    if args.size in ("tiny", "base-random"):
        import tempfile

        from references import whisper as ref
        from references.signals import speechlike_clips

        config = ref.tiny_config() if args.size == "tiny" else ref.base_config()
        folder = ref.random_ctranslate2(Path(tempfile.mkdtemp()) / f"{args.size}-ct2", config)
        clips = speechlike_clips([16000 * (2 + i % 7) for i in range(args.batch)])
    else:
        folder = args.model or whisper_base()
        paths = sorted(args.speech.glob("*.wav"))
        if len(paths) < args.batch:
            sys.exit(f"{args.speech} has {len(paths)} clips, fewer than --batch {args.batch}")
        import soundfile as sf  # only for the recorded clips

        clips = [sf.read(p, dtype="float32")[0] for p in paths[: args.batch]]
    cases = {"1 clip": clips[:1], f"{args.batch} clips": clips}
    runs = {}
    ours_models = ours(folder, args.gpu, args.quantized if args.quantized is not None else args.gpu)
    for name, model in ours_models.items():
        compiled = model.compiled_forward()
        for case, group in cases.items():
            waveforms, lengths = pad_batch(group)
            runs[(name, case)] = lambda m=model, w=waveforms, n=lengths: mx.eval(m(w, n))
            if args.compiled:
                runs[(name + " compiled", case)] = lambda c=compiled, w=waveforms, n=lengths: mx.eval(c(w, n, True))
    references, failed = reference(folder, args.gpu, args.cpu_threads)
    for name, model in references.items():
        if args.gpu and " cpu " in name:
            continue  # on a GPU machine CTranslate2's CPU run is the probability check, not a timed row
        for case, group in cases.items():
            runs[(name + " detect_language", case)] = lambda m=model, g=group: [m.detect_language(c) for c in g]
            if len(group) > 1:
                runs[(name + " batched", case)] = lambda m=model, g=group: batched_detect(m, g)
    # Each case's rows interleaved (common.timed_interleaved): every ratio is of times taken in
    # the same minutes. One clip is cheap, so it gets more rounds.
    timings = {}
    for case in cases:
        rounds = args.repeats if len(cases[case]) > 1 else args.one_clip_repeats
        got, errors = timed_interleaved(
            {key: run for key, run in runs.items() if key[1] == case}, rounds,
            # CTranslate2 loads without its CUDA libraries and fails at the first call
            tolerate=lambda key, error: key[0].startswith("faster-whisper") and isinstance(error, RuntimeError),
            log=lambda line, case=case: print(f"  {case}: {line}", file=sys.stderr, flush=True))
        timings.update(got)
        for (name, _), error in errors.items():
            failed[name.split(" detect_language")[0].split(" batched")[0]] = f"{type(error).__name__}: {error}"
    agreement = probability_deltas(ours_models, references, clips[0])
    baselines = [n for n, _ in timings if n.endswith("detect_language")]
    rows = []
    for (name, case), t in timings.items():
        ratios = [f"{timings[(b, case)]['median_s'] / t['median_s']:.2f}" if (b, case) in timings else "-"
                  for b in dict.fromkeys(baselines)]
        rows.append([name, case, f"{t['median_s'] * 1e3:.0f}", f"{t['min_s'] * 1e3:.0f}", f"{t['first_s'] * 1e3:.0f}",
                     f"{len(cases[case]) / t['median_s']:.2f}", *ratios])
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    title = f"Whisper {args.size} language ID on {'GPU' if args.gpu else 'CPU'}: MLX vs faster-whisper (CTranslate2)"
    print(f"{title}\n\nMachine: {machine_description()}; load average {load[0]:.1f} at the end; "
          f"CTranslate2 intra threads {args.cpu_threads or 'default'}; rows of a case timed interleaved, "
          f"{args.one_clip_repeats} rounds for 1 clip and {args.repeats} for {args.batch} after a first call and a warm-up\n")
    header = ["implementation", "case", "median ms", "min ms", "first call ms", "clips/s"]
    header += [f"x {b.replace(' detect_language', '')}" for b in dict.fromkeys(baselines)]
    print(markdown_table(header, rows))
    for name, why in failed.items():
        print(f"\n{name} did not run: {why}")
    if agreement:
        print(f"\nThe first clip's language probabilities, max |Δ| against {REFERENCE_CHECK}:\n")
        print(markdown_table(["implementation", "max |Δ probability|", "top-1 agrees"],
                             [[n, f"{d:.2e}", str(same)] for n, (d, same) in agreement.items()]))
    if args.json:
        import json

        report = {"title": title, "machine": machine_description(), "failed": failed,
                  "agreement": {n: {"max_delta": d, "top1_agrees": same} for n, (d, same) in agreement.items()},
                  "rows": [dict(zip(header, row)) for row in rows]}
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
