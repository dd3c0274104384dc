"""How close `ecapa_lid` is to SpeechBrain on the committed fixtures, and what float32 alone costs.

Compares this port with SpeechBrain's recorded float32 outputs and with its float64 run of the
same pipeline (tests/fixtures/ecapa/reference.npz), and SpeechBrain's float32 run with its own
float64 run. Prints the maxima over the six clips.

    python -m benchmarks.fidelity_ecapa_fixtures
"""

import mlx_audio_lid as lid  # first: on Linux it puts an optimized BLAS under MLX

import mlx.core as mx  # noqa: E402
import numpy as np  # noqa: E402

from mlx_audio_lid.models.ecapa_lid.fbank import speechbrain_fbank  # noqa: E402
from references import ecapa as ref  # noqa: E402

from .common import machine_description, markdown_table  # noqa: E402


def main():
    worst = {}

    def note(row, column, value):
        worst[(row, column)] = max(worst.get((row, column), 0.0), float(value))

    for model_name in ref.MODELS:
        model = lid.load(ref.FIXTURES / model_name)
        cosine = model.config.classifier == "cosine"
        for name in ref.clip_names():
            audio = mx.array(ref.clip(name))[None]
            get = lambda what: ref.recorded(model_name, name, what).astype(np.float64)  # noqa: E731
            fbank = np.array(speechbrain_fbank(audio, mx.array([audio.shape[1]]), model.config.n_mels))[0]
            above = get("fbank") > get("fbank").max() - 80 + 1e-3
            far_above = get("fbank") > get("fbank").max() - 50
            note("log-mel (dB), bins above the floor", "port vs SB float32", np.abs(fbank - get("fbank"))[above].max())
            note("log-mel (dB), bins 30 dB above the floor", "port vs SB float32", np.abs(fbank - get("fbank"))[far_above].max())
            note("log-mel (dB), bins above the floor", "port vs SB float64", np.abs(fbank - get("fbank_float64"))[above].max())
            note("log-mel (dB), bins above the floor", "SB float32 vs SB float64", np.abs(get("fbank") - get("fbank_float64"))[above].max())
            embedding = np.array(model.embed(audio))[0]
            note("embedding", "port vs SB float32", np.abs(embedding - get("embedding")).max())
            note("embedding", "port vs SB float64", np.abs(embedding - get("embedding_float64")).max())
            note("embedding", "SB float32 vs SB float64", np.abs(get("embedding") - get("embedding_float64")).max())
            out = np.array(model(audio))[0].astype(np.float64) / (model.config.cosine_scale if cosine else 1)
            row = "CommonLanguage cosine scores" if cosine else "VoxLingua107 log-probabilities"
            note(row, "port vs SB float32", np.abs(out - get("logits")).max())
            note(row, "port vs SB float64", np.abs(out - get("logits_float64")).max())
            note(row, "SB float32 vs SB float64", np.abs(get("logits") - get("logits_float64")).max())
            note(row, "top-1 disagreements", int(out.argmax() != get("logits").argmax()))
    columns = ["port vs SB float32", "port vs SB float64", "SB float32 vs SB float64", "top-1 disagreements"]
    rows = []
    for row in dict.fromkeys(r for r, _ in worst):
        cells = [worst.get((row, c)) for c in columns]
        rows.append([row] + ["" if v is None else (str(int(v)) if c.startswith("top") else f"{v:.1e}") for v, c in zip(cells, columns)])
    print(f"Machine: {machine_description()}\n")
    print(markdown_table(["quantity (max over 6 clips)"] + columns, rows))


if __name__ == "__main__":
    main()
