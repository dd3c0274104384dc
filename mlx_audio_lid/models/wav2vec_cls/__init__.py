"""`wav2vec_cls`: Meta's MMS-LID (transformers' Wav2Vec2ForSequenceClassification) on MLX."""

from pathlib import Path

from ..family import Family, model_exports
from . import source

FAMILY = Family(
    model_type=source.MODEL_TYPE,
    module=__name__,
    # MMS-LID was trained on whole utterances; 10 s windows are long enough for a stable answer,
    # and a 5 s hop places a language change within 5 s.
    window=10.0,
    hop=5.0,
    # transformers' audio-classification pipeline runs a clip whole. Up to 30 s the full-size
    # network was checked against it (benchmarks/parity_mms.py); attention's memory grows with
    # the square of the length (16 heads x 1500^2 scores per layer at 30 s, 4x that at 60 s).
    max_whole=30.0,
    license="cc-by-nc-4.0",  # every facebook/mms-lid-* checkpoint
    tags=("wav2vec2", "mms"),
    card_template=Path(__file__).with_name("card.md"),
    recognise=source.recognise,
    read=source.read,
    hub_patterns=source.HUB_PATTERNS,
    layouts=source.LAYOUTS,
)

__getattr__ = model_exports(__name__)  # ModelConfig, Model
