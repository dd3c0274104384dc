"""Speech segments from per-frame speech probabilities, by Silero's own rules.

This is `get_speech_timestamps_from_probs` of silero-vad 6.2.3 (`silero_vad/utils_vad.py`) with
its defaults: a segment starts at a frame with probability >= `threshold`, ends at the first
frame below `neg_threshold` (threshold - 0.15) once `min_silence_ms` of such frames follow, is
kept only if longer than `min_speech_ms`, and is padded by `speech_pad_ms` each side (a gap
shorter than two pads is split between its neighbours). `max_speech_duration_s` stays at its
default, infinity, so the rules that cut long segments never apply.

`Segmenter` holds that state machine so that it can be fed block by block, and says how far its
decisions are final; `speech_segments` runs it over a whole recording.
"""

from dataclasses import dataclass
from typing import Iterable, List, Optional, Tuple

import numpy as np

FRAME = 512  # samples per probability: 32 ms at 16 kHz (Silero's 16 kHz step)
SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Rules:
    threshold: float = 0.5
    neg_threshold: Optional[float] = None  # None: max(threshold - 0.15, 0.01), as Silero's
    min_speech_ms: float = 250
    min_silence_ms: float = 100
    speech_pad_ms: float = 30

    def __post_init__(self):
        for name in ("threshold", "min_speech_ms", "min_silence_ms", "speech_pad_ms"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must lie between 0 and 1, got {self.threshold}")
        if self.neg_threshold is not None and not 0 <= self.neg_threshold <= self.threshold:
            raise ValueError(f"neg_threshold must lie in [0, threshold], got {self.neg_threshold}")

    @property
    def exit_threshold(self) -> float:
        return max(self.threshold - 0.15, 0.01) if self.neg_threshold is None else self.neg_threshold

    def samples(self, milliseconds: float) -> float:
        return SAMPLE_RATE * milliseconds / 1000


class Segmenter:
    """Silero's segment state machine, fed probabilities in order; segments in frames (unpadded)."""

    def __init__(self, rules: Rules = Rules()):
        self.rules = rules
        self.frames = 0  # probabilities fed
        self.start: Optional[int] = None  # first frame of the open segment (Silero's `triggered`)
        self.silent_from: Optional[int] = None  # first quiet frame inside it (Silero's `temp_end`)
        self._min_speech = rules.samples(rules.min_speech_ms)
        self._min_silence = rules.samples(rules.min_silence_ms)

    def feed(self, probabilities: Iterable[float]) -> List[Tuple[int, int]]:
        """Probabilities of the next frames -> the segments they close (start, end frame), kept ones only."""
        closed = []
        threshold, exit_threshold = self.rules.threshold, self.rules.exit_threshold
        for probability in probabilities:
            frame, self.frames = self.frames, self.frames + 1
            if probability >= threshold:
                self.silent_from = None  # speech again: the quiet stretch was a pause
                if self.start is None:
                    self.start = frame
                continue
            if self.start is not None and probability < exit_threshold:
                if self.silent_from is None:
                    self.silent_from = frame
                if (frame - self.silent_from) * FRAME >= self._min_silence:
                    if self._long_enough(self.silent_from * FRAME):
                        closed.append((self.start, self.silent_from))
                    self.start = self.silent_from = None
        return closed

    def close(self, length: int) -> Optional[int]:
        """End of the recording (`length` samples) -> the first frame of the open segment if it
        is kept (it then runs to the recording's end, even through a trailing quiet stretch)."""
        kept = self.start if self.start is not None and self._long_enough(length) else None
        self.start = self.silent_from = None
        return kept

    def settled(self) -> Tuple[int, Optional[int]]:
        """(F, S): every frame before F is decided (in a kept segment or not); frames from S (None:
        no such frames) up to F are in the open segment, already sure to be kept.

        An open segment is sure to be kept once its end can no longer fall within min_speech of
        its start: the end is at the earliest its first quiet frame, or the next frame to come.
        """
        if self.start is None:
            return self.frames, None
        earliest_end = self.frames if self.silent_from is None else self.silent_from
        if self._long_enough(earliest_end * FRAME):
            return earliest_end, self.start
        return self.start, None

    def _long_enough(self, end: int) -> bool:
        return end - self.start * FRAME > self._min_speech


def pad(segments: List[Tuple[int, int]], pad_samples: float, length: int) -> List[Tuple[int, int]]:
    """Silero's padding of (start, end) sample segments, clipped to [0, length]."""
    padded = [list(segment) for segment in segments]
    for i, segment in enumerate(padded):
        if i == 0:
            segment[0] = int(max(0, segment[0] - pad_samples))
        if i == len(padded) - 1:
            segment[1] = int(min(length, segment[1] + pad_samples))
            continue
        gap = padded[i + 1][0] - segment[1]
        if gap < 2 * pad_samples:  # too close for two pads: split the gap between them
            segment[1] += int(gap // 2)
            padded[i + 1][0] = int(max(0, padded[i + 1][0] - gap // 2))
        else:
            segment[1] = int(min(length, segment[1] + pad_samples))
            padded[i + 1][0] = int(max(0, padded[i + 1][0] - pad_samples))
    return [tuple(segment) for segment in padded]


def speech_segments(probabilities: np.ndarray, length: int, rules: Rules = Rules()) -> List[Tuple[int, int]]:
    """Per-frame probabilities of a whole recording of `length` samples -> padded (start, end) samples."""
    segmenter = Segmenter(rules)
    found = segmenter.feed(np.asarray(probabilities, np.float64).tolist())
    last = segmenter.close(length)
    samples = [(start * FRAME, end * FRAME) for start, end in found]
    if last is not None:
        samples.append((last * FRAME, length))
    return pad(samples, rules.samples(rules.speech_pad_ms), length)


def dilation(rules: Rules) -> Tuple[int, int]:
    """(before, after): frames the padding adds before a segment's first frame and after its last.

    A frame counts as speech when its centre lies in a padded segment: the pad reaches the
    centre of `before` frames ahead of the start, and of `after` frames past the end.
    """
    pad_samples = rules.samples(rules.speech_pad_ms)
    half = FRAME // 2
    before = int((pad_samples + half) // FRAME)
    after = max(0, int(np.ceil((pad_samples - half) / FRAME)))
    return before, after
