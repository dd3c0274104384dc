"""Voice activity detectors, by name: `identify(..., vad="energy" | "silero" | None | a VoiceActivity)`."""

import importlib
from typing import Optional, Union

from .base import NoVoiceActivity, VADStream, VoiceActivity

# name -> "module:class"; a VAD added later is one line here.
NAMES = {"energy": "mlx_audio_lid.vad.energy:EnergyVAD", "silero": "mlx_audio_lid.vad.silero:SileroVAD"}


def resolve(vad: Union[None, bool, str, VoiceActivity], threshold_db: Optional[float] = None) -> VoiceActivity:
    """What `identify`'s `vad=` names -> a VoiceActivity (None: every frame is speech).

    `vad=True`/`False` are the earlier spellings of "energy"/None. `threshold_db` is the energy
    VAD's threshold; it means nothing to another VAD.
    """
    if vad is True:
        vad = "energy"
    if threshold_db is not None and not (isinstance(vad, str) and vad == "energy"):
        raise ValueError("vad_threshold_db is the energy VAD's threshold: it needs vad='energy'")
    if vad is None or vad is False:
        return NoVoiceActivity()
    if isinstance(vad, VoiceActivity):
        return vad
    if isinstance(vad, str) and vad in NAMES:
        module, name = NAMES[vad].split(":")
        cls = getattr(importlib.import_module(module), name)
        return cls() if threshold_db is None else cls(threshold_db)
    raise ValueError(f"vad must be one of {', '.join(map(repr, NAMES))}, None or a VoiceActivity, got {vad!r}")


__all__ = ["NAMES", "NoVoiceActivity", "VADStream", "VoiceActivity", "resolve"]
