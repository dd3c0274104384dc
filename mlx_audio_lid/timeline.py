"""Long recordings: windows with hop, an energy VAD, the whole-recording answer, and timelines.

A recording is cut into windows of `window` samples every `hop` samples (the last one ends at
the recording's end); a recording no longer than one window is one window, so a short clip
gets exactly the answer the model gives it whole. Each window stands for its *cell*: the part
of the timeline closer to its centre than to any other window's, so cells tile the recording.
Windows with too little speech are never run. The whole-recording probabilities average the
speech windows' probabilities, weighted by the seconds of speech in their cells; a timeline
merges adjacent cells with the same language and trims each segment to its speech.
"""

from dataclasses import dataclass
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .audio import SAMPLE_RATE

# Default (window, hop) in seconds per model type:
# - ecapa_lid: VoxLingua107's ECAPA was trained on 3 s crops (SpeechBrain recipe sentence_len: 3).
# - wav2vec_cls: MMS-LID was trained on whole utterances; 10 s is a typical utterance, long
#   enough for a stable answer while a 5 s hop still places language changes within 5 s.
WINDOWS = {"ecapa_lid": (3.0, 1.5), "wav2vec_cls": (10.0, 5.0), "whisper_lid": (30.0, 15.0)}  # whisper: its 30 s input
DEFAULT_WINDOW = (10.0, 5.0)

VAD_FRAME = 320  # samples: 20 ms at 16 kHz
VAD_THRESHOLD_DB = -50.0  # frame RMS in dBFS above which a frame counts as sound
MIN_SPEECH_SECONDS = 0.3  # a window with less sound than this is skipped, never run


def window_sizes(model_type: Optional[str], window: Optional[float], hop: Optional[float]) -> Tuple[int, int]:
    """(window, hop) in samples, whole VAD frames, from seconds or the family's defaults."""
    default_window, default_hop = WINDOWS.get(model_type or "", DEFAULT_WINDOW)
    window = default_window if window is None else window
    hop = (default_hop * window / default_window) if hop is None else hop
    if not window > 0 or not hop > 0:
        raise ValueError(f"window ({window}) and hop ({hop}) must be positive numbers of seconds")
    if hop > window:
        raise ValueError(f"hop ({hop} s) must not exceed the window ({window} s): audio between windows would be skipped")
    frames = lambda seconds: max(1, round(seconds * SAMPLE_RATE / VAD_FRAME)) * VAD_FRAME  # noqa: E731
    return frames(window), frames(hop)


def frame_levels_db(samples: np.ndarray) -> np.ndarray:
    """RMS level in dBFS of each VAD frame (a short last frame is measured as it is)."""
    count = -(-len(samples) // VAD_FRAME)
    padded = np.zeros(count * VAD_FRAME, np.float32)
    padded[: len(samples)] = samples
    sizes = np.full(count, VAD_FRAME)
    if count and len(samples) % VAD_FRAME:
        sizes[-1] = len(samples) % VAD_FRAME
    power = np.square(padded.reshape(count, VAD_FRAME), dtype=np.float64).sum(axis=1) / sizes
    return 10 * np.log10(np.maximum(power, 1e-20))


class Windower:
    """Cuts a stream of blocks into windows and keeps a sound flag per VAD frame.

    Holds at most one window plus one block of samples, whatever the recording's length.
    """

    def __init__(self, window: int, hop: int, threshold_db: Optional[float] = VAD_THRESHOLD_DB):
        self.window, self.hop, self.threshold_db = window, hop, threshold_db
        self.total = 0  # samples seen
        self._flags: List[np.ndarray] = []
        self._pending = np.zeros(0, np.float32)  # samples of the unfinished VAD frame

    def _measure(self, block: np.ndarray, final: bool = False) -> None:
        samples = np.concatenate([self._pending, block])
        whole = len(samples) if final else len(samples) // VAD_FRAME * VAD_FRAME
        if whole:
            levels = frame_levels_db(samples[:whole])
            sound = levels >= self.threshold_db if self.threshold_db is not None else np.ones(len(levels), bool)
            self._flags.append(sound)
        self._pending = samples[whole:]

    @property
    def sound(self) -> np.ndarray:
        """One bool per VAD frame: True where the frame is louder than the threshold."""
        if len(self._flags) != 1:  # joined once per new block, not on every call
            self._flags = [np.concatenate(self._flags) if self._flags else np.zeros(0, bool)]
        return self._flags[0]

    def windows(self, blocks: Iterable[np.ndarray]) -> Iterator[Tuple[int, np.ndarray]]:
        """(start sample, samples) of each window, in order."""
        buffer, offset, start, last_end = np.zeros(0, np.float32), 0, 0, 0
        for block in blocks:
            self._measure(block)
            buffer = np.concatenate([buffer, block]) if len(buffer) else block
            self.total += len(block)
            while self.total >= start + self.window:
                yield start, buffer[start - offset : start - offset + self.window]
                last_end, start = start + self.window, start + self.hop
                keep = start - self.hop  # the tail window may reach back to the last start
                buffer, offset = buffer[keep - offset :], keep
        self._measure(np.zeros(0, np.float32), final=True)
        if self.total and last_end < self.total:
            tail = max(0, self.total - self.window)
            yield tail, buffer[tail - offset :]

    def sound_seconds(self, start: int, end: int) -> float:
        """Seconds of sound between two sample positions, counted in whole VAD frames."""
        sound = self.sound
        first, last = start // VAD_FRAME, -(-end // VAD_FRAME)
        return float(sound[first:last].sum()) * VAD_FRAME / SAMPLE_RATE


def cells(spans: np.ndarray, total: int) -> np.ndarray:
    """(N, 2) window spans, sorted by start -> (N, 2) cells that tile [0, total)."""
    centres = spans.mean(axis=1)
    edges = np.concatenate([[0.0], (centres[:-1] + centres[1:]) / 2, [float(total)]])
    return np.stack([edges[:-1], edges[1:]], axis=1)


def aggregate(probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean of per-window probability rows; equal weights when all weights are 0."""
    weights = np.asarray(weights, np.float64)
    if weights.sum() <= 0:
        weights = np.ones(len(probs))
    return (weights[:, None] * probs).sum(axis=0) / weights.sum()


@dataclass
class Segment:
    """A stretch of the recording in one language; times in seconds."""

    start: float
    end: float
    language: str  # the model's label, or "und" where the best window answer was below min_probability
    probability: float  # the language's mean window probability over the segment
    code: str = ""  # ISO 639-3
    name: str = ""  # English name


def timeline(
    cell_spans: np.ndarray,
    languages: Sequence[str],
    probabilities: Sequence[float],
    weights: Sequence[float],
    sound: np.ndarray,
) -> List[Segment]:
    """Segments from per-window answers: cell spans (samples), label and probability per window.

    Adjacent cells (touching, same label) merge; a gap (a skipped window) ends a segment.
    Each segment is trimmed to its first and last sounding VAD frame; one without sound is
    dropped. A segment's probability is the mean of its windows' probabilities, weighted as
    the whole-recording answer is.
    """
    groups: List[List[int]] = []
    for index in range(len(languages)):
        previous = groups[-1][-1] if groups else None
        if (previous is not None and languages[previous] == languages[index]
                and cell_spans[previous][1] == cell_spans[index][0]):
            groups[-1].append(index)
        else:
            groups.append([index])
    segments = []
    for group in groups:
        start, end = int(round(cell_spans[group[0]][0])), int(round(cell_spans[group[-1]][1]))
        frames = np.flatnonzero(sound[start // VAD_FRAME : -(-end // VAD_FRAME)])
        if not len(frames):
            continue
        first = max(start, (start // VAD_FRAME + frames[0]) * VAD_FRAME)
        last = min(end, (start // VAD_FRAME + frames[-1] + 1) * VAD_FRAME)
        weight = np.asarray([weights[i] for i in group], np.float64)
        weight = weight if weight.sum() > 0 else np.ones(len(group))
        probability = float(np.dot(weight, [probabilities[i] for i in group]) / weight.sum())
        segments.append(Segment(first / SAMPLE_RATE, last / SAMPLE_RATE, languages[group[0]], probability))
    return segments

