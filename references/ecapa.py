"""The committed SpeechBrain fixtures (tests/fixtures/ecapa, made by references/speechbrain_ecapa.py) as arrays."""

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
from mlx_audio.audio_io import read

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "ecapa"
MODELS = ("voxlingua107_tiny", "commonlanguage_tiny")


@lru_cache(maxsize=None)
def metadata() -> dict:
    return json.loads((FIXTURES / "reference.json").read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def reference() -> dict:
    with np.load(FIXTURES / "reference.npz") as arrays:
        return {k: arrays[k] for k in arrays.files}


def clip_names():
    return [clip["name"] for clip in metadata()["clips"]]


@lru_cache(maxsize=None)
def clip(name: str) -> np.ndarray:
    audio, rate = read(FIXTURES / "clips" / f"{name}.wav", dtype="float32")
    assert rate == 16000
    return audio


def recorded(model: str, name: str, what: str) -> np.ndarray:
    """SpeechBrain's output for one clip alone: fbank, embedding, logits (+ `_float64` twins)."""
    return reference()[f"{model}/{name}/{what}"]
