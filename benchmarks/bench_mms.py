"""MMS-LID speed: this package (MLX) against transformers (PyTorch, SDPA), in one process on one machine.

The mms-lid-256 architecture (964 M parameters) with random weights, built once in
transformers and copied into the MLX model, so both run the same network. Each row times the
network on a prepared batch (transformers' input normalisation is done beforehand; this
package's runs inside its forward). Ratios compare medians with PyTorch at the same dtype.

    python -m benchmarks.bench_mms                          # CPU, float32
    python -m benchmarks.bench_mms --torch-device cuda --dtypes float32,float16,bfloat16   # GPU
    python -m benchmarks.bench_mms --size tiny --repeats 1  # the reduced form CI runs
"""

# The reference first: imported after mlx_audio_lid, its BLAS calls would bind to the BLAS that
# mlx_audio_lid loads for MLX (cpu_blas.py), and it would not run as it does on its own.
import torch  # noqa: I001

import mlx_audio_lid  # noqa: F401,E402  (before mlx.core: it puts an optimized BLAS under MLX on Linux CPUs)

import mlx.core as mx  # noqa: E402

from mlx_audio_lid.loading import build_model  # noqa: E402
from references import mms as ref  # noqa: E402
from references.signals import speechlike_clips  # noqa: E402

from .common import Reference, benchmark_arguments, run_speed_benchmark  # noqa: E402

SECOND = 16000
CASES = {
    "10 s x 1": [10] * 1,
    "30 s x 1": [30] * 1,
    "10 s x 16": [10] * 16,
    "mixed 2-30 s x 8": [2, 4, 6, 8, 12, 16, 24, 30],
}
TINY_CASES = {"1 s x 1": [1], "mixed 0.5-2 s x 4": [0.5, 1, 1.5, 2]}
TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class Transformers(Reference):
    name = "PyTorch"

    def __init__(self, model, torch_device):
        super().__init__(torch_device)
        self.model = model.to(torch_device)
        self.dtype = torch.float32

    def set_dtype(self, dtype_name):
        self.dtype = TORCH_DTYPES[dtype_name]
        self.model.to(self.dtype)

    def _inputs(self, clips):
        inputs = ref.feature_extractor()(clips, sampling_rate=SECOND, padding=True, return_tensors="pt")
        return inputs.input_values.to(self.device, self.dtype), inputs.attention_mask.to(self.device)

    def run_for(self, clips, waveforms, lengths, dtype_name):
        values, mask = self._inputs(clips)

        def run():
            with torch.inference_mode():
                self.model(values, attention_mask=mask)

        return run

    def batches(self, pieces, batch_size, dtype_name):
        for begin in range(0, len(pieces), batch_size):
            values, mask = self._inputs(pieces[begin : begin + batch_size])
            with torch.inference_mode():
                self.model(values, attention_mask=mask)


def main():
    args = benchmark_arguments(__doc__.split("\n")[0])
    config = ref.mms_lid_config(256) if args.size == "full" else ref.tiny_config()
    reference = ref.build(config, seed=0, classifier_gain=30.0)
    weights = {k: mx.array(v.detach().cpu().numpy()) for k, v in reference.state_dict().items()}
    ours = build_model(dict(config.to_dict(), model_type="wav2vec_cls", do_normalize=True), weights)
    del weights
    run_speed_benchmark(
        args, ours, CASES if args.size == "full" else TINY_CASES,
        lambda seconds: speechlike_clips([int(s * SECOND) for s in seconds], seed=1),
        None if args.no_reference else Transformers(reference, args.torch_device),
        header=["implementation", "case", "median ms", "min ms", "x PyTorch", "first call ms", "peak GB",
                "max abs Δ logit vs first dtype"],
        title=f"MMS-LID ({args.size} mms-lid-256 architecture, random weights): MLX vs PyTorch on {args.torch_device}",
        long_recording=lambda: speechlike_clips([int(args.long_minutes * 60 * SECOND)], seed=2)[0],
    )


if __name__ == "__main__":
    main()
