"""`whisper_lid`: OpenAI Whisper's language token as a language-ID model (faster-whisper's detect_language)."""

import importlib
from pathlib import Path
from types import SimpleNamespace

from . import source

# The family record (issue 9's models.family.Family: these are its fields).
FAMILY = SimpleNamespace(
    model_type=source.MODEL_TYPE,
    module=__name__,
    # Whisper reads 30 s at a time (every input is padded or trimmed to 30 s), so a 30 s window
    # is what it was trained on and costs no more than a shorter one; a 15 s hop places a
    # language change within 15 s, as the other families' half-window hops do.
    window=30.0,
    hop=15.0,
    max_whole=30.0,  # longer recordings are windowed (or: detect_language, faster-whisper's rule)
    license="mit",  # openai/whisper's weights and every conversion of them
    tags=("whisper",),
    card_template=Path(__file__).with_name("card.md"),
    recognise=source.recognise,
    read=source.read,
    hub_patterns=source.HUB_PATTERNS,
    layouts=source.LAYOUTS,
)


def __getattr__(name: str):
    # ModelConfig and Model on first use: importing the family stays free of MLX and mlx-audio.
    if name in ("ModelConfig", "Model"):
        return getattr(importlib.import_module(f"{__name__}.model"), name)
    if name == "detect_language":
        return importlib.import_module(f"{__name__}.detect").detect_language
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
