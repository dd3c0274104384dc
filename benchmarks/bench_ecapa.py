"""VoxLingua107 ECAPA-TDNN speed: this package (MLX) against SpeechBrain (PyTorch), in one process.

The published architecture (channels 1024, 107 languages, 21 M parameters) with random weights,
built once from SpeechBrain's own modules and copied into the MLX model. SpeechBrain runs its
`classify_batch` pipeline (Fbank, sentence mean norm, ECAPA_TDNN with relative lengths,
Xvector classifier); float16 there means `torch.autocast`, as SpeechBrain users run it.
Ratios compare medians with SpeechBrain at the same dtype.

    python -m benchmarks.bench_ecapa                        # CPU, float32 (needs speechbrain)
    python -m benchmarks.bench_ecapa --torch-device cuda --dtypes float32,float16
    python -m benchmarks.bench_ecapa --size tiny --repeats 1 --no-reference   # CI's reduced form
"""

import sys
import types

# The reference first: imported after mlx_audio_lid, its BLAS calls would bind to the BLAS that
# mlx_audio_lid loads for MLX (cpu_blas.py), and it would not run as it does on its own.
import torch  # noqa: F401,I001

import mlx_audio_lid  # noqa: F401,E402  (before mlx.core: it puts an optimized BLAS under MLX on Linux CPUs)

import mlx.core as mx  # noqa: E402
import numpy as np  # noqa: E402

from mlx_audio_lid.loading import build_model  # noqa: E402
from references import sizes  # noqa: E402

from .common import Reference, benchmark_arguments, random_model, run_speed_benchmark  # noqa: E402

SECOND = 16000
CASES = {"10 s x 1": [10], "30 s x 1": [30], "10 s x 64": [10] * 64, "mixed 2-30 s x 8": [2, 4, 6, 8, 12, 16, 24, 30]}
TINY_CASES = {"1 s x 1": [1], "mixed 0.5-2 s x 4": [0.5, 1, 1.5, 2]}


def random_clips(seconds, seed=0):
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(int(s * SECOND))).astype(np.float32) for s in seconds]


class SpeechBrain(Reference):
    """SpeechBrain's modules for the same architecture, random weights, eval mode."""

    name = "SpeechBrain"

    def __init__(self, config, torch_device):
        super().__init__(torch_device)
        import torch

        try:
            import torchaudio  # noqa: F401
        except ImportError:  # SpeechBrain imports torchaudio for audio I/O only, unused here
            sys.modules["torchaudio"] = types.SimpleNamespace(__version__="2.9", list_audio_backends=lambda: [])
        from speechbrain.lobes.features import Fbank
        from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
        from speechbrain.lobes.models.Xvector import Classifier
        from speechbrain.processing.features import InputNormalization

        torch.manual_seed(0)
        self.torch, self.autocast = torch, False
        self.modules = torch.nn.ModuleDict({
            "compute_features": Fbank(n_mels=config["n_mels"]),
            "mean_var_norm": InputNormalization(norm_type="sentence", std_norm=False),
            "embedding_model": ECAPA_TDNN(
                config["n_mels"], channels=config["channels"], kernel_sizes=config["kernel_sizes"],
                dilations=config["dilations"], attention_channels=config["attention_channels"],
                lin_neurons=config["lin_neurons"], se_channels=config["se_channels"]),
            "classifier": Classifier(input_shape=[None, None, config["lin_neurons"]], lin_blocks=1,
                                     lin_neurons=config["classifier_lin_neurons"], out_neurons=len(config["labels"])),
        }).to(torch_device).eval()

    def weights(self):
        return {f"{part}.{k}": mx.array(v.detach().cpu().numpy())
                for part in ("embedding_model", "classifier") for k, v in self.modules[part].state_dict().items()}

    def set_dtype(self, dtype_name):
        self.autocast = dtype_name != "float32"  # SpeechBrain's users get half precision through autocast

    def _classify(self, wavs, relative):
        torch = self.torch
        with torch.inference_mode(), torch.autocast(self.device.split(":")[0], dtype=torch.float16, enabled=self.autocast):
            feats = self.modules["mean_var_norm"](self.modules["compute_features"](wavs), relative)
            self.modules["classifier"](self.modules["embedding_model"](feats, relative))

    def run_for(self, clips, waveforms, lengths, dtype_name):
        wavs = self.torch.from_numpy(np.array(waveforms)).to(self.device)
        relative = self.torch.from_numpy(np.array(lengths) / waveforms.shape[1]).float().to(self.device)
        return lambda: self._classify(wavs, relative)

    def batches(self, pieces, batch_size, dtype_name):
        torch = self.torch
        for begin in range(0, len(pieces), batch_size):
            batch = pieces[begin : begin + batch_size]
            longest = max(len(p) for p in batch)
            wavs = torch.zeros(len(batch), longest)
            for row, piece in zip(wavs, batch):
                row[: len(piece)] = torch.from_numpy(piece)
            relative = torch.tensor([len(p) / longest for p in batch])
            self._classify(wavs.to(self.device), relative.to(self.device))


def main():
    args = benchmark_arguments(__doc__.split("\n")[0])
    config = sizes.voxlingua107_ecapa() if args.size == "full" else sizes.tiny_ecapa()
    reference = None if args.no_reference else SpeechBrain(config, args.torch_device)
    if reference is None:
        ours = random_model(config)
    else:
        ours = build_model(config, reference.weights())
    run_speed_benchmark(
        args, ours, CASES if args.size == "full" else TINY_CASES, random_clips, reference,
        header=["implementation", "case", "median ms", "min ms", "x SpeechBrain", "clips/s", "first call ms",
                "peak GB", "max abs Δ logit vs first dtype"],
        title=f"VoxLingua107 ECAPA-TDNN ({args.size}, random weights): MLX vs SpeechBrain on {args.torch_device}",
        long_recording=lambda: random_clips([args.long_minutes * 60], seed=2)[0],
    )


if __name__ == "__main__":
    main()
