"""The energy VAD: a frame is speech when its RMS level is above a threshold in dBFS.

It cannot tell speech from music or noise of the same level; it does skip silence, which is
what keeps a long recording's silent stretches from being run through the model.
"""

import numpy as np

from .base import VADStream, VoiceActivity

FRAME = 320  # samples: 20 ms at 16 kHz
THRESHOLD_DB = -50.0  # frame RMS in dBFS above which a frame counts as speech


def frame_levels_db(samples: np.ndarray, frame: int = FRAME) -> np.ndarray:
    """RMS level in dBFS of each frame (a short last frame is measured over its own samples)."""
    samples = np.asarray(samples, np.float32)
    whole = len(samples) // frame
    frames = samples[: whole * frame].reshape(whole, frame)
    # Each frame's sum of squares in one pass, without a padded or float64 copy of the audio
    # (those made an hour's VAD 0.4 s); 320 float32 squares sum to ~1e-6 relative, ~4e-6 dB.
    power = np.einsum("ij,ij->i", frames, frames).astype(np.float64) / frame
    if len(samples) % frame:
        tail = samples[whole * frame :].astype(np.float64)
        power = np.append(power, np.dot(tail, tail) / len(tail))
    return 10 * np.log10(np.maximum(power, 1e-20))


class _EnergyStream(VADStream):
    def __init__(self, vad: "EnergyVAD"):
        self.vad = vad
        self.pending = np.zeros(0, np.float32)  # samples of the unfinished frame

    def push(self, samples: np.ndarray) -> np.ndarray:
        samples = np.concatenate([self.pending, samples]) if len(self.pending) else samples
        whole = len(samples) // self.vad.frame * self.vad.frame
        self.pending = samples[whole:]
        return frame_levels_db(samples[:whole], self.vad.frame) >= self.vad.threshold_db

    def finish(self) -> np.ndarray:
        last, self.pending = self.pending, np.zeros(0, np.float32)
        return frame_levels_db(last, self.vad.frame) >= self.vad.threshold_db


class EnergyVAD(VoiceActivity):
    def __init__(self, threshold_db: float = THRESHOLD_DB, frame: int = FRAME):
        if not np.isfinite(threshold_db):
            raise ValueError(f"threshold_db must be a finite level in dBFS, got {threshold_db}")
        self.threshold_db, self.frame = float(threshold_db), int(frame)

    def stream(self) -> VADStream:
        return _EnergyStream(self)
