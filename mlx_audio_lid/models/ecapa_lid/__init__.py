"""`ecapa_lid`: SpeechBrain's ECAPA-TDNN language ID (VoxLingua107, CommonLanguage) on MLX."""

from pathlib import Path

from ..family import Family, model_exports
from . import source

FAMILY = Family(
    model_type=source.MODEL_TYPE,
    module=__name__,
    # VoxLingua107's ECAPA was trained on 3 s crops (SpeechBrain recipe: sentence_len 3).
    window=3.0,
    hop=1.5,
    # SpeechBrain's classify_file and classify_batch run an utterance whole, and short crops are
    # less accurate; the full-size network was checked against SpeechBrain on 1-60 s clips
    # (benchmarks/parity_ecapa.py). Its cost is linear in the length.
    max_whole=60.0,
    license="apache-2.0",  # both speechbrain/lang-id-* checkpoints
    tags=("ecapa-tdnn", "speechbrain"),
    card_template=Path(__file__).with_name("card.md"),
    recognise=source.recognise,
    read=source.read,
    hub_patterns=source.HUB_PATTERNS,
    layouts=source.LAYOUTS,
)

__getattr__ = model_exports(__name__)  # ModelConfig, Model
