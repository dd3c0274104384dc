"""MMS-LID speed: this package (MLX) against transformers (PyTorch, SDPA), in one process on one machine.

The mms-lid-256 architecture (964 M parameters) with random weights, built once in
transformers and copied into the MLX model, so both run the same network. Each row times the
network on a prepared batch (transformers' input normalisation is done beforehand; this
package's runs inside its forward). Ratios compare medians with PyTorch at the same dtype.

    python benchmarks/bench_mms.py                          # CPU, float32
    python benchmarks/bench_mms.py --torch-device cuda --dtypes float32,float16,bfloat16   # GPU
    python benchmarks/bench_mms.py --size tiny --repeats 1  # the reduced form CI runs
"""

import sys
from pathlib import Path

import mlx_audio_lid  # noqa: F401  (first: it puts an optimized BLAS under MLX on Linux CPUs)

import mlx.core as mx  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import reference_mms as ref  # noqa: E402

from common import (  # noqa: E402
    benchmark_arguments, case_rows, delta_to_first_dtype, long_recording_rows, torch_sync_and_peak, write_outputs,
)
from mlx_audio_lid.identify import pad_batch  # noqa: E402
from mlx_audio_lid.loading import build_model  # noqa: E402

SECOND = 16000
CASES = {
    "10 s x 1": [10] * 1,
    "30 s x 1": [30] * 1,
    "10 s x 16": [10] * 16,
    "mixed 2-30 s x 8": [2, 4, 6, 8, 12, 16, 24, 30],
}
TINY_CASES = {"1 s x 1": [1], "mixed 0.5-2 s x 4": [0.5, 1, 1.5, 2]}
DTYPES = {"float32": (mx.float32, torch.float32), "float16": (mx.float16, torch.float16),
          "bfloat16": (mx.bfloat16, torch.bfloat16)}


def build_pair(size: str, torch_device: str):
    config = ref.mms_lid_config(256) if size == "full" else ref.tiny_config()
    reference = ref.build(config, seed=0, classifier_gain=30.0).to(torch_device)
    weights = {k: mx.array(v.detach().cpu().numpy()) for k, v in reference.state_dict().items()}
    ours = build_model(dict(config.to_dict(), model_type="wav2vec_cls", do_normalize=True), weights)
    del weights
    return reference, ours


def long_recording_case(ours, reference, args, dtype_name, torch_dtype, sync):
    recording = ref.speechlike_clips([int(args.long_minutes * 60 * SECOND)], seed=2)[0]

    def reference_batches(pieces, batch_size):
        for begin in range(0, len(pieces), batch_size):
            inputs = ref.feature_extractor()(pieces[begin : begin + batch_size], sampling_rate=SECOND,
                                             padding=True, return_tensors="pt")
            with torch.inference_mode():
                reference(inputs.input_values.to(args.torch_device, torch_dtype),
                          attention_mask=inputs.attention_mask.to(args.torch_device))

    return long_recording_rows(ours, recording, None if args.no_reference else reference_batches, "PyTorch",
                               dtype_name, args.long_minutes, 8, max(1, args.repeats // 2), sync)

def main():
    args = benchmark_arguments(__doc__.split("\n")[0])
    reference, ours = build_pair(args.size, args.torch_device)
    sync, torch_peak = torch_sync_and_peak(args.torch_device)
    cases = CASES if args.size == "full" else TINY_CASES
    rows = []
    first_outputs = {}
    for dtype_name in args.dtypes.split(","):
        mlx_dtype, torch_dtype = DTYPES[dtype_name]
        ours.set_dtype(mlx_dtype)
        compiled = mx.compile(ours.forward)  # after set_dtype: a compiled graph keeps the arrays it traced
        reference.to(torch_dtype)
        for case, seconds in cases.items():
            if args.cases and case not in args.cases.split(","):
                continue
            clips = ref.speechlike_clips([int(s * SECOND) for s in seconds], seed=1)
            waveforms, lengths = pad_batch(clips)
            padded = len(set(seconds)) > 1
            mx.eval(waveforms, lengths)
            runs = {
                f"MLX eager {dtype_name}": lambda: mx.eval(ours(waveforms, lengths)),
                f"MLX compiled {dtype_name}": lambda: mx.eval(compiled(waveforms, lengths, padded)),
            }
            if not args.no_reference:
                inputs = ref.feature_extractor()(clips, sampling_rate=SECOND, padding=True, return_tensors="pt")
                values = inputs.input_values.to(args.torch_device, torch_dtype)
                mask = inputs.attention_mask.to(args.torch_device)

                def torch_run():
                    with torch.inference_mode():
                        reference(values, attention_mask=mask)

                runs[f"PyTorch {dtype_name}"] = torch_run
            delta = delta_to_first_dtype(np.array(ours(waveforms, lengths).astype(mx.float32)), case, first_outputs)
            rows += case_rows(runs, case, f"PyTorch {dtype_name}", len(seconds), sync,
                              None if args.no_reference else torch_peak, args.repeats, delta)
            print(f"done: {dtype_name} {case}", file=sys.stderr, flush=True)
        if args.long_minutes:
            rows += long_recording_case(ours, reference, args, dtype_name, torch_dtype, sync)
    header = ["implementation", "case", "median ms", "min ms", "x PyTorch", "first call ms", "peak GB", "max abs Δ logit vs first dtype"]
    title = f"MMS-LID ({args.size} mms-lid-256 architecture, random weights): MLX vs PyTorch on {args.torch_device}"
    write_outputs(rows, header, title, args.json, args.plot)


if __name__ == "__main__":
    main()
