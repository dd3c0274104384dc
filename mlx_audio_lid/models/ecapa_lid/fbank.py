"""SpeechBrain's Fbank, the ECAPA front end, batched with lengths.

Pure functions of arrays, run on the MLX device. Each clip's statistics cover only its valid
part, so a padded batch gives each clip what it gets alone.
"""

import math
from functools import lru_cache

import mlx.core as mx
import numpy as np
from mlx_audio.dsp import hamming

from ...masking import length_mask

N_FFT = 400  # 25 ms window at 16 kHz (SpeechBrain Fbank: win_length 25 ms, n_fft 400)
HOP_LENGTH = 160  # 10 ms at 16 kHz
TOP_DB = 80.0  # dynamic range kept below each clip's loudest bin
AMIN = 1e-10  # power floor before log10


def _torch_linspace_float32(start: float, end: float, steps: int) -> np.ndarray:
    """torch.linspace(start, end, steps) in float32, bit for bit.

    torch computes the step in float32, fills the first half as start + step * i and the second
    as end - step * (steps - 1 - i), each with one rounding (a fused multiply-add); float64
    arithmetic followed by one cast to float32 gives exactly that rounding.
    """
    start32, end32 = np.float32(start), np.float32(end)
    step = np.float64((end32 - start32) / np.float32(steps - 1))
    index = np.arange(steps, dtype=np.float64)
    low = (np.float64(start32) + step * index).astype(np.float32)
    high = (np.float64(end32) - step * (steps - 1 - index)).astype(np.float32)
    return np.where(index < steps // 2, low, high)


@lru_cache(maxsize=None)
def speechbrain_filterbank(n_mels: int, sample_rate: int = 16000) -> mx.array:
    """(N_FFT // 2 + 1, n_mels) mel filters exactly as SpeechBrain's `Filterbank` builds them.

    Triangles on the mel scale 2595 * log10(1 + f / 700) from 0 Hz to Nyquist with n_mels + 2
    points; unlike HTK's filters each triangle is symmetric: both flanks span the distance to
    the left neighbour, with no area normalisation. SpeechBrain computes them in float32, which
    moves coefficients by up to 1.2e-5 from the exact triangles and log-mels by up to 3e-4 dB;
    the same float32 steps are taken here, so the filters agree with SpeechBrain's to ~3e-6.
    """
    f32 = np.float32
    mel = _torch_linspace_float32(0.0, 2595.0 * math.log10(1.0 + (sample_rate // 2) / 700.0), n_mels + 2)
    hz = f32(700) * ((10.0 ** (mel / f32(2595)).astype(np.float64)).astype(f32) - f32(1))
    centres, bands = hz[1:-1], (hz[1:] - hz[:-1])[:-1]
    frequencies = _torch_linspace_float32(0, sample_rate // 2, N_FFT // 2 + 1)
    slope = (frequencies[:, None] - centres[None, :]) / bands[None, :]
    return mx.array(np.maximum(f32(0), np.minimum(slope + f32(1), f32(1) - slope)))


def fbank_frame_lengths(lengths: mx.array) -> mx.array:
    """Valid frames per clip: a centred STFT gives 1 + samples // hop."""
    return 1 + lengths // HOP_LENGTH


def speechbrain_fbank(waveforms: mx.array, lengths: mx.array, n_mels: int, sample_rate: int = 16000) -> mx.array:
    """(B, T) waveforms -> (B, frames, n_mels) log-mel features, SpeechBrain's `Fbank`.

    Centred STFT with zero padding, periodic Hamming window, power spectrum, SpeechBrain's
    filters, 10 * log10(max(x, 1e-10)), then everything below the clip's loudest bin minus
    80 dB is raised to that floor. The loudest bin is taken over the clip's valid frames
    only (SpeechBrain takes it over the padded batch), so batched equals alone.
    """
    batch, samples = waveforms.shape
    half = N_FFT // 2
    padded = mx.pad(waveforms.astype(mx.float32), [(0, 0), (half, half)])
    num_frames = 1 + samples // HOP_LENGTH
    # Frame t of clip b covers padded samples [t * hop, t * hop + N_FFT). Frames of a clip
    # alone are the same numbers: beyond its end both see zeros.
    frames = mx.as_strided(padded, shape=(batch, num_frames, N_FFT), strides=(samples + 2 * half, HOP_LENGTH, 1))
    spectrum = mx.fft.rfft(frames * hamming(N_FFT, periodic=True).astype(mx.float32))
    power = mx.square(spectrum.real) + mx.square(spectrum.imag)
    mel = power @ speechbrain_filterbank(n_mels, sample_rate)
    log_mel = 10.0 * mx.log10(mx.maximum(mel, AMIN))
    valid = length_mask(fbank_frame_lengths(lengths), num_frames)[:, :, None]
    loudest = mx.where(valid, log_mel, -math.inf).max(axis=(1, 2), keepdims=True)
    return mx.maximum(log_mel, loudest - TOP_DB)
