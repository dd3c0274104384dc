"""Deterministic test signals that are neither silence nor white noise."""

from typing import List, Sequence

import numpy as np


def speechlike_clips(lengths: Sequence[int], seed: int = 0) -> List[np.ndarray]:
    """Deterministic test signals: harmonics with a moving pitch under noise."""
    rng = np.random.default_rng(seed)
    clips = []
    for n in lengths:
        t = np.arange(n) / 16000
        f0 = 120 + 40 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t)
        phase = 2 * np.pi * np.cumsum(f0) / 16000
        voice = sum(np.sin(k * phase) / k for k in range(1, 6))
        clips.append((0.3 * voice + 0.05 * rng.standard_normal(n)).astype(np.float32))
    return clips
