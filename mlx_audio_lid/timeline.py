"""Recordings: a whole pass or windows, speech flags, the whole-recording answer, and timelines.

A recording no longer than the family's `max_whole` is run whole, in one pass, as the reference
implementations run an utterance; its answer is the model's answer for that audio. A longer one
is cut into windows of `window` samples every `hop` samples (the last one ends at the
recording's end). Each window stands for its *cell*: the part of the timeline closer to its
centre than to any other window's, so cells tile the recording. Windows with too little speech
are never run. The whole-recording probabilities average the speech windows' probabilities,
weighted by the seconds of speech in their cells; a timeline (asked for with `segments=True`,
drawn from windows whatever the length) merges adjacent cells with the same language and trims
each segment to its speech. Candidate languages are renormalised over that one distribution,
so the ratio of two kept languages is their ratio in the full table.
"""

import math
import numbers
from itertools import chain
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from .audio import SAMPLE_RATE
from .labels import UNDETERMINED, LanguageInfo, describe
from .prediction import LanguagePrediction, Segment
from .vad import VoiceActivity

MIN_SPEECH_SECONDS = 0.3  # a window with less speech than this is skipped, never run
WHOLE = "whole"  # the key of a recording's whole pass among its window indices


def window_sizes(family, window: Optional[float] = None, hop: Optional[float] = None) -> Tuple[int, int]:
    """(window, hop) in samples, from seconds or the family's defaults (the hop scales with the window)."""
    window = family.window if window is None else window
    given = (window, 1.0 if hop is None else hop)
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 < v < math.inf for v in given):
        raise ValueError(f"window ({window!r}) and hop ({hop!r}) must be positive, finite numbers of seconds")
    hop = (family.hop * window / family.window) if hop is None else hop
    if hop > window:
        raise ValueError(f"hop ({hop} s) must not exceed the window ({window} s): audio between windows would be skipped")
    return max(1, round(window * SAMPLE_RATE)), max(1, round(hop * SAMPLE_RATE))


class Windower:
    """Cuts a stream of blocks into windows and keeps the VAD's speech flag per frame.

    A window is handed out once the VAD has flagged every frame it touches: a VAD whose rules
    look ahead (Silero's: ~0.3 s) reports a block's last frames with a later block, and the
    window's speech must be counted whole. Holds at most one window plus one block of samples
    and that look-ahead, whatever the recording's length.
    """

    def __init__(self, window: int, hop: int, vad: VoiceActivity):
        self.window, self.hop, self.frame = window, hop, vad.frame
        self.total = 0  # samples seen
        self._vad = vad.stream()
        self._flags: List[np.ndarray] = []
        self._flagged = 0  # frames flagged so far

    @property
    def sound(self) -> np.ndarray:
        """One bool per VAD frame: True where the VAD heard speech."""
        if len(self._flags) != 1:  # joined once per new block, not on every call
            self._flags = [np.concatenate(self._flags) if self._flags else np.zeros(0, bool)]
        return self._flags[0]

    def _add_flags(self, flags: np.ndarray) -> None:
        self._flags.append(flags)
        self._flagged += len(flags)

    def windows(self, blocks: Iterable[np.ndarray]) -> Iterator[Tuple[int, np.ndarray]]:
        """(start sample, samples) of each window, in order."""
        buffer, offset, start, last_end = np.zeros(0, np.float32), 0, 0, 0
        for block in chain(blocks, [None]):  # None: the end, where the VAD reports its last flags
            if block is None:
                self._add_flags(self._vad.finish())
            else:
                self._add_flags(self._vad.push(block))
                buffer = np.concatenate([buffer, block]) if len(buffer) else block
                self.total += len(block)
            end = start + self.window
            while self.total >= end and self._flagged >= -(-end // self.frame):
                yield start, buffer[start - offset : end - offset]
                last_end, start, end = end, start + self.hop, end + self.hop
                keep = start - self.hop  # the tail window may reach back to the last start
                buffer, offset = buffer[keep - offset :], keep
        if self.total and last_end < self.total:
            tail = max(0, self.total - self.window)
            yield tail, buffer[tail - offset :]

    def sound_seconds(self, start: int, end: int) -> float:
        """Seconds of speech between two sample positions, counted in whole VAD frames."""
        first, last = start // self.frame, -(-end // self.frame)
        return float(self.sound[first:last].sum()) * self.frame / SAMPLE_RATE


def cells(spans: np.ndarray, total: int) -> np.ndarray:
    """(N, 2) window spans, sorted by start -> (N, 2) cells that tile [0, total)."""
    centres = spans.mean(axis=1)
    edges = np.concatenate([[0.0], (centres[:-1] + centres[1:]) / 2, [float(total)]])
    return np.stack([edges[:-1], edges[1:]], axis=1)


def log_mean(log_probs: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """log of the weighted mean of per-window probability rows (equal weights when all are 0)."""
    weights = np.asarray(weights, np.float64)
    if weights.sum() <= 0:
        weights = np.ones(len(log_probs))
    with np.errstate(divide="ignore"):  # a window of weight 0 adds nothing: log 0 = -inf
        terms = np.log(weights / weights.sum())[:, None] + np.asarray(log_probs, np.float64)
    peak = terms.max(axis=0)
    return peak + np.log(np.exp(terms - peak).sum(axis=0))


def renormalise(log_probs: np.ndarray, candidates: Optional[np.ndarray]) -> np.ndarray:
    """Log-probabilities over every label (..., L) -> probabilities over the candidates (..., K)."""
    kept = np.asarray(log_probs, np.float64)
    if candidates is not None:
        kept = kept[..., candidates]
    kept = np.exp(kept - kept.max(axis=-1, keepdims=True))
    return kept / kept.sum(axis=-1, keepdims=True)


def timeline(cell_spans: np.ndarray, languages: Sequence[str], probabilities: Sequence[float],
             weights: Sequence[float], sound: np.ndarray, frame: int) -> List[Segment]:
    """Segments from per-window answers: cell spans (samples), label and probability per window.

    Adjacent cells (touching, same label) merge; a gap (a skipped window) ends a segment.
    Each segment is trimmed to its first and last speech frame (`frame` samples each); one
    without speech is dropped. A segment's probability is the mean of its windows'
    probabilities, weighted as the whole-recording answer is.
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
        frames = np.flatnonzero(sound[start // frame : -(-end // frame)])
        if not len(frames):
            continue
        first = max(start, (start // frame + frames[0]) * frame)
        last = min(end, (start // frame + frames[-1] + 1) * frame)
        weight = np.asarray([weights[i] for i in group], np.float64)
        weight = weight if weight.sum() > 0 else np.ones(len(group))
        probability = float(np.dot(weight, [probabilities[i] for i in group]) / weight.sum())
        segments.append(Segment(first / SAMPLE_RATE, last / SAMPLE_RATE, languages[group[0]], probability))
    return segments


Key = Union[int, str]  # a window index, or WHOLE


class Recording:
    """One source's whole pass or windows, which of them ran, and what the model said about them."""

    def __init__(self, blocks: Iterable[np.ndarray], window: int, hop: int, vad: VoiceActivity,
                 max_whole: int, segments: bool):
        self.blocks, self.max_whole, self.segments = blocks, max_whole, segments
        self.windower = Windower(window, hop, vad)
        self.spans: List[Tuple[int, int]] = []
        self.whole = False  # ran whole, in one pass
        self.log_probs: Dict[Key, np.ndarray] = {}  # what the model said: log-probabilities over every label

    def inputs(self) -> Iterator[Tuple[Key, np.ndarray]]:
        """(key, samples) to run: the whole recording, and/or its speech windows.

        Blocks are held until the recording proves longer than max_whole (at most that much
        audio plus one block); only then are windows run, unless a timeline needs them anyway.
        """
        blocks, head, held = iter(self.blocks), [], 0
        for block in blocks:
            head.append(block)
            held += len(block)
            if held > self.max_whole:
                break
        self.whole = held <= self.max_whole
        for start, samples in self.windower.windows(chain(head, blocks)):
            self.spans.append((start, start + len(samples)))
            if (self.segments or not self.whole) and self._enough_speech(start, start + len(samples)):
                yield len(self.spans) - 1, samples
        if self.whole and self._enough_speech(0, self.windower.total):
            yield WHOLE, np.concatenate(head) if head else np.zeros(0, np.float32)

    def _enough_speech(self, start: int, end: int) -> bool:
        enough = min(MIN_SPEECH_SECONDS, (end - start) / SAMPLE_RATE / 2)  # a very short clip: half of it
        return self.windower.sound_seconds(start, end) >= enough

    def summarise(self, labels: Sequence[str], candidates: Optional[np.ndarray], languages: Dict[str, LanguageInfo],
                  top_k: int, min_probability: Optional[float]) -> LanguagePrediction:
        """The recording's answer over the candidate `labels` (and its timeline, if asked for)."""
        windower = self.windower
        spans = np.array(self.spans, dtype=np.float64).reshape(-1, 2)
        all_cells = cells(spans, windower.total)
        ran = sorted(k for k in self.log_probs if k != WHOLE)
        rows = np.stack([self.log_probs[i] for i in ran]) if ran else np.zeros((0, 0))
        weights = [windower.sound_seconds(int(round(all_cells[i][0])), int(round(all_cells[i][1]))) for i in ran]
        duration = windower.total / SAMPLE_RATE
        speech = min(float(windower.sound.sum()) * windower.frame / SAMPLE_RATE, duration)

        def answer(probabilities: np.ndarray) -> Tuple[str, float]:
            best = int(np.argmax(probabilities))
            weak = min_probability is not None and probabilities[best] < min_probability
            return (UNDETERMINED if weak else labels[best]), float(probabilities[best])

        if self.whole and WHOLE in self.log_probs:
            whole = renormalise(self.log_probs[WHOLE], candidates)
        elif ran and not self.whole:
            whole = renormalise(log_mean(rows, weights), candidates)
        else:  # nothing but silence: a defined answer, not a guess
            whole = None
        if whole is None:
            prediction = LanguagePrediction(UNDETERMINED, 0.0, {}, top_k)
        else:
            language, probability = answer(whole)
            prediction = LanguagePrediction(language, probability, dict(zip(labels, whole.tolist())), top_k)
        info = describe(prediction.language, languages)
        prediction.code, prediction.name = info.code, info.name
        prediction.duration, prediction.speech, prediction.languages = duration, speech, languages
        if self.segments:
            answers = [answer(p) for p in renormalise(rows, candidates)] if ran else []
            found = timeline(all_cells[ran], [a[0] for a in answers], [a[1] for a in answers], weights,
                             windower.sound, windower.frame)
            for segment in found:
                info = describe(segment.language, languages)
                segment.code, segment.name = info.code, info.name
            prediction.segments = found
        return prediction
