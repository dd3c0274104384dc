"""Voice activity: 16 kHz samples in, one speech flag per frame out, recording by recording.

A VAD plugs into `identify(..., vad=...)` by implementing these two classes; the windowing and
the timeline only see the flags and the frame length.
"""

import abc

import numpy as np


class VADStream(abc.ABC):
    """The state of one recording: push its samples block by block, then finish."""

    @abc.abstractmethod
    def push(self, samples: np.ndarray) -> np.ndarray:
        """float32 16 kHz samples -> bool speech flag per frame completed so far (keeps the remainder).

        A VAD whose rules look ahead (Silero's) returns flags only as far as they are final and
        the rest with later pushes; push and finish together flag every frame once, in order.
        """

    @abc.abstractmethod
    def finish(self) -> np.ndarray:
        """Flags for the trailing partial frame (none if there is none), and any still held back."""


class VoiceActivity(abc.ABC):
    frame: int  # samples per decision at 16 kHz

    @abc.abstractmethod
    def stream(self) -> VADStream:
        """A fresh per-recording state."""


class _EveryFrame(VADStream):
    def __init__(self, frame: int):
        self.frame, self.pending = frame, 0

    def push(self, samples: np.ndarray) -> np.ndarray:
        complete, self.pending = divmod(self.pending + len(samples), self.frame)
        return np.ones(complete, bool)

    def finish(self) -> np.ndarray:
        return np.ones(int(self.pending > 0), bool)


class NoVoiceActivity(VoiceActivity):
    """No VAD (`vad=None`): every frame counts as speech, so every window runs."""

    frame = 320  # any length would do; the energy VAD's, so speech seconds are counted alike

    def stream(self) -> VADStream:
        return _EveryFrame(self.frame)
