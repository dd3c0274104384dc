"""faster-whisper's whole-file rule: `WhisperModel.detect_language(audio, language_detection_segments,
language_detection_threshold)` on this family's model, giving the same answer.

The features of the first `language_detection_segments` x 30 s are computed at once (so their
floor, 8 below the maximum, is shared across the segments), then each 30 s segment is run in
turn until one's best language is more probable than `language_detection_threshold`; if none
is, the language most often on top wins, with its highest probability, and the last segment's
table. With the default one segment, this is the model's answer for the first 30 s.

`mlx_audio_lid.identify` answers differently for recordings over 30 s: it runs 30 s windows over
the whole recording and averages the speech windows (see the README, "Whisper").
"""

from typing import List, Tuple, Union

import mlx.core as mx
import numpy as np

from ...audio import SAMPLE_RATE, AudioSource, load_audio
from .features import N_FRAMES, N_SAMPLES, frame_counts, log_mel
from .model import Model


def detect_language(
    model: Model,
    audio: Union[AudioSource, np.ndarray],
    *,
    sample_rate: int = SAMPLE_RATE,
    language_detection_segments: int = 1,
    language_detection_threshold: float = 0.5,
) -> Tuple[str, float, List[Tuple[str, float]]]:
    """-> (language, probability, [(language, probability), ...] best first), as faster-whisper returns."""
    if language_detection_segments < 1:
        raise ValueError(f"language_detection_segments must be at least 1, got {language_detection_segments}")
    samples, _ = load_audio(audio, sample_rate)
    if len(samples) < model.min_samples:
        raise ValueError(f"clip of {len(samples)} samples is shorter than this model's minimum of {model.min_samples}")
    span = language_detection_segments * N_SAMPLES
    samples = samples[:span]
    lengths = mx.array([len(samples)])
    features = log_mel(mx.array(samples[None]), lengths, model.config.n_mels, span)  # (1, segments * 3000, n_mels)
    frames = min(int(frame_counts(lengths, span).item()), span // 160)
    votes = {}
    for start in range(0, frames, N_FRAMES):
        logits = model.classify(model.encode_features(features[:, start : start + N_FRAMES]))
        probs = np.array(mx.softmax(logits.astype(mx.float32), axis=-1))[0]
        table = sorted(zip(model.labels, probs.tolist()), key=lambda item: item[1], reverse=True)
        language, probability = table[0]
        if probability > language_detection_threshold:
            return language, probability, table
        votes.setdefault(language, []).append(probability)
    language = max(votes, key=lambda lang: len(votes[lang]))  # ties: the first to appear, as max() picks
    return language, max(votes[language]), table
