"""Speech made in the test with espeak-ng, and the same audio in other file formats."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile

SENTENCES = {
    "en": "The weather is lovely today, and we are going for a long walk by the river.",
    "de": "Das Wetter ist heute schön, und wir machen einen langen Spaziergang am Fluss.",
    "ru": "Сегодня прекрасная погода, и мы идём на долгую прогулку вдоль реки.",
}


def speak(voice: str, path: Path) -> Path:
    """A WAV of espeak-ng reading SENTENCES[voice] (22050 Hz, 16-bit mono, as espeak-ng writes it)."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("these tests need espeak-ng on PATH: apt-get install -y espeak-ng (.ci/run installs it)")
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), SENTENCES[voice]], check=True, capture_output=True)
    return path


def convert(wav: Path, fmt: str) -> Path:
    """The WAV's audio as FLAC, MP3 or Ogg Vorbis (written by soundfile's libsndfile)."""
    samples, rate = soundfile.read(wav, dtype="float32")
    target = wav.with_suffix("." + fmt)
    subtype = {"flac": "PCM_16", "mp3": "MPEG_LAYER_III", "ogg": "VORBIS"}[fmt]
    soundfile.write(target, samples, rate, format=fmt.upper() if fmt != "mp3" else "MP3", subtype=subtype)
    return target


def read_wav(path: Path) -> tuple:
    samples, rate = soundfile.read(path, dtype="float32")
    return np.asarray(samples), rate
