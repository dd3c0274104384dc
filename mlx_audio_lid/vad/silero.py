"""Silero VAD (silero-vad 6.2.3, MIT, Silero Team) on MLX: a frame of 32 ms is speech or not.

The network is mlx-audio's own Silero VAD model (`mlx_audio.vad.models.silero_vad`), loaded by
mlx-audio's loader from the weights converted from Silero's ONNX file
(conversion/convert_silero_vad.py -> silero_weights/). Silero runs one 512-sample frame per call,
each seeing the 64 samples before it, the LSTM carrying its state from frame to frame. Here a
block's frames go through the convolutional front end together, as one batch, and the LSTM
runs over them as one sequence (the same arithmetic as frame by frame, far fewer calls).

Frames become speech by Silero's own segment rules (segments.py: hysteresis, minimum speech and
silence, padding). Those rules look ahead (a quiet stretch ends a segment only after 100 ms;
a segment under 250 ms is dropped), so `push` returns flags only as far as they are final,
at most ~0.3 s behind the samples pushed; `finish` returns the rest.
"""

from functools import lru_cache
from pathlib import Path
from typing import List, Optional, Tuple

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .base import VADStream, VoiceActivity
from .segments import FRAME, Rules, Segmenter, dilation, speech_segments

WEIGHTS = Path(__file__).with_name("silero_weights")
CONTEXT = 64  # samples before each frame that the network also sees (Silero's 16 kHz context)
FRAMES_PER_CALL = 2048  # frames (65 s) per network call: bounds the graph whatever a block's size


class _FramesAsSequence(nn.Module):
    """The branch's LSTM, stepping along a batch of consecutive frames instead of across it.

    mlx-audio's branch turns each (576-sample) window into one LSTM step; given a batch of a
    block's windows, its front end yields (frames, 1, 128), which this runs as one sequence
    (1, frames, 128) from the carried state, so each frame's output and state are Silero's.
    """

    def __init__(self, lstm: nn.LSTM):
        super().__init__()
        self.lstm = lstm

    def __call__(self, x: mx.array, hidden=None, cell=None):
        hidden_seq, cell_seq = self.lstm(x.swapaxes(0, 1), hidden=hidden, cell=cell)  # (1, frames, 128)
        return hidden_seq.swapaxes(0, 1), cell_seq.swapaxes(0, 1)  # (frames, 1, 128): one step per window


@lru_cache(maxsize=None)
def network():
    """mlx-audio's Silero VAD model with the packaged weights (loaded once per process)."""
    from mlx_audio.vad import load

    model = load(str(WEIGHTS), strict=True)
    model.vad_16k.lstm = _FramesAsSequence(model.vad_16k.lstm)
    return model


def checked(samples: np.ndarray) -> np.ndarray:
    samples = np.asarray(samples, np.float32)
    if samples.ndim != 1:
        raise ValueError(f"Silero VAD takes one channel of 16 kHz samples (1-D), got shape {samples.shape}")
    if not np.isfinite(samples).all():
        raise ValueError("audio contains NaN or infinite samples; clean or re-export it")
    return samples


class Probabilities:
    """The network over one recording, block by block: speech probability per 512-sample frame."""

    def __init__(self, model=None):
        self.model = network() if model is None else model
        self.state: Optional[mx.array] = None  # LSTM (hidden, cell), (2, 1, 128)
        self.context = np.zeros(CONTEXT, np.float32)  # the samples before the next frame
        self.pending = np.zeros(0, np.float32)  # samples of the unfinished frame

    def push(self, samples: np.ndarray) -> np.ndarray:
        samples = np.concatenate([self.pending, checked(samples)])
        whole = len(samples) // FRAME * FRAME
        self.pending = samples[whole:]
        return self._run(samples[:whole])

    def finish(self) -> np.ndarray:
        """The trailing partial frame, zero-padded as Silero pads it."""
        last = np.zeros(FRAME if len(self.pending) else 0, np.float32)
        last[: len(self.pending)] = self.pending
        self.pending = self.pending[:0]
        return self._run(last)

    def _run(self, samples: np.ndarray) -> np.ndarray:
        out = [np.zeros(0, np.float32)]
        for first in range(0, len(samples), FRAMES_PER_CALL * FRAME):
            audio = np.concatenate([self.context, samples[first : first + FRAMES_PER_CALL * FRAME]])
            windows = sliding_window_view(audio, CONTEXT + FRAME)[::FRAME]  # (frames, 576)
            probabilities, state = self.model(mx.array(windows), state=self.state, sample_rate=16000)
            self.state = state[:, -1:, :]  # the last frame's: (2, 1, 128)
            mx.eval(probabilities, self.state)
            out.append(np.array(probabilities[:, 0]))
            self.context = audio[-CONTEXT:]
        probabilities = np.concatenate(out)
        if not np.isfinite(probabilities).all():
            raise ValueError("Silero VAD gave non-finite speech probabilities: are the samples within [-1, 1]?")
        return probabilities


class _SileroStream(VADStream):
    def __init__(self, vad: "SileroVAD"):
        self.network = Probabilities(vad.model)
        self.segmenter = Segmenter(vad.rules)
        self.before, self.after = dilation(vad.rules)
        self.length = 0  # samples pushed
        self.base = 0  # the first frame held in `unpadded`
        self.unpadded = np.zeros(0, bool)  # frame in a kept segment, before padding, frames base..
        self.emitted = 0  # frames whose flags have been returned

    def push(self, samples: np.ndarray) -> np.ndarray:
        self._mark(self.network.push(samples))
        self.length += len(samples)
        settled, sure_from = self.segmenter.settled()
        if sure_from is not None:
            self._set(sure_from, settled)
        return self._emit(settled - self.before)  # a later start may still pad frames before it

    def finish(self) -> np.ndarray:
        self._mark(self.network.finish())
        last = self.segmenter.close(self.length)
        if last is not None:
            self._set(last, self.segmenter.frames)
        return self._emit(self.segmenter.frames)

    def _mark(self, probabilities: np.ndarray) -> None:
        self.unpadded = np.concatenate([self.unpadded, np.zeros(len(probabilities), bool)])
        for start, end in self.segmenter.feed(probabilities.tolist()):
            self._set(start, end)

    def _set(self, start: int, end: int) -> None:
        self.unpadded[max(start - self.base, 0) : end - self.base] = True

    def _emit(self, end: int) -> np.ndarray:
        """Flags of frames emitted..end: speech where the padding of a kept segment reaches the
        frame's centre, i.e. a kept frame lies at most `after` frames before or `before` after it."""
        frames = np.arange(self.emitted, max(end, self.emitted))
        counts = np.concatenate([[0], np.cumsum(self.unpadded)])
        low = np.clip(frames - self.after - self.base, 0, len(self.unpadded))
        high = np.clip(frames + self.before + 1 - self.base, 0, len(self.unpadded))
        self.emitted += len(frames)
        keep = max(self.emitted - self.after - self.base, 0)  # what later flags still look back at
        self.unpadded, self.base = self.unpadded[keep:], self.base + keep
        return counts[high] - counts[low] > 0


class SileroVAD(VoiceActivity):
    """Silero's speech probability per 32 ms frame, and its segment rules (defaults: Silero's)."""

    frame = FRAME  # samples: 32 ms at 16 kHz

    def __init__(self, threshold: float = 0.5, neg_threshold: Optional[float] = None, min_speech_ms: float = 250,
                 min_silence_ms: float = 100, speech_pad_ms: float = 30):
        self.rules = Rules(threshold, neg_threshold, min_speech_ms, min_silence_ms, speech_pad_ms)
        self.model = network()

    def stream(self) -> VADStream:
        return _SileroStream(self)

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        """Speech probability of each frame of a whole 16 kHz recording (the last one zero-padded)."""
        network = Probabilities(self.model)
        return np.concatenate([network.push(samples), network.finish()])

    def segments(self, samples: np.ndarray) -> List[Tuple[int, int]]:
        """Speech segments of a whole 16 kHz recording, (start, end) in samples, as Silero finds them."""
        return speech_segments(self.probabilities(samples), len(samples), self.rules)
