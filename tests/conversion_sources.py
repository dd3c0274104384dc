"""Sources for the conversion tests, in the published layouts: tiny MMS-LID checkpoints saved by
transformers (references/mms.py) and the committed SpeechBrain ECAPA folders (tests/fixtures/ecapa).

The MMS-LID ones downsample 320x like the real conv stack, so a 2 s probe window is 100 frames
and every conversion of one takes well under a second.
"""

import shutil
from pathlib import Path

from references import ecapa as reference_ecapa
from references import mms as reference_mms

ECAPA = {
    "speechbrain/lang-id-voxlingua107-ecapa": reference_ecapa.FIXTURES / "voxlingua107_tiny",
    "speechbrain/lang-id-commonlanguage_ecapa": reference_ecapa.FIXTURES / "commonlanguage_tiny",
}


def tiny_mms(folder: Path, num_labels: int = len(reference_mms.LANGUAGES), seed: int = 0) -> Path:
    config = reference_mms.tiny_config(num_labels=num_labels)
    config.conv_dim, config.conv_kernel, config.conv_stride = (16, 16, 16, 24, 24), (10, 3, 3, 3, 2), (5, 4, 4, 2, 2)
    config.num_feat_extract_layers = len(config.conv_dim)
    return reference_mms.save_published_layout(reference_mms.build(config, seed=seed), folder)


def speechbrain(name: str, folder: Path) -> Path:
    """A copy of a committed SpeechBrain fixture folder (the converter never writes to its source)."""
    return Path(shutil.copytree(ECAPA[name], folder))
