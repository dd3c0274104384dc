"""VoxLingua107 ECAPA-TDNN speed: this package (MLX) against SpeechBrain (PyTorch), in one process.

The published architecture (channels 1024, 107 languages, 21 M parameters) with random weights,
built once from SpeechBrain's own modules and copied into the MLX model. SpeechBrain runs its
`classify_batch` pipeline (Fbank, sentence mean norm, ECAPA_TDNN with relative lengths,
Xvector classifier); float16 there means `torch.autocast`, as SpeechBrain users run it.
Ratios compare medians with SpeechBrain at the same dtype.

    python benchmarks/bench_ecapa.py                        # CPU, float32 (needs speechbrain)
    python benchmarks/bench_ecapa.py --torch-device cuda --dtypes float32,float16
    python benchmarks/bench_ecapa.py --size tiny --repeats 1 --no-reference   # CI's reduced form
"""

import sys
import types

import mlx_audio_lid  # noqa: F401  (first: it puts an optimized BLAS under MLX on Linux CPUs)

import mlx.core as mx  # noqa: E402
import numpy as np  # noqa: E402

from common import (  # noqa: E402
    benchmark_arguments, case_rows, delta_to_first_dtype, long_recording_rows, torch_sync_and_peak, write_outputs,
)
from mlx_audio_lid.identify import pad_batch  # noqa: E402
from mlx_audio_lid.loading import build_model  # noqa: E402

SECOND = 16000
LABELS = [f"l{i:03d}" for i in range(107)]
FULL = dict(n_mels=60, channels=[1024, 1024, 1024, 1024, 3072], kernel_sizes=[5, 3, 3, 3, 1],
            dilations=[1, 2, 3, 4, 1], attention_channels=128, lin_neurons=256, se_channels=128,
            classifier_lin_neurons=512)
TINY = dict(FULL, channels=[32, 32, 32, 32, 96], attention_channels=16, lin_neurons=24, se_channels=16,
            classifier_lin_neurons=32)
CASES = {"10 s x 1": [10], "30 s x 1": [30], "10 s x 64": [10] * 64, "mixed 2-30 s x 8": [2, 4, 6, 8, 12, 16, 24, 30]}
TINY_CASES = {"1 s x 1": [1], "mixed 0.5-2 s x 4": [0.5, 1, 1.5, 2]}
MLX_DTYPES = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}


def random_clips(seconds, seed=0):
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(int(s * SECOND))).astype(np.float32) for s in seconds]


def config_for(size):
    return dict(FULL if size == "full" else TINY, model_type="ecapa_lid", classifier="xvector", labels=LABELS)


def speechbrain_pipeline(config, device):
    """SpeechBrain's modules for the same architecture, random weights, eval mode."""
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
    mods = torch.nn.ModuleDict({
        "compute_features": Fbank(n_mels=config["n_mels"]),
        "mean_var_norm": InputNormalization(norm_type="sentence", std_norm=False),
        "embedding_model": ECAPA_TDNN(
            config["n_mels"], channels=config["channels"], kernel_sizes=config["kernel_sizes"],
            dilations=config["dilations"], attention_channels=config["attention_channels"],
            lin_neurons=config["lin_neurons"], se_channels=config["se_channels"]),
        "classifier": Classifier(input_shape=[None, None, config["lin_neurons"]], lin_blocks=1,
                                 lin_neurons=config["classifier_lin_neurons"], out_neurons=len(LABELS)),
    }).to(device).eval()
    return mods


def long_recording_case(ours, reference, args, dtype_name, sync):
    import torch

    recording = random_clips([args.long_minutes * 60], seed=2)[0]

    def reference_batches(pieces, batch_size):
        for begin in range(0, len(pieces), batch_size):
            batch = pieces[begin : begin + batch_size]
            longest = max(len(p) for p in batch)
            wavs = torch.zeros(len(batch), longest)
            for row, piece in zip(wavs, batch):
                row[: len(piece)] = torch.from_numpy(piece)
            rel = torch.tensor([len(p) / longest for p in batch])
            wavs, rel = wavs.to(args.torch_device), rel.to(args.torch_device)
            with torch.inference_mode(), torch.autocast(args.torch_device.split(":")[0], dtype=torch.float16,
                                                        enabled=dtype_name != "float32"):
                feats = reference["mean_var_norm"](reference["compute_features"](wavs), rel)
                reference["classifier"](reference["embedding_model"](feats, rel))

    return long_recording_rows(ours, recording, None if reference is None else reference_batches, "SpeechBrain",
                               dtype_name, args.long_minutes, 8, max(1, args.repeats // 2), sync)

def main():
    args = benchmark_arguments(__doc__.split("\n")[0])

    config = config_for(args.size)
    rows = []
    first_outputs = {}
    reference = None
    if not args.no_reference:
        import torch

        reference = speechbrain_pipeline(config, args.torch_device)
        weights = {f"{part}.{k}": mx.array(v.detach().cpu().numpy())
                   for part in ("embedding_model", "classifier") for k, v in reference[part].state_dict().items()}
        sync, torch_peak = torch_sync_and_peak(args.torch_device)
    else:
        from mlx.utils import tree_flatten

        sync, torch_peak = (lambda: None), None

        from mlx_audio_lid.models.ecapa_lid import Model, ModelConfig

        weights = dict(tree_flatten(Model(ModelConfig.from_dict(config)).parameters()))
    ours = build_model(config, weights)
    for dtype_name in args.dtypes.split(","):
        ours.set_dtype(MLX_DTYPES[dtype_name])
        compiled = mx.compile(ours.forward)  # after set_dtype: a compiled graph keeps the arrays it traced
        cases = CASES if args.size == "full" else TINY_CASES
        for case, seconds in cases.items():
            if args.cases and case not in args.cases.split(","):
                continue
            clips = random_clips(seconds)
            waveforms, lengths = pad_batch(clips)
            padded = len(set(seconds)) > 1
            runs = {
                f"MLX eager {dtype_name}": lambda: mx.eval(ours(waveforms, lengths)),
                f"MLX compiled {dtype_name}": lambda: mx.eval(compiled(waveforms, lengths, padded)),
            }
            if reference is not None:
                wavs = torch.from_numpy(np.array(waveforms)).to(args.torch_device)
                rel = torch.from_numpy(np.array(lengths) / waveforms.shape[1]).float().to(args.torch_device)
                autocast = dtype_name != "float32"

                def sb_run():
                    with torch.inference_mode(), torch.autocast(args.torch_device.split(":")[0], dtype=torch.float16, enabled=autocast):
                        feats = reference["mean_var_norm"](reference["compute_features"](wavs), rel)
                        reference["classifier"](reference["embedding_model"](feats, rel))

                runs[f"SpeechBrain {dtype_name}"] = sb_run
            delta = delta_to_first_dtype(np.array(ours(waveforms, lengths).astype(mx.float32)), case, first_outputs)
            rows += case_rows(runs, case, f"SpeechBrain {dtype_name}", len(seconds), sync,
                              None if args.no_reference else torch_peak, args.repeats, delta)
            print(f"done: {dtype_name} {case}", file=sys.stderr, flush=True)
        if args.long_minutes:
            rows += long_recording_case(ours, reference, args, dtype_name, sync)
    header = ["implementation", "case", "median ms", "min ms", "x SpeechBrain", "clips/s", "first call ms", "peak GB", "max abs Δ logit vs first dtype"]
    title = f"VoxLingua107 ECAPA-TDNN ({args.size}, random weights): MLX vs SpeechBrain on {args.torch_device}"
    write_outputs(rows, header, title, args.json, args.plot)


if __name__ == "__main__":
    main()
