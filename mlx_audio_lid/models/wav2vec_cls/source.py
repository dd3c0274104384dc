"""The published layout of MMS-LID: a transformers Wav2Vec2ForSequenceClassification checkpoint.

Files: `config.json` (architectures names the class), `model.safetensors`, and
`preprocessor_config.json` (normalisation and sampling rate), e.g. facebook/mms-lid-256.
"""

import logging
from pathlib import Path
from typing import Tuple

from ...readers import Weights, read_json, read_safetensors

logger = logging.getLogger(__name__)

MODEL_TYPE = "wav2vec_cls"  # what this reader writes into the configs it returns
ARCHITECTURE = "Wav2Vec2ForSequenceClassification"
LAYOUTS = f"a transformers {ARCHITECTURE} checkpoint (config.json, model.safetensors, preprocessor_config.json)"
HUB_PATTERNS = ("config.json", "preprocessor_config.json", "*.safetensors")  # never pytorch_model.bin


def recognise(folder: Path) -> bool:
    config = folder / "config.json"
    return config.exists() and ARCHITECTURE in (read_json(config).get("architectures") or [])


def read(folder: Path) -> Tuple[dict, Weights]:
    """-> (this family's config: transformers' keys plus the preprocessor's, the checkpoint's weights)."""
    weights = read_safetensors(folder)
    config = dict(read_json(folder / "config.json"), model_type=MODEL_TYPE)
    preprocessor = folder / "preprocessor_config.json"
    if preprocessor.exists():
        settings = read_json(preprocessor)
        config["do_normalize"] = settings.get("do_normalize", True)
        config["sample_rate"] = settings.get("sampling_rate", 16000)
    if config.get("adapter_attn_dim") and not any(".adapter_layer." in k for k in weights):
        logger.warning(
            "config sets adapter_attn_dim=%s but the checkpoint has no adapter_layer weights: "
            "building the model without attention adapters", config["adapter_attn_dim"],
        )
        config["adapter_attn_dim"] = None
    return config, weights
