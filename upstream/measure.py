"""The before/after figures of upstream/PR.md: stock mlx-audio 0.6.2 against the patched copy.

    python upstream/measure.py

Builds both copies as upstream/check does (copies.py: the sdist from the package index, nothing
installed), prepares the inputs here, then runs the same measurements in one subprocess per copy
(each with its copy first on PYTHONPATH, since both are `mlx_audio`) and prints one table.

Inputs, all on CPU in float32:
- the six espeak-ng clips of tests/fixtures/ecapa (1.03 to 5.54 s); wav2vec2 gets each clip
  normalised to zero mean and unit variance, as Wav2Vec2FeatureExtractor does;
- wav2vec2: a small random Wav2Vec2ForSequenceClassification in MMS-LID's layout (transformers,
  seeded; the real 320x conv stack, 4 pre-LN layers of width 64, adapters, 20 labels). A random
  network answers the same label for every input, so its classifier is re-centred on the six
  clips' pooled features and scaled (logits within about ±5): then its top-1 differs between
  clips, as a trained model's does. The reference is transformers on each clip alone;
- ECAPA: tests/fixtures/ecapa's two tiny random-weight models (VoxLingua107 layout: 60 mels,
  Xvector head; CommonLanguage layout: 80 mels, cosine head) and what SpeechBrain 1.1.2
  recorded for each clip alone (reference.npz).

A padded batch holds all six clips, right-padded with zeros to the longest. Stock mlx-audio
has no way to pass lengths: its wav2vec2 gets the padded batch as it is, its ECAPA the stack of
each padded row's features (its front end takes one clip at a time).
"""

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "fixtures"))

SOURCE = HERE.parent / "tests" / "fixtures" / "ecapa"
CLIPS = ("en", "de", "zh", "fr", "ru", "es")
ECAPA_MODELS = {"voxlingua107": "voxlingua107_tiny", "commonlanguage": "commonlanguage_tiny"}
WAV2VEC2 = dict(
    hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=128,
    conv_dim=[32] * 7, conv_kernel=[10, 3, 3, 3, 3, 2, 2], conv_stride=[5, 2, 2, 2, 2, 2, 2],
    conv_bias=True, feat_extract_norm="layer", do_stable_layer_norm=True,
    num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, classifier_proj_size=32,
    num_labels=20, adapter_attn_dim=8,
)


# -- inputs (this process: numpy, torch, transformers; no mlx_audio) ----------------------

def clips() -> dict:
    import soundfile

    out = {}
    for name in CLIPS:
        audio, rate = soundfile.read(SOURCE / "clips" / f"{name}.wav", dtype="float32")
        if rate != 16000:
            raise SystemExit(f"{name}.wav: {rate} Hz, expected 16000")
        out[name] = audio
    return out


def pad(rows) -> np.ndarray:
    batch = np.zeros((len(rows), max(len(r) for r in rows)), dtype=np.float32)
    for i, row in enumerate(rows):
        batch[i, : len(row)] = row
    return batch


def wav2vec2_inputs(audio: dict, arrays: dict) -> dict:
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2ForSequenceClassification

    torch.manual_seed(0)
    config = Wav2Vec2Config(**WAV2VEC2)
    model = Wav2Vec2ForSequenceClassification(config).eval()
    normalised = [(a - a.mean()) / np.sqrt(a.var() + 1e-7) for a in audio.values()]
    with torch.no_grad():
        pooled = torch.cat([
            model.projector(model.wav2vec2(torch.from_numpy(a)[None]).last_hidden_state).mean(1)
            for a in normalised
        ])
        centred = pooled - pooled.mean(0)
        weight = model.classifier.weight * (5.0 / (centred @ model.classifier.weight.T).abs().max())
        model.classifier.weight.copy_(weight)
        model.classifier.bias.copy_(-(pooled.mean(0) @ weight.T))
        alone = np.concatenate([model(torch.from_numpy(a)[None]).logits.numpy() for a in normalised])
    for key, value in model.state_dict().items():
        arrays[f"wav2vec2/weights/{key}"] = value.numpy()
    for name, clip in zip(audio, normalised):
        arrays[f"wav2vec2/clips/{name}"] = clip
    arrays["wav2vec2/reference"] = alone
    return config.to_dict()


def ecapa_inputs(audio: dict, arrays: dict) -> dict:
    from make_ecapa_fixture import config, label_encoder, weights

    reference = np.load(SOURCE / "reference.npz")
    configs = {}
    for short, model in ECAPA_MODELS.items():
        state = weights(SOURCE / model)
        configs[short] = config(model, label_encoder(SOURCE / model / "label_encoder.txt"), state)
        for key, value in state.items():
            arrays[f"{short}/weights/{key}"] = value
        arrays[f"{short}/reference"] = np.stack([reference[f"{model}/{n}/logits"] for n in audio])
    for name, clip in audio.items():
        arrays[f"clips/{name}"] = clip
    return configs


# -- measurements (a subprocess per copy, with that copy's mlx_audio) ---------------------

def failure(error: Exception, limit: int = 70) -> str:
    text = f"{type(error).__name__}: {str(error).splitlines()[0]}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def worker(kind: str, inputs: Path) -> dict:
    import mlx.core as mx
    import mlx.nn as nn
    from mlx.utils import tree_flatten

    patched = kind == "patched"
    arrays = dict(np.load(inputs / "inputs.npz"))
    configs = json.loads((inputs / "configs.json").read_text())
    results = {}

    def weights_of(prefix):
        return {k[len(prefix):]: mx.array(v) for k, v in arrays.items() if k.startswith(prefix)}

    def top1_flips(ours, reference):
        return int((ours.argmax(-1) != reference.argmax(-1)).sum())

    # wav2vec2 against transformers, each clip alone and all six in a padded batch
    from mlx_audio.lid.models.wav2vec2 import Model, ModelConfig

    w2v = Model(ModelConfig.from_dict(configs["wav2vec2"]))
    w2v.load_weights(list(w2v.sanitize(weights_of("wav2vec2/weights/")).items()), strict=False)
    w2v.eval()
    reference = arrays["wav2vec2/reference"]
    rows = [arrays[f"wav2vec2/clips/{n}"] for n in CLIPS]
    alone = np.concatenate([np.array(w2v(mx.array(r)[None])) for r in rows])
    batch = mx.array(pad(rows))
    if patched:
        mask = mx.array(pad([np.ones(len(r), np.float32) for r in rows]))
        batched = np.array(w2v(batch, attention_mask=mask))
    else:
        batched = np.array(w2v(batch))  # 0.6.2's __call__ takes no mask
    short = slice(0, 5)  # every clip but the longest is padded
    results["wav2vec2"] = {
        "alone_vs_transformers": float(np.abs(alone - reference).max()),
        "batch_vs_alone": float(np.abs(batched - alone)[short].max()),
        "batch_flips": top1_flips(batched[short], alone[short]),
        "logit_range": float(np.abs(reference).max()),
    }

    # ECAPA against SpeechBrain
    from mlx_audio.lid.models.ecapa_tdnn import Model as Ecapa
    from mlx_audio.lid.models.ecapa_tdnn import ModelConfig as EcapaConfig
    from mlx_audio.lid.models.ecapa_tdnn.mel import compute_mel_spectrogram

    def ecapa(name):
        params = configs[name]
        fields = EcapaConfig.__dataclass_fields__
        model = Ecapa(EcapaConfig(**{k: v for k, v in params.items() if k in fields}))
        model.load_weights(list(model.sanitize(weights_of(f"{name}/weights/")).items()), strict=False)
        model.eval()
        return model

    def features(audio, n_mels):
        return compute_mel_spectrogram(audio, n_mels) if patched else compute_mel_spectrogram(audio)

    audio = [arrays[f"clips/{n}"] for n in CLIPS]
    for name in ECAPA_MODELS:
        reference = arrays[f"{name}/reference"].astype(np.float64)
        try:
            model = ecapa(name)
            n_mels = model.config.n_mels
            alone = np.concatenate([np.array(model(features(mx.array(a), n_mels))) for a in audio])
            if patched:
                from mlx_audio.lid.models.ecapa_tdnn.mel import mel_frame_lengths

                lengths = mx.array([len(a) for a in audio])
                mel = compute_mel_spectrogram(mx.array(pad(audio)), n_mels, lengths)
                batched = np.array(model(mel, mel_frame_lengths(lengths)))
            else:
                mel = mx.concatenate([features(mx.array(row), n_mels) for row in pad(audio)])
                batched = np.array(model(mel))
        except Exception as error:  # 0.6.2 cannot run CommonLanguage: record what it says
            results[name] = {"error": failure(error)}
            continue
        alone = alone.astype(np.float64)
        if name == "voxlingua107":  # log-probabilities
            probable = np.exp(reference) > 1e-3
            results[name] = {
                "logprob_vs_speechbrain": float(np.abs(alone - reference).max()),
                "logprob_vs_speechbrain_probable": float(np.abs(alone - reference)[probable].max()),
                "prob_vs_speechbrain": float(np.abs(np.exp(alone) - np.exp(reference)).max()),
            }
        else:  # SpeechBrain returns cosines; the patched model 30 x them
            results[name] = {"cosine_vs_speechbrain": float(np.abs(alone / 30 - reference).max())}
        results[name].update(
            flips_vs_speechbrain=top1_flips(alone, reference),
            batch_vs_alone=float(np.abs(batched - alone)[:5].max()),
            batch_flips=top1_flips(batched[:5], alone[:5]),
        )

    # mlx_audio.lid.load of folders: an ECAPA and a wav2vec2 model written from their own
    # parameters (as mlx_audio.convert writes them), and a transformers checkpoint that
    # lacks one weight (as a renamed key would)
    import mlx_audio.lid

    def folder(directory, config, weights):
        Path(directory, "config.json").write_text(json.dumps(config))
        mx.save_safetensors(str(Path(directory, "model.safetensors")), weights)
        return directory

    def load_outcome(directory, reference_model, x):
        try:
            loaded = mlx_audio.lid.load(directory)
            difference = np.abs(np.array(loaded(x)) - np.array(reference_model(x))).max()
        except Exception as error:
            return failure(error)
        return f"loads; max abs Δ output vs the saved model {difference:.2g}"

    vox = ecapa("voxlingua107")
    mel = features(mx.array(audio[1]), 60)
    with tempfile.TemporaryDirectory() as directory:
        folder(directory, configs["voxlingua107"], dict(tree_flatten(vox.parameters())))
        results["ecapa_load"] = load_outcome(directory, vox, mel)
        if not patched:  # the second bug, behind the first: give 0.6.2's config a from_dict
            EcapaConfig.from_dict = classmethod(
                lambda cls, d: cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})
            )
            results["ecapa_load_with_from_dict"] = load_outcome(directory, vox, mel)

    clip = mx.array(rows[0])[None]
    with tempfile.TemporaryDirectory() as directory:
        folder(directory, configs["wav2vec2"], dict(tree_flatten(w2v.parameters())))
        results["wav2vec2_mlx_folder_load"] = load_outcome(directory, w2v, clip)
    with tempfile.TemporaryDirectory() as directory:
        checkpoint = weights_of("wav2vec2/weights/")
        del checkpoint["classifier.weight"]
        folder(directory, configs["wav2vec2"], checkpoint)
        results["missing_weight_load"] = load_outcome(directory, w2v, clip)
    return results


# -- report --------------------------------------------------------------------------------

def machine() -> str:
    import mlx.core as mx
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [l.split(":", 1)[1].strip() for l in cpuinfo.read_text().splitlines() if l.startswith("model name")]
        cpu = f"{names[0]}, {len(names)} cores" if names else cpu
    return (f"{cpu}, {platform.system()} {platform.machine()}; MLX {mx.__version__} on {mx.default_device()}, "
            f"torch {torch.__version__}, transformers {transformers.__version__}, Python {platform.python_version()}")


def table(stock: dict, patched: dict) -> str:
    def get(results, *keys, fmt="{:.2g}"):
        value = results
        for key in keys:
            if not isinstance(value, dict):
                break
            if "error" in value:
                return value["error"]
            value = value[key]
        return fmt.format(value) if not isinstance(value, str) else value

    rows = [
        ("wav2vec2: each clip alone, max abs Δ logit vs transformers", ("wav2vec2", "alone_vs_transformers")),
        ("wav2vec2: padded batch vs alone, max abs Δ logit (5 padded clips)", ("wav2vec2", "batch_vs_alone")),
        ("wav2vec2: padded batch vs alone, top-1 changed (of 5)", ("wav2vec2", "batch_flips"), "{}"),
        ("VoxLingua107 ECAPA: max abs Δ log-prob vs SpeechBrain (6 clips alone)", ("voxlingua107", "logprob_vs_speechbrain")),
        ("VoxLingua107 ECAPA: the same over classes with p > 1e-3", ("voxlingua107", "logprob_vs_speechbrain_probable")),
        ("VoxLingua107 ECAPA: max abs Δ probability vs SpeechBrain", ("voxlingua107", "prob_vs_speechbrain")),
        ("VoxLingua107 ECAPA: top-1 differing from SpeechBrain (of 6)", ("voxlingua107", "flips_vs_speechbrain"), "{}"),
        ("VoxLingua107 ECAPA: padded batch vs alone, max abs Δ log-prob", ("voxlingua107", "batch_vs_alone")),
        ("VoxLingua107 ECAPA: padded batch vs alone, top-1 changed (of 5)", ("voxlingua107", "batch_flips"), "{}"),
        ("CommonLanguage ECAPA: max abs Δ cosine vs SpeechBrain", ("commonlanguage", "cosine_vs_speechbrain")),
        ("CommonLanguage ECAPA: top-1 differing from SpeechBrain (of 6)", ("commonlanguage", "flips_vs_speechbrain"), "{}"),
        ("CommonLanguage ECAPA: padded batch vs alone, max abs Δ (30 x cosine)", ("commonlanguage", "batch_vs_alone")),
        ("`mlx_audio.lid.load` of an ECAPA folder", ("ecapa_load",)),
        ("the same, 0.6.2's config given a from_dict", ("ecapa_load_with_from_dict",)),
        ("`mlx_audio.lid.load` of a wav2vec2 folder in MLX layout", ("wav2vec2_mlx_folder_load",)),
        ("`mlx_audio.lid.load` of a transformers checkpoint lacking classifier.weight", ("missing_weight_load",)),
    ]
    lines = ["| measure | stock mlx-audio 0.6.2 | patched |", "|---|---|---|"]
    for label, keys, *fmt in rows:
        cells = [get(r, *keys, fmt=fmt[0] if fmt else "{:.2g}") if keys[0] in r else "—" for r in (stock, patched)]
        lines.append(f"| {label} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", choices=("stock", "patched"), help=argparse.SUPPRESS)
    parser.add_argument("--inputs", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.inputs)))
        return

    import copies

    with tempfile.TemporaryDirectory(prefix="mlx-audio-measure-") as work:
        work = Path(work)
        audio, arrays = clips(), {}
        configs = {"wav2vec2": wav2vec2_inputs(audio, arrays), **ecapa_inputs(audio, arrays)}
        np.savez(work / "inputs.npz", **arrays)
        (work / "configs.json").write_text(json.dumps(configs))
        results = {}
        for kind, make in (("stock", copies.stock_copy), ("patched", copies.patched_copy)):
            copy = make(work / kind)
            copies.check_imports_from(copy)
            out = subprocess.run(
                [sys.executable, __file__, "--worker", kind, "--inputs", str(work)],
                env=copies.environment(copy), check=True, capture_output=True, text=True,
            ).stdout
            results[kind] = json.loads(out.strip().splitlines()[-1])
    print(f"Machine: {machine()}\n")
    print(table(results["stock"], results["patched"]))
    print(f"\nwav2vec2 logits span ±{results['patched']['wav2vec2']['logit_range']:.1f} here.")


if __name__ == "__main__":
    main()
