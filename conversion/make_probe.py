"""Regenerate the probe audio that every conversion is verified on (mlx_audio_lid/probe/).

Eight languages spoken by espeak-ng, resampled by SoX to 16 kHz mono 16-bit without dither,
and cut to one window of PROBE_SECONDS from the first sample above -40 dBFS. The output is
deterministic for given espeak-ng and SoX versions (written to probe.json); regenerate all
windows together, since any change moves every recorded fidelity figure.

    python conversion/make_probe.py [--out mlx_audio_lid/probe]
"""

import argparse
import hashlib
import json
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000  # Hz
PROBE_SECONDS = 2.0  # one window per language
ONSET = 10 ** (-40 / 20)  # -40 dBFS: where speech starts after espeak-ng's leading silence

# (ISO 639-3, espeak-ng voice, text): one sentence of ~3 s each, the same meaning in every language.
SENTENCES = [
    ("eng", "en", "The weather is lovely today, so we will walk to the market by the river."),
    ("deu", "de", "Das Wetter ist heute schön, also gehen wir zu Fuß zum Markt am Fluss."),
    ("fra", "fr", "Il fait beau aujourd'hui, alors nous irons à pied au marché près de la rivière."),
    ("spa", "es", "Hoy hace buen tiempo, así que iremos caminando al mercado junto al río."),
    ("rus", "ru", "Сегодня хорошая погода, поэтому мы пойдём пешком на рынок у реки."),
    ("cmn", "cmn", "今天天气很好，所以我们走路去河边的市场。"),
    ("ara", "ar", "الطقس جميل اليوم، لذلك سنمشي إلى السوق بجانب النهر."),
    ("hin", "hi", "आज मौसम अच्छा है, इसलिए हम नदी के किनारे बाज़ार तक पैदल चलेंगे।"),
]


def first_line(command):
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip().splitlines()[0]


def speak(voice: str, text: str, work: Path) -> np.ndarray:
    raw, resampled = work / f"{voice}_22k.wav", work / f"{voice}_16k.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True)
    subprocess.run(["sox", "-D", "-G", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(resampled)], check=True)
    with wave.open(str(resampled), "rb") as f:
        return np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")


def window(samples: np.ndarray, name: str) -> np.ndarray:
    loud = np.flatnonzero(np.abs(samples) > ONSET * 32768)
    size = int(PROBE_SECONDS * SAMPLE_RATE)
    if not loud.size or loud[0] + size > samples.size:
        raise RuntimeError(f"{name}: espeak-ng gave {samples.size / SAMPLE_RATE:.2f} s, too short for a window")
    return samples[loud[0] : loud[0] + size]


def write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(SAMPLE_RATE)
        f.writeframes(samples.astype("<i2").tobytes())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "mlx_audio_lid" / "probe")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    windows = []
    with tempfile.TemporaryDirectory() as work:
        for language, voice, text in SENTENCES:
            samples = window(speak(voice, text, Path(work)), language)
            path = args.out / f"{language}.wav"
            write_wav(path, samples)
            windows.append({"file": path.name, "language": language, "espeak_voice": voice, "text": text,
                            "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})
    manifest = {
        "sample_rate": SAMPLE_RATE,
        "window_seconds": PROBE_SECONDS,
        "made_with": [first_line(["espeak-ng", "--version"]), first_line(["sox", "--version"])],
        "windows": windows,
    }
    (args.out / "probe.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(windows)} windows of {PROBE_SECONDS} s to {args.out}")


if __name__ == "__main__":
    main()
