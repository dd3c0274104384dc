"""Deterministic test signals that are neither silence nor white noise."""

from typing import Dict, List, Sequence

import numpy as np


# The VAD for tests that feed these signals to identify: they are sound, not speech, so Silero
# (identify's default) rightly finds no speech in them and the model would never run.
SYNTHETIC_VAD = "energy"


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


def _loud(samples: np.ndarray, rms_dbfs: float) -> np.ndarray:
    samples = samples - samples.mean()
    return (samples * 10 ** (rms_dbfs / 20) / np.sqrt(np.mean(samples**2))).astype(np.float32)


def _drums(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Kick on beats 1 and 3, snare on 2 and 4, closed hi-hat on every eighth, at 120 bpm."""
    out = np.zeros(len(t))
    eighth = 0.25  # seconds
    for k, onset in enumerate(np.arange(0, t[-1], eighth)):
        since = t - onset
        live = since >= 0
        envelope = np.where(live, np.exp(-np.maximum(since, 0) / 0.03), 0)
        out += 0.3 * envelope * rng.standard_normal(len(t)) * (k % 2 == 1)  # hi-hat: short noise burst
        if k % 4 == 0:  # kick: a falling 120 -> 50 Hz sine
            pitch = 50 + 70 * np.exp(-np.maximum(since, 0) / 0.04)
            out += np.where(live, np.exp(-np.maximum(since, 0) / 0.15) * np.sin(2 * np.pi * pitch * since), 0)
        elif k % 4 == 2:  # snare: a tone under a noise burst
            burst = np.exp(-np.maximum(since, 0) / 0.08)
            out += 0.6 * np.where(live, burst * (rng.standard_normal(len(t)) + np.sin(2 * np.pi * 190 * since)), 0)
    return out


def noise_and_music(seconds: float, rms_dbfs: float = -15.0, seed: int = 0) -> Dict[str, np.ndarray]:
    """Loud non-speech, 16 kHz: white and pink noise, a tone, a chord, a drum pattern, and chords over drums."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    t = np.arange(n) / 16000
    spectrum = np.fft.rfft(rng.standard_normal(n))
    pink = np.fft.irfft(spectrum / np.sqrt(np.maximum(np.fft.rfftfreq(n, 1 / 16000), 1.0)), n)  # 1/f power
    chord_notes = (261.63, 329.63, 392.0, 523.25)  # C major with the octave
    chord = sum(np.sin(2 * np.pi * f * k * t) / k for f in chord_notes for k in range(1, 5))
    progression = np.zeros(n)
    for bar, root in enumerate((1.0, 4 / 3, 3 / 2, 1.0) * int(np.ceil(seconds / 8))):  # I IV V I, 2 s a chord
        span = (t >= 2 * bar) & (t < 2 * bar + 2)
        progression[span] = sum(np.sin(2 * np.pi * f * root * t[span]) for f in chord_notes)
    drums = _drums(t, rng)
    signals = {
        "white_noise": rng.standard_normal(n),
        "pink_noise": pink,
        "tone_440hz": np.sin(2 * np.pi * 440 * t),
        "chord": chord,
        "drums": drums,
        "music": progression / 4 + 0.7 * drums / np.abs(drums).max(),
    }
    return {name: _loud(samples, rms_dbfs) for name, samples in signals.items()}
