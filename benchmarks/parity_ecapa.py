"""Full-size ECAPA-TDNN parity: the VoxLingua107 architecture with random weights, live SpeechBrain vs this package.

Builds SpeechBrain's lang-id-voxlingua107-ecapa modules at the published size (Fbank 60 mels,
sentence mean normalisation, ECAPA_TDNN channels [1024, 1024, 1024, 1024, 3072], Xvector
classifier 256 -> 512 -> 107; 21.2 M parameters) with random weights, using the builder of
the test fixtures (references/speechbrain_ecapa.py): BatchNorm affine parameters random, running statistics
calibrated on the clips and perturbed, the output layer scaled so that posteriors are peaky like
a trained model's. Saves the published layout (hyperparams.yaml, embedding_model.ckpt,
classifier.ckpt, label_encoder.txt with the real 107 labels), synthesises espeak-ng clips of
1 to 60 s in 12 languages, and compares, clip by clip (each alone, batch of 1):

- SpeechBrain: `EncoderClassifier.from_hparams(source=folder, overrides={"pretrained_path":
  folder})`, `classify_batch` (log-probabilities) and `encode_batch` (embedding);
- this package: `mlx_audio_lid.load(folder)`, `model(clip)` (log-probabilities) and
  `model.embed(clip)`;

then runs the clips as zero-padded batches (`identify.pad_batch` + `model(waveforms, lengths)`) and
compares them with the clips alone. The clips are dealt round-robin by length into batches of
--batch-size (default 8), so each batch pads a ~1 s clip to 48-60 s; all 24 in one batch would
need about three times the memory (20+ GB; pass --batch-size 24 where memory allows). As a
yardstick for float32 rounding, SpeechBrain's modules also run in float64
(speechbrain_ecapa.float64_outputs), and both float32 runs are compared with that.
Prints the machine, a table per duration bucket, the batch line, the float64 table, a table per
clip and the total time (float32, CPU, torch on 2 threads).

    python -m benchmarks.parity_ecapa [--work-dir DIR] [--clips N] [--batch-size B]

Runs in a SpeechBrain environment (speechbrain 1.x, torch, torchaudio, soundfile) with this
package installed, and espeak-ng and sox on PATH. Took 7 min on 2 AMD EPYC cores (MLX on
Debian's OpenBLAS); peak memory ~7 GB (a padded batch of 8); ~100 MB of disk.
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"  # SpeechBrain loads the local folder; never the network

import numpy as np
import soundfile as sf
import torch

from references import sizes  # noqa: E402
from references import speechbrain_ecapa as fixtures  # noqa: E402  (the builder of the tiny test fixtures)

import mlx_audio_lid as lid  # noqa: E402  (before mlx.core: it may put an optimized BLAS under MLX)
from mlx_audio_lid.identification import pad_batch  # noqa: E402

import mlx.core as mx  # noqa: E402

from .common import machine_description, markdown_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SR = 16000
SEED = 2107
FULL = sizes.voxlingua107_ecapa()
# The ECAPA_TDNN arguments of speechbrain/lang-id-voxlingua107-ecapa, and its classifier's hidden width
FULL_SIZE = {k: FULL[k] for k in ("channels", "kernel_sizes", "dilations", "attention_channels", "se_channels",
                                  "res2net_scale", "lin_neurons")}
CLASSIFIER_NEURONS = FULL["classifier_lin_neurons"]
OUT_SCALE = 14.0  # multiplies the output Linear so posteriors are peaky (top-1 0.46 to 1.0, median ~0.9)
CALIBRATION_SECONDS = 5.0  # BatchNorm statistics: each clip's first 5 s, one padded batch
P_FLOOR = 1e-3  # "confident classes": SpeechBrain's probability above this
BUCKETS = [("1-3 s", 0, 3), ("3-10 s", 3, 10), ("10-30 s", 10, 30), ("30-60 s", 30, 61)]

# Per language: espeak-ng voice and sentences; longer clips cycle through them.
SENTENCES = {
    "en": ("en", ["Hello world.", "The quick brown fox jumps over the lazy dog.",
                  "It was a bright cold day in April, and the clocks were striking thirteen.",
                  "Please call Stella and ask her to bring these things with her from the store."]),
    "de": ("de", ["Guten Morgen!", "Der schnelle braune Fuchs springt über den faulen Hund.",
                  "Ich möchte gerne eine Tasse Kaffee und ein Stück Kuchen bestellen.",
                  "Am Wochenende fahren wir mit dem Zug in die Berge."]),
    "fr": ("fr", ["Bonjour, je voudrais un café et un croissant, s'il vous plaît.",
                  "Le petit chat dort sur le canapé depuis ce matin.",
                  "Nous allons visiter le musée du Louvre demain après-midi.",
                  "Il fait beau aujourd'hui, allons nous promener au bord de la rivière."]),
    "es": ("es", ["El veloz murciélago hindú comía feliz cardillo y kiwi.",
                  "Mañana por la mañana vamos a ir al mercado.",
                  "Me gustaría reservar una mesa para dos personas esta noche.",
                  "La biblioteca de la ciudad cierra a las ocho."]),
    "ru": ("ru", ["Привет, меня зовут Анна.", "Я живу в Москве и работаю в библиотеке.",
                  "Сегодня хорошая погода, пойдём гулять в парк.",
                  "Поезд отправляется в семь часов утра."]),
    "zh": ("cmn", ["我们去公园吧。", "今天天气很好，我们一起去散步吧。",
                   "我想要一杯咖啡和一块蛋糕。", "明天早上七点火车出发。"]),
    "it": ("it", ["Buongiorno, come stai?", "Vorrei prenotare un tavolo per due persone stasera.",
                  "Il treno per Roma parte alle sette del mattino.",
                  "Domani andiamo al mare con i nostri amici."]),
    "pt": ("pt", ["Bom dia, tudo bem com você?", "Eu gostaria de um café e um pão de queijo, por favor.",
                  "O ônibus para o centro da cidade sai às oito horas.",
                  "Amanhã vamos visitar os nossos avós no campo."]),
    "pl": ("pl", ["Dzień dobry, jak się masz?",
                  "Chciałbym zarezerwować stolik dla dwóch osób na dzisiejszy wieczór.",
                  "Pociąg do Krakowa odjeżdża o siódmej rano.",
                  "Jutro pojedziemy nad morze z przyjaciółmi."]),
    "tr": ("tr", ["Günaydın, bugün nasılsın?", "Bu akşam iki kişilik bir masa ayırtmak istiyorum.",
                  "İstanbul treni sabah yedide kalkıyor.", "Yarın arkadaşlarımızla denize gideceğiz."]),
    "nl": ("nl", ["Goedemorgen!", "Ik wil graag een tafel voor twee personen reserveren.",
                  "De trein naar Amsterdam vertrekt om zeven uur.",
                  "Morgen gaan we met onze vrienden naar het strand."]),
    "hi": ("hi", ["नमस्ते, आप कैसे हैं?", "मैं आज शाम दो लोगों के लिए एक मेज़ बुक करना चाहता हूँ।",
                  "दिल्ली की ट्रेन सुबह सात बजे निकलती है।", "कल हम अपने दोस्तों के साथ समुद्र तट पर जाएंगे।"]),
}
# (language, target seconds): whole sentences, cycled, as many as fit in the target (at least one).
PLAN = [
    ("en", 1), ("de", 1.5), ("zh", 2), ("it", 2.5), ("tr", 2.5), ("nl", 3),
    ("fr", 4), ("es", 5), ("ru", 6), ("pt", 7), ("pl", 8), ("hi", 9.5),
    ("en", 12), ("de", 15), ("zh", 18), ("it", 21), ("tr", 25), ("nl", 29),
    ("fr", 33), ("es", 38), ("ru", 44), ("pt", 50), ("pl", 55), ("hi", 60),
]


def synthesise(text, voice, tmp):
    """espeak-ng -> sox (no dither, gain guard) -> 16 kHz mono int16, read back as float32."""
    raw, out = Path(tmp) / "raw.wav", Path(tmp) / "out.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True)
    subprocess.run(["sox", "-G", "-D", str(raw), "-r", str(SR), "-c", "1", "-b", "16", str(out)], check=True)
    wav, sr = sf.read(out, dtype="int16")
    assert sr == SR and wav.ndim == 1
    return wav


def make_clips(plan, folder):
    """name -> float32 waveform (int16 / 32768, as SpeechBrain's loader reads the saved wav)."""
    folder.mkdir(parents=True, exist_ok=True)
    cache, clips = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for lang, target in plan:
            voice, sentences = SENTENCES[lang]
            pieces, total, i = [], 0, 0
            while True:
                key = (lang, i % len(sentences))
                if key not in cache:
                    cache[key] = synthesise(sentences[key[1]], voice, tmp)
                piece = cache[key]
                if pieces and total + len(piece) > target * SR:
                    break
                pieces.append(piece)
                total += len(piece)
                i += 1
            wav = np.concatenate(pieces)
            name = f"{lang}_{len(wav) / SR:04.1f}s"
            sf.write(folder / f"{name}.wav", wav, SR, subtype="PCM_16")
            clips[name] = (wav.astype(np.float32) / 32768.0, lang)
    return clips


def build_reference(folder, clips):
    cfg = dict(seed=SEED, n_mels=60, classifier="xvector", labels=fixtures.VOX_LABELS, out_scale=OUT_SCALE)
    mods = fixtures.build(cfg, SEED, sizes=FULL_SIZE, classifier_neurons=CLASSIFIER_NEURONS)
    calibration = {name: wav[: int(CALIBRATION_SECONDS * SR)] for name, (wav, _) in clips.items()}
    fixtures.randomise(mods, cfg, SEED, calibration)
    fixtures.write_folder(folder, cfg, mods, sizes=FULL_SIZE, classifier_neurons=CLASSIFIER_NEURONS)
    yaml_path = folder / "hyperparams.yaml"
    yaml_path.write_text(yaml_path.read_text().replace(
        "TINY RANDOM TEST FIXTURE in the layout of speechbrain/lang-id-voxlingua107-ecapa\n"
        "# (sizes shrunk, weights random; generated by references/speechbrain_ecapa.py)",
        "FULL-SIZE RANDOM MODEL in the layout of speechbrain/lang-id-voxlingua107-ecapa\n"
        "# (published sizes, weights random; generated by benchmarks/parity_ecapa.py)").replace(
        "mlx-audio-lid/voxlingua107_tiny", "mlx-audio-lid/voxlingua107_full_random"))
    return folder, mods


def float64_yardstick(mods, clips):
    """The same SpeechBrain modules run in float64 on each clip alone: name -> (log-probs, embedding)."""
    out = {}
    for name, (wav, _) in clips.items():
        res = fixtures.float64_outputs(mods, {name: wav})
        out[name] = (res[f"{name}/logits_float64"], res[f"{name}/embedding_float64"])
    return out


def speechbrain_outputs(folder, savedir, clips):
    from speechbrain.inference.classifiers import EncoderClassifier
    from speechbrain.utils.fetching import FetchConfig

    classifier = EncoderClassifier.from_hparams(
        source=str(folder), savedir=str(savedir), overrides={"pretrained_path": str(folder)},
        run_opts={"device": "cpu"}, fetch_config=FetchConfig(allow_network=False))
    out = {}
    with torch.no_grad():
        for name, (wav, _) in clips.items():
            batch, lens = torch.from_numpy(wav)[None], torch.tensor([1.0])
            log_probs = classifier.classify_batch(batch, lens)[0][0].numpy()
            embedding = classifier.encode_batch(batch, lens)[0, 0].numpy()
            out[name] = (log_probs, embedding)
    return out


def mlx_outputs(model, clips):
    out = {}
    for name, (wav, _) in clips.items():
        clip = mx.array(wav)[None]
        log_probs, embedding = model(clip), model.embed(clip)
        mx.eval(log_probs, embedding)
        out[name] = (np.array(log_probs[0]), np.array(embedding[0]))
    return out


def summarise(names, theirs, ours):
    """Maxima over the clips `names` -> one table row (after the bucket and the count)."""
    worst = dict(lp=0.0, lp_conf=0.0, emb=0.0, emb_scale=0.0, prob=0.0)
    agree = 0
    for name in names:
        (ref_lp, ref_emb), (our_lp, our_emb) = theirs[name], ours[name]
        ref_p = np.exp(ref_lp.astype(np.float64))
        delta = np.abs(our_lp.astype(np.float64) - ref_lp)
        worst["lp"] = max(worst["lp"], delta.max())
        worst["lp_conf"] = max(worst["lp_conf"], delta[ref_p > P_FLOOR].max())
        worst["emb"] = max(worst["emb"], np.abs(our_emb - ref_emb).max())
        worst["emb_scale"] = max(worst["emb_scale"], np.abs(ref_emb).max())
        worst["prob"] = max(worst["prob"], np.abs(np.exp(our_lp.astype(np.float64)) - ref_p).max())
        agree += int(our_lp.argmax() == ref_lp.argmax())
    return [len(names), f"{worst['lp']:.2e}", f"{worst['lp_conf']:.2e}", f"{worst['emb']:.2e}",
            f"{worst['emb_scale']:.1f}", f"{worst['prob']:.2e}", f"{agree}/{len(names)}"]


def yardstick_row(names, float64, *float32_runs):
    """For each float32 run: max |Δ log-prob| (float64 p > P_FLOOR) and max |Δ embedding| vs float64."""
    row = []
    for run in float32_runs:
        lp = max(np.abs(run[n][0] - float64[n][0])[np.exp(float64[n][0]) > P_FLOOR].max() for n in names)
        emb = max(np.abs(run[n][1] - float64[n][1]).max() for n in names)
        row += [f"{lp:.2e}", f"{emb:.2e}"]
    return row


def code_version():
    try:
        return subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty=+uncommitted changes"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work-dir", type=Path, default=None, help="where the model folder and clips go")
    parser.add_argument("--clips", type=int, default=len(PLAN),
                        help=f"how many clips (at most {len(PLAN)}; fewer are taken evenly from 1 to 60 s)")
    parser.add_argument("--batch-size", type=int, default=8,
                        help="clips per padded batch (24 clips padded to ~60 s in one batch need 20+ GB)")
    args = parser.parse_args()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="parity_ecapa_"))
    work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    n = max(1, min(args.clips, len(PLAN)))
    plan = [PLAN[round(i)] for i in np.linspace(0, len(PLAN) - 1, n)]

    def log(message):
        print(f"[{time.perf_counter() - started:6.0f} s] {message}", file=sys.stderr, flush=True)

    started = time.perf_counter()
    clips = make_clips(plan, work / "clips")
    seconds = {name: len(wav) / SR for name, (wav, _) in clips.items()}
    log(f"{len(clips)} clips, {min(seconds.values()):.1f} to {max(seconds.values()):.1f} s, "
        f"{sum(seconds.values()):.0f} s in all, {len({lang for _, lang in clips.values()})} languages")
    folder, mods = build_reference(work / "voxlingua107-ecapa-random", clips)
    log(f"built, calibrated and saved the full-size model in {folder}")
    theirs = speechbrain_outputs(folder, work / "speechbrain_savedir", clips)
    log("SpeechBrain: classify_batch and encode_batch on each clip alone")
    float64 = float64_yardstick(mods, clips)
    del mods
    log("SpeechBrain's modules in float64 on each clip alone (yardstick)")

    model = lid.load(folder)
    ours = mlx_outputs(model, clips)
    log("mlx_audio_lid: model() and model.embed() on each clip alone")
    names = sorted(clips, key=seconds.get)  # shortest first
    # Clips dealt round-robin by length into padded batches: each mixes ~1 s clips with 48-60 s ones.
    groups = [names[i :: -(-len(names) // args.batch_size)] for i in range(-(-len(names) // args.batch_size))]
    batched, shapes = {}, []
    for group in groups:
        waveforms, lengths = pad_batch([clips[name][0] for name in group])
        out = np.array(model(waveforms, lengths))
        batched.update(zip(group, out))
        shapes.append(tuple(waveforms.shape))
        log(f"mlx_audio_lid: padded batch {shapes[-1]}; "
            f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.1f} GB")
    batched = np.stack([batched[name] for name in names])
    alone = np.stack([ours[name][0] for name in names])
    batch_delta = np.abs(batched - alone).max()
    batch_delta_conf = np.abs(batched - alone)[np.exp(alone) > P_FLOOR].max()
    batch_agree = int((batched.argmax(1) == alone.argmax(1)).sum())

    rows, yard_rows = [], []
    for label, lo, hi in BUCKETS:
        members = [name for name in names if lo <= seconds[name] < hi]
        if members:
            rows.append([label] + summarise(members, theirs, ours))
            yard_rows.append([label, len(members)] + yardstick_row(members, float64, theirs, ours))
    rows.append(["all"] + summarise(names, theirs, ours))
    yard_rows.append(["all", len(names)] + yardstick_row(names, float64, theirs, ours))
    labels = model.labels
    per_clip = []
    for name in names:
        (ref_lp, ref_emb), (our_lp, our_emb) = theirs[name], ours[name]
        ref_top, our_top = int(ref_lp.argmax()), int(our_lp.argmax())
        per_clip.append([name, f"{seconds[name]:.2f}", f"{labels[ref_top]} {np.exp(ref_lp[ref_top]):.4f}",
                         f"{labels[our_top]} {np.exp(our_lp[our_top]):.4f}",
                         f"{np.abs(our_lp - ref_lp).max():.2e}", f"{np.abs(our_emb - ref_emb).max():.2e}"])
        if ref_top != our_top:
            print(f"top-1 differs on {name}: SpeechBrain {labels[ref_top]} p={np.exp(ref_lp[ref_top]):.6f} "
                  f"(ours {np.exp(our_lp[ref_top]):.6f}), ours {labels[our_top]} p={np.exp(our_lp[our_top]):.6f} "
                  f"(SpeechBrain {np.exp(ref_lp[our_top]):.6f})")

    print(f"Machine: {machine_description()}; torch threads {torch.get_num_threads()}; "
          f"mlx_audio_lid {code_version()}\n")
    print(f"{len(names)} espeak-ng clips, {len({lang for _, lang in clips.values()})} languages, "
          f"{min(seconds.values()):.1f} to {max(seconds.values()):.1f} s; each clip alone (batch of 1), "
          f"float32; 'confident' = classes with SpeechBrain p > {P_FLOOR:g}.\n")
    print(markdown_table(["duration", "clips", "max abs Δ log-prob", "max abs Δ log-prob (p > 1e-3)",
                          "max abs Δ embedding", "max abs embedding", "max abs Δ prob", "top-1 agree"], rows))
    padded = max(min(seconds[n] for n in g) for g in groups), min(max(seconds[n] for n in g) for g in groups)
    print(f"\nPadded batches {', '.join(map(str, shapes))} (all {len(names)} clips, dealt round-robin by length: "
          f"each batch pads a clip of <= {padded[0]:.1f} s to >= {padded[1]:.1f} s) vs each clip alone (this package): "
          f"max abs Δ log-prob {batch_delta:.2e} (max abs log-prob {np.abs(alone).max():.1f}), "
          f"over classes with p > {P_FLOOR:g} {batch_delta_conf:.2e}; top-1 agree {batch_agree}/{len(names)}\n")
    print("Float32 rounding yardstick: each float32 run vs SpeechBrain's modules run in float64 "
          f"('confident' = float64 p > {P_FLOOR:g}).\n")
    print(markdown_table(["duration", "clips", "SpeechBrain f32: max abs Δ log-prob (p > 1e-3)",
                          "SpeechBrain f32: max abs Δ embedding", "mlx_audio_lid f32: max abs Δ log-prob (p > 1e-3)",
                          "mlx_audio_lid f32: max abs Δ embedding"], yard_rows))
    print()
    print(markdown_table(["clip", "seconds", "SpeechBrain top-1, p", "mlx_audio_lid top-1, p",
                          "max abs Δ log-prob", "max abs Δ embedding"], per_clip))
    print(f"\nTotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
