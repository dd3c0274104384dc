"""Audio in, language predictions out: whole recordings or their windows, batched through the model.

Sources are paths, bytes or arrays (`audio.AudioStream`); each is streamed in blocks into a
`timeline.Recording`, which runs it whole (up to the family's `max_whole`) or cut into windows.
What every source needs run shares padded batches, and each recording is summarised into one
prediction and, on request, a timeline.
"""

import math
import numbers
import threading
from itertools import chain
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import mlx.core as mx
import numpy as np

from . import registry, vad as voice_activity
from .audio import SAMPLE_RATE, AudioSource, AudioStream, check_sample_rate, load_audio
from .labels import candidate_indices, model_languages
from .models.base import LanguageIdModel, check_finite_output, check_top_k, compile_by_default
from .prediction import LanguagePrediction
from .timeline import Recording, window_sizes

POOL_BATCHES = 4  # windows are length-sorted within this many batches before padding
# identify() and embed() may be called from several threads on one model (a server does). MLX's
# evaluation from concurrent threads has crashed on Metal in recent releases, so model calls are
# serialised here; decoding, resampling and the VAD still run in parallel.
MODEL_LOCK = threading.Lock()
CHANNELS_AT_MOST = 16  # a 2-D array this narrow and taller than wide is (samples, channels), not clips


def pad_batch(clips: Sequence[np.ndarray]) -> Tuple[mx.array, mx.array]:
    """Right-pad clips with zeros -> (waveforms (B, T), lengths (B,))."""
    lengths = [len(c) for c in clips]
    padded = np.zeros((len(clips), max(lengths)), dtype=np.float32)
    for row, clip in zip(padded, clips):
        row[: len(clip)] = clip
    return mx.array(padded), mx.array(lengths, dtype=mx.int32)


def _batches(pool: List[Tuple[object, np.ndarray]], batch_size: int, max_samples: Optional[int]):
    """Length-sorted items in batches of at most `batch_size`, and (when given) at most
    `max_samples` padded samples, so that long whole passes run in small batches (alone if need be)."""
    batch: List[Tuple[object, np.ndarray]] = []
    for item in sorted(pool, key=lambda item: len(item[1])):
        too_big = max_samples is not None and (len(batch) + 1) * len(item[1]) > max_samples
        if batch and (len(batch) == batch_size or too_big):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def run_batched(model_fn, items: Iterable[Tuple[object, np.ndarray]], batch_size: int,
                max_samples: Optional[int] = None) -> Iterator[Tuple[object, np.ndarray]]:
    """Run model_fn(waveforms, lengths) over (key, clip) items -> (key, output row).

    A few batches are pooled and sorted by length, so that little of a batch is padding. Each
    batch is queued on the device (`mx.async_eval`) before the previous one is read back, so the
    host cuts, pads and builds the next batch while the device computes this one.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number of at least 1, got {batch_size!r}")
    pending: Optional[Tuple[List[object], mx.array]] = None  # the batch the device is computing

    def read(keys: List[object], out: mx.array):
        with MODEL_LOCK:
            rows = np.array(out)
        check_finite_output(rows, "this audio")
        return zip(keys, rows)

    pool: List[Tuple[object, np.ndarray]] = []
    for item in chain(items, [None]):
        if item is not None:
            pool.append(item)
        if pool and (item is None or len(pool) == batch_size * POOL_BATCHES):
            for batch in _batches(pool, batch_size, max_samples):
                waveforms, lengths = pad_batch([clip for _, clip in batch])
                with MODEL_LOCK:
                    out = model_fn(waveforms, lengths).astype(mx.float32)
                    mx.async_eval(out)
                if pending is not None:
                    yield from read(*pending)
                pending = ([key for key, _ in batch], out)
            pool = []
    if pending is not None:
        yield from read(*pending)


def _is_one_source(audio) -> bool:
    if isinstance(audio, (np.ndarray, mx.array)):
        return audio.ndim <= 1
    if isinstance(audio, (np.generic, numbers.Number)) or not hasattr(audio, "__iter__"):
        return True  # not a list of sources: AudioStream says what it cannot read
    return isinstance(audio, (str, bytes, bytearray, memoryview)) or hasattr(audio, "__fspath__")


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
    model.check_lengths([samples])  # the model's own minimum, before any window is cut


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
    max_whole: Optional[float] = None,
    vad: Union[None, bool, str, voice_activity.VoiceActivity] = "silero",
    vad_threshold_db: Optional[float] = None,
    allow_partial: bool = False,
    compile: Optional[bool] = None,
) -> Union[LanguagePrediction, List[LanguagePrediction]]:
    """Which language is spoken? One source -> a prediction; a list of sources -> a list.

    A source is a path (WAV, FLAC, MP3, Ogg; others through ffmpeg), bytes of such a file, or
    a 1-D array of samples at `sample_rate` (integer PCM is scaled; a 2-D array is a list of
    clips). Audio is resampled to 16 kHz and down-mixed to mono.

    - `languages`: candidate languages ("en,ru", ["eng", "Russian"]): ISO 639-1, ISO 639-3 or
      English names. Probabilities are renormalised over the candidates' labels.
    - `min_probability`: below it the answer (and a timeline window's) is "und".
    - A recording up to `max_whole` seconds (default per model family: FAMILY.max_whole) runs
      whole, in one pass: its answer is the model's answer for the whole audio, as the
      reference implementations give it. A longer one is cut into `window`-second windows every
      `hop` seconds (defaults per family); windows with less than 0.3 s of speech are skipped,
      and the answer averages the others, weighted by the speech each stands for.
    - `vad`: "silero" (the default: Silero VAD, speech, not just sound), "energy" (frames above
      `vad_threshold_db`, default -50 dBFS; music and noise count), None (every window runs),
      or a `vad.VoiceActivity`; `True`/`False` mean "energy"/None. A recording without speech
      answers "und".
    - `segments=True` adds `.segments`: (start, end, language, probability) in seconds, drawn
      from windows whatever the recording's length.
    - A file that decodes to less than its header declares is an error; `allow_partial=True`
      uses the part that decodes and says so in `.warnings`.
    - `compile`: run the network through `mx.compile` (one trace per batch shape); None: the
      per-device default, `models.base.COMPILE_BY_DEFAULT`.
    Clips of different lengths share padded batches, each getting the answer it gets alone.
    """
    single, sources = _sources(audio)
    check_sample_rate(sample_rate)
    check_top_k(top_k)
    if min_probability is not None and not (isinstance(min_probability, numbers.Real) and 0 <= min_probability <= 1):
        raise ValueError(f"min_probability must be between 0 and 1, got {min_probability!r}")
    if vad_threshold_db is not None and not (isinstance(vad_threshold_db, numbers.Real) and math.isfinite(vad_threshold_db)):
        raise ValueError(f"vad_threshold_db must be a finite level in dBFS, got {vad_threshold_db!r}")
    family = registry.family_of(model)
    max_whole = family.max_whole if max_whole is None else max_whole
    if not (isinstance(max_whole, numbers.Real) and 0 <= max_whole < math.inf):
        raise ValueError(f"max_whole must be a finite number of seconds, 0 or more, got {max_whole!r}")
    # A recording too long for one pass of this model runs in windows instead.
    max_whole_samples = min(round(max_whole * SAMPLE_RATE), model.max_samples)
    detector = voice_activity.resolve(vad, vad_threshold_db)
    candidates = candidate_indices(model, languages)
    labels = model.labels if candidates is None else [model.labels[i] for i in candidates]
    window_samples, hop_samples = window_sizes(family, window, hop)
    if window_samples > model.max_samples:
        raise ValueError(
            f"window of {window_samples / SAMPLE_RATE:.1f} s is longer than the "
            f"{model.max_samples / SAMPLE_RATE:.1f} s this model takes in one pass ({model.max_samples_reason}): "
            "choose a shorter window="
        )

    forward = model.compiled_forward() if (compile_by_default() if compile is None else compile) else model.forward

    def log_probabilities(waveforms, lengths):
        logits = forward(*model.prepare(waveforms, lengths)).astype(mx.float32)
        return logits - mx.logsumexp(logits, axis=-1, keepdims=True)  # every label: renormalised later

    recordings: List[Recording] = []
    streams: List[AudioStream] = []  # kept for their warnings (the part of a damaged file skipped)

    def inputs():
        for index, source in enumerate(sources):
            streams.append(AudioStream(source, sample_rate, allow_partial=allow_partial))
            recordings.append(Recording(streams[-1].blocks(), window_samples, hop_samples,
                                        detector, max_whole_samples, segments))
            for key, samples in recordings[-1].inputs():
                yield (index, key), samples
            # Every pass is within max_samples (window and whole passes are bounded above): only
            # the minimum is in question here.
            _check_length(min(recordings[-1].windower.total, model.max_samples), model)

    # A batch holds at most batch_size windows' worth of samples: whole passes of long recordings
    # run in smaller batches, so memory stays near what windows alone need.
    for (index, key), row in run_batched(log_probabilities, inputs(), batch_size, batch_size * window_samples):
        recordings[index].log_probs[key] = row
    languages_info = model_languages(model)
    results = [r.summarise(labels, candidates, languages_info, top_k, min_probability) for r in recordings]
    for result, stream in zip(results, streams):
        result.warnings = list(stream.warnings)
    return results[0] if single else results
