"""Audio in, language predictions out: windows batched through the model, answers per recording.

Sources are paths, bytes or arrays (`audio.AudioStream`); each is streamed in blocks and cut
into windows (`timeline.Windower`), speech windows from every source share padded batches,
and each recording's windows are summarised into one prediction and, on request, a timeline.
"""

import math
import numbers
import threading
from dataclasses import dataclass, field
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import mlx.core as mx
import numpy as np

from .audio import SAMPLE_RATE, AudioSource, AudioStream, check_sample_rate, load_audio
from .labels import UNDETERMINED, UNDETERMINED_NAME, LanguageInfo, candidate_indices, model_languages
from .models.base import LanguageIdModel, check_finite_output, check_top_k
from .timeline import MIN_SPEECH_SECONDS, VAD_FRAME, VAD_THRESHOLD_DB, Segment, Windower, aggregate, cells, timeline, window_sizes

POOL_BATCHES = 4  # windows are length-sorted within this many batches before padding
# identify() and embed() may be called from several threads on one model (a server does). MLX's
# evaluation from concurrent threads has crashed on Metal in recent releases, so model calls are
# serialised here; decoding, resampling and the VAD still run in parallel.
MODEL_LOCK = threading.Lock()


@dataclass
class LanguagePrediction:
    """One recording's answer: the best label and the probability of every (candidate) label."""

    language: str  # the model's own label, e.g. "eng" (MMS-LID) or "en" (VoxLingua107); "und" if none
    probability: float
    probs: Dict[str, float] = field(repr=False)  # every candidate label, in the model's label order
    top_k: int = 5  # how many pairs top() gives by default
    code: str = ""  # ISO 639-3, e.g. "eng" ("und" for silence or an answer below min_probability)
    name: str = ""  # English name, e.g. "English"
    duration: float = 0.0  # seconds of audio
    speech: float = 0.0  # seconds the energy VAD counted as sound
    segments: Optional[List[Segment]] = None  # the timeline, when asked for (segments=True)
    warnings: List[str] = field(default_factory=list)  # e.g. the part of a damaged file that was skipped
    languages: Dict[str, LanguageInfo] = field(default_factory=dict, repr=False, compare=False)

    def top(self, k: Optional[int] = None) -> List[Tuple[str, float]]:
        """The k (default: top_k) most probable (label, probability) pairs, best first."""
        ranked = sorted(self.probs.items(), key=lambda item: item[1], reverse=True)
        return ranked[: self.top_k if k is None else k]

    def to_dict(self, k: Optional[int] = None) -> dict:
        """A JSON-ready record: language, code, name, probability, top, segments (if any)."""
        record = {"language": self.language, "code": self.code, "name": self.name,
                  "probability": self.probability, "duration": self.duration, "speech": self.speech,
                  "top": [dict(_describe(label, self.languages), probability=p) for label, p in self.top(k)]}
        if self.segments is not None:
            record["segments"] = [vars(segment).copy() for segment in self.segments]
        if self.warnings:
            record["warnings"] = list(self.warnings)
        return record


def _describe(label: str, languages: Dict[str, LanguageInfo]) -> dict:
    info = languages.get(label)
    if info is None:
        return {"language": label, "code": UNDETERMINED, "name": UNDETERMINED_NAME if label == UNDETERMINED else label}
    return {"language": info.label, "code": info.code, "name": info.name}


def pad_batch(clips: Sequence[np.ndarray]) -> Tuple[mx.array, mx.array]:
    """Right-pad clips with zeros -> (waveforms (B, T), lengths (B,))."""
    lengths = [len(c) for c in clips]
    padded = np.zeros((len(clips), max(lengths)), dtype=np.float32)
    for row, clip in zip(padded, clips):
        row[: len(clip)] = clip
    return mx.array(padded), mx.array(lengths, dtype=mx.int32)


def _run_pool(model_fn, pool: List[Tuple[object, np.ndarray]], batch_size: int) -> Iterator[Tuple[object, np.ndarray]]:
    """(key, clip) pairs -> (key, output row), batched by similar length so little is padding."""
    pool = sorted(pool, key=lambda item: len(item[1]))
    for begin in range(0, len(pool), batch_size):
        batch = pool[begin : begin + batch_size]
        waveforms, lengths = pad_batch([clip for _, clip in batch])
        with MODEL_LOCK:
            out = np.array(model_fn(waveforms, lengths).astype(mx.float32))
        check_finite_output(out, "this audio")
        yield from zip((key for key, _ in batch), out)


def run_batched(model_fn, items: Iterable[Tuple[object, np.ndarray]], batch_size: int) -> Iterator[Tuple[object, np.ndarray]]:
    """Run model_fn(waveforms, lengths) over (key, clip) items, holding a few batches at a time."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number of at least 1, got {batch_size!r}")
    pool: List[Tuple[object, np.ndarray]] = []
    for item in items:
        pool.append(item)
        if len(pool) == batch_size * POOL_BATCHES:
            yield from _run_pool(model_fn, pool, batch_size)
            pool = []
    if pool:
        yield from _run_pool(model_fn, pool, batch_size)


def _is_one_source(audio) -> bool:
    if isinstance(audio, (np.ndarray, mx.array)):
        return audio.ndim <= 1
    if isinstance(audio, (np.generic, numbers.Number)) or not hasattr(audio, "__iter__"):
        return True  # not a list of sources: AudioStream says what it cannot read
    return isinstance(audio, (str, bytes, bytearray, memoryview)) or hasattr(audio, "__fspath__")


CHANNELS_AT_MOST = 16  # a 2-D array this narrow and taller than wide is (samples, channels), not clips


def _sources(audio) -> Tuple[bool, List[AudioSource]]:
    single = _is_one_source(audio)
    shape = getattr(audio, "shape", ())
    if len(shape) == 2 and shape[1] <= CHANNELS_AT_MOST < shape[0]:  # such clips would be too short anyway
        raise ValueError(
            f"a 2-D array is read as clips (clips, samples), but shape {tuple(shape)} looks like (samples, "
            "channels): down-mix it first (audio.mean(axis=1)) or pass one clip per row"
        )
    sources = [audio] if single else list(audio)
    if not sources:
        raise ValueError("no audio given")
    return single, sources


def embed(
    model: LanguageIdModel,
    audio: Union[AudioSource, Sequence[AudioSource]],
    *,
    sample_rate: int = SAMPLE_RATE,
    batch_size: int = 8,
    allow_partial: bool = False,
) -> np.ndarray:
    """Utterance embeddings, as SpeechBrain's `encode_batch`: (D,) for one clip, (N, D) for a list.

    Each clip is one pass, up to the model's `max_samples`."""
    single, sources = _sources(audio)
    clips = [load_audio(source, sample_rate, allow_partial)[0] for source in sources]
    for clip in clips:
        _check_length(len(clip), model)
    rows = dict(run_batched(model.embed, enumerate(clips), batch_size))
    vectors = np.stack([rows[i] for i in range(len(clips))])
    return vectors[0] if single else vectors


def _check_length(samples: int, model: LanguageIdModel) -> None:
    if samples == 0:
        raise ValueError("empty clip: no samples")
    model.check_lengths(mx.array([samples]))  # the model's own minimum, before any window is cut


class _Recording:
    """One source's windows, which of them ran, and what the model said about them."""

    def __init__(self, source: AudioSource, sample_rate: int, window: int, hop: int, threshold_db, allow_partial: bool):
        self.stream = AudioStream(source, sample_rate, allow_partial=allow_partial)
        self.warnings = self.stream.warnings
        self.windower = Windower(window, hop, threshold_db)
        self.spans: List[Tuple[int, int]] = []
        self.probs: Dict[int, np.ndarray] = {}  # window index -> candidate probabilities

    def speech_windows(self, model: LanguageIdModel) -> Iterator[Tuple[int, np.ndarray]]:
        for start, samples in self.windower.windows(self.stream.blocks()):
            self.spans.append((start, start + len(samples)))
            enough = min(MIN_SPEECH_SECONDS, len(samples) / SAMPLE_RATE / 2)  # a very short clip: half of it
            if self.windower.sound_seconds(start, start + len(samples)) >= enough:
                yield len(self.spans) - 1, samples
        self.stream = None  # a decoded file's samples can go; only the answers are kept
        # The longest pass was one window, checked against the model's maximum up front.
        _check_length(min(self.windower.total, self.windower.window), model)


def identify(
    model: LanguageIdModel,
    audio: Union[AudioSource, Sequence[AudioSource]],
    *,
    sample_rate: int = SAMPLE_RATE,
    top_k: int = 5,
    batch_size: int = 8,
    languages: Union[None, str, Iterable[str]] = None,
    min_probability: Optional[float] = None,
    segments: bool = False,
    window: Optional[float] = None,
    hop: Optional[float] = None,
    vad: bool = True,
    vad_threshold_db: float = VAD_THRESHOLD_DB,
    allow_partial: bool = False,
) -> Union[LanguagePrediction, List[LanguagePrediction]]:
    """Which language is spoken? One source -> a prediction; a list of sources -> a list.

    A source is a path (WAV, FLAC, MP3, Ogg; others through ffmpeg), bytes of such a file, or
    a 1-D array of samples at `sample_rate` (integer PCM is scaled; a 2-D array is a list of
    clips). Audio is resampled to 16 kHz and down-mixed to mono.

    - `languages`: candidate languages ("en,ru", ["eng", "Russian"]): ISO 639-1, ISO 639-3 or
      English names. Probabilities are renormalised over the candidates' labels.
    - `min_probability`: below it the answer (and a timeline window's) is "und".
    - Recordings longer than `window` seconds (default per model family: timeline.WINDOWS)
      are cut into windows every `hop` seconds; windows with less than 0.3 s above
      `vad_threshold_db` are skipped (`vad=False` runs them all). The answer averages the
      speech windows, weighted by the speech each stands for; silence gives "und".
    - `segments=True` adds `.segments`: (start, end, language, probability) in seconds.
    - A file that decodes to less than its header declares is an error; `allow_partial=True`
      uses the part that decodes and says so in `.warnings`.
    Clips of different lengths share padded batches, each getting the answer it gets alone.
    """
    single, sources = _sources(audio)
    check_sample_rate(sample_rate)
    check_top_k(top_k)
    if min_probability is not None and not (isinstance(min_probability, numbers.Real) and 0 <= min_probability <= 1):
        raise ValueError(f"min_probability must be between 0 and 1, got {min_probability!r}")
    if not isinstance(vad_threshold_db, numbers.Real) or not math.isfinite(vad_threshold_db):
        raise ValueError(f"vad_threshold_db must be a finite level in dBFS, got {vad_threshold_db!r}")
    candidates = candidate_indices(model, languages)
    labels = model.labels if candidates is None else [model.labels[i] for i in candidates]
    window_samples, hop_samples = window_sizes(getattr(model.config, "model_type", None), window, hop)
    if window_samples > model.max_samples:
        raise ValueError(
            f"window of {window_samples / SAMPLE_RATE:.1f} s is longer than the "
            f"{model.max_samples / SAMPLE_RATE:.1f} s this model takes in one pass ({model.max_samples_reason}): "
            "choose a shorter window="
        )

    def probabilities(waveforms, lengths):
        logits = model(waveforms, lengths).astype(mx.float32)
        if candidates is not None:  # softmax over the candidates = renormalised probabilities
            logits = logits[:, mx.array(candidates)]
        return mx.softmax(logits, axis=-1)

    recordings: List[_Recording] = []

    def windows():
        for index, source in enumerate(sources):
            recordings.append(_Recording(source, sample_rate, window_samples, hop_samples,
                                         vad_threshold_db if vad else None, allow_partial))
            for window_index, samples in recordings[-1].speech_windows(model):
                yield (index, window_index), samples

    for (index, window_index), row in run_batched(probabilities, windows(), batch_size):
        recordings[index].probs[window_index] = row
    languages_info = model_languages(model)
    results = [_summarise(r, labels, languages_info, top_k, min_probability, segments) for r in recordings]
    return results[0] if single else results


def _summarise(recording: _Recording, labels: List[str], languages: Dict[str, LanguageInfo], top_k: int,
               min_probability: Optional[float], with_segments: bool) -> LanguagePrediction:
    windower = recording.windower
    spans = np.array(recording.spans, dtype=np.float64).reshape(-1, 2)
    all_cells = cells(spans, windower.total)
    ran = sorted(recording.probs)
    probs = np.stack([recording.probs[i] for i in ran]) if ran else np.zeros((0, len(labels)))
    weights = np.array([windower.sound_seconds(int(round(all_cells[i][0])), int(round(all_cells[i][1]))) for i in ran])
    duration, speech = windower.total / SAMPLE_RATE, float(windower.sound.sum()) * VAD_FRAME / SAMPLE_RATE
    speech = min(speech, duration)

    def weak(p: float) -> bool:
        return min_probability is not None and p < min_probability

    if not ran:  # nothing but silence: a defined answer, not a guess
        prediction = LanguagePrediction(UNDETERMINED, 0.0, {}, top_k)
    else:
        mean = aggregate(probs, weights)
        best = int(np.argmax(mean))
        language = UNDETERMINED if weak(mean[best]) else labels[best]
        prediction = LanguagePrediction(language, float(mean[best]), dict(zip(labels, mean.tolist())), top_k)
    described = _describe(prediction.language, languages)
    prediction.code, prediction.name = described["code"], described["name"]
    prediction.duration, prediction.speech, prediction.languages = duration, speech, languages
    prediction.warnings = list(recording.warnings)
    if with_segments:
        bests = probs.argmax(axis=1) if ran else np.zeros(0, int)
        chosen = [UNDETERMINED if weak(p[b]) else labels[b] for p, b in zip(probs, bests)]
        found = timeline(all_cells[ran], chosen, [p[b] for p, b in zip(probs, bests)], weights, windower.sound)
        for segment in found:
            described = _describe(segment.language, languages)
            segment.code, segment.name = described["code"], described["name"]
        prediction.segments = found
    return prediction
