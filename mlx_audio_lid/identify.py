"""Clips in, language predictions out: padding, length-sorted batches, probability tables."""

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import mlx.core as mx
import numpy as np
from mlx_audio.utils import resample_audio

from .models.base import LanguageIdModel

AudioArray = Union[np.ndarray, mx.array, Sequence[float]]


@dataclass
class LanguagePrediction:
    """One clip's answer: the best label and the probability of every label."""

    language: str  # the model's own label, e.g. "eng" (MMS) or "en: English" (VoxLingua107)
    probability: float
    probs: Dict[str, float] = field(repr=False)  # every label, in the model's label order
    top_k: int = 5  # how many pairs top() gives by default

    def top(self, k: Optional[int] = None) -> List[Tuple[str, float]]:
        """The k (default: top_k) most probable (label, probability) pairs, best first."""
        ranked = sorted(self.probs.items(), key=lambda item: item[1], reverse=True)
        return ranked[: self.top_k if k is None else k]


def _as_clip(audio: AudioArray, sample_rate: int, model_rate: int) -> np.ndarray:
    clip = np.asarray(audio, dtype=np.float32)
    if clip.ndim != 1:
        raise ValueError(f"each clip must be a 1-D array of samples, got shape {clip.shape}")
    if clip.size == 0:
        raise ValueError("empty clip: no samples")
    if not np.isfinite(clip).all():
        raise ValueError("clip contains NaN or infinite samples")
    if sample_rate != model_rate:
        clip = np.asarray(resample_audio(clip, sample_rate, model_rate), dtype=np.float32)
    return clip


def _batches(lengths: List[int], batch_size: int) -> List[List[int]]:
    """Clip indices grouped by similar length, so little of each batch is padding."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def pad_batch(clips: Sequence[np.ndarray]) -> Tuple[mx.array, mx.array]:
    """Right-pad clips with zeros -> (waveforms (B, T), lengths (B,))."""
    lengths = [len(c) for c in clips]
    padded = np.zeros((len(clips), max(lengths)), dtype=np.float32)
    for row, clip in zip(padded, clips):
        row[: len(clip)] = clip
    return mx.array(padded), mx.array(lengths, dtype=mx.int32)


def _batched(model_fn, clips: Sequence[np.ndarray], batch_size: int) -> np.ndarray:
    """Run model_fn(waveforms, lengths) over length-sorted batches; row i belongs to clips[i]."""
    rows: Dict[int, np.ndarray] = {}
    for indices in _batches([len(c) for c in clips], batch_size):
        waveforms, lengths = pad_batch([clips[i] for i in indices])
        out = np.array(model_fn(waveforms, lengths).astype(mx.float32))
        for row, index in zip(out, indices):
            rows[index] = row
    return np.stack([rows[i] for i in range(len(clips))])


def class_probabilities(model: LanguageIdModel, clips: Sequence[np.ndarray], batch_size: int = 8) -> np.ndarray:
    """(N, num_labels) probabilities; row i belongs to clips[i]."""
    return _batched(lambda w, n: mx.softmax(model(w, n).astype(mx.float32), axis=-1), clips, batch_size)


def _prepare(model: LanguageIdModel, audio, sample_rate: int) -> Tuple[bool, List[np.ndarray]]:
    single = isinstance(audio, (np.ndarray, mx.array)) and audio.ndim == 1
    clips_in = [audio] if single else list(audio)
    if not clips_in:
        raise ValueError("no audio given")
    return single, [_as_clip(c, sample_rate, model.sample_rate) for c in clips_in]


def embed(
    model: LanguageIdModel,
    audio: Union[AudioArray, Sequence[AudioArray]],
    *,
    sample_rate: int = 16000,
    batch_size: int = 8,
) -> np.ndarray:
    """Utterance embeddings, as SpeechBrain's `encode_batch`: (D,) for one clip, (N, D) for a list."""
    single, clips = _prepare(model, audio, sample_rate)
    vectors = _batched(model.embed, clips, batch_size)
    return vectors[0] if single else vectors


def identify(
    model: LanguageIdModel,
    audio: Union[AudioArray, Sequence[AudioArray]],
    *,
    sample_rate: int = 16000,
    top_k: int = 5,
    batch_size: int = 8,
) -> Union[LanguagePrediction, List[LanguagePrediction]]:
    """Which language is spoken? One 1-D clip -> a prediction; a list of clips -> a list.

    Clips of different lengths are batched with padding masks, so each gets exactly the
    answer it gets alone. `probs` holds every label; `top_k` is what `.top()` returns.
    """
    single, clips = _prepare(model, audio, sample_rate)
    probs = class_probabilities(model, clips, batch_size)
    labels = model.labels
    results = []
    for row in probs:
        best = int(np.argmax(row))
        results.append(
            LanguagePrediction(
                language=labels[best],
                probability=float(row[best]),
                probs=dict(zip(labels, row.tolist())),
                top_k=top_k,
            )
        )
    return results[0] if single else results
