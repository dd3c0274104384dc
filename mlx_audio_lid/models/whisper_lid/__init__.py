"""`whisper_lid`: OpenAI Whisper's language token as a language-ID model (faster-whisper's detect_language)."""

import importlib
from pathlib import Path

from ..family import Family, model_exports
from . import source

FAMILY = Family(
    model_type=source.MODEL_TYPE,
    module=__name__,
    # Whisper reads 30 s at a time (every input is padded or trimmed to 30 s), so a 30 s window
    # is what it was trained on and costs no more than a shorter one; a 15 s hop places a
    # language change within 15 s, as the other families' half-window hops do.
    window=30.0,
    hop=15.0,
    # faster-whisper's detect_language reads the first 30 s of whatever it is given; a longer
    # recording is windowed here (detect_language in this package gives faster-whisper's rule).
    max_whole=30.0,
    license="mit",  # openai/whisper's weights and every conversion of them
    tags=("whisper",),
    card_template=Path(__file__).with_name("card.md"),
    recognise=source.recognise,
    read=source.read,
    hub_patterns=source.HUB_PATTERNS,
    layouts=source.LAYOUTS,
)

_model_exports = model_exports(__name__)


def __getattr__(name: str):
    # ModelConfig, Model and detect_language on first use: importing the family stays free of MLX.
    if name == "detect_language":
        return importlib.import_module(f"{__name__}.detect").detect_language
    return _model_exports(name)
