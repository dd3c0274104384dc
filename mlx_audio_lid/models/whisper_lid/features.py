"""Whisper's log-mel front end, batched: each row computed from its own valid samples.

The arithmetic is faster-whisper's `FeatureExtractor` (the reference this family is held to):
the clip, cut to its first 30 s, gets 160 zero samples appended, a centred STFT (400-sample
periodic Hann window, reflect padding of 200) whose last frame is dropped, a Slaney mel
filterbank, `log10(max(x, 1e-10))`, a floor 8 below the clip's own maximum, and `(x + 4) / 4`.
The features are then padded with zeros to 3000 frames (`pad_or_trim`), as faster-whisper pads
them before the encoder. (openai-whisper differs only in what it pads: 30 s of zero *samples*
before the STFT, whose frames then sit at the floor instead of at 0.)

mlx-audio's `log_mel_spectrogram` computes the same for one clip, taking the maximum over
everything it is given; a padded batch needs each row's maximum and frame count from its own
length, so the rows are framed together here with mlx-audio's window, filterbank and constants.

Why the right edge needs no reflection: the last frame kept for a clip of L samples is centred
at most 160 samples past L, so it reaches 40 samples into the reflected edge of the 160
appended zeros: zeros again. Only the left edge reflects real samples.
"""

import mlx.core as mx
from mlx_audio.dsp import hanning, mel_filters
from mlx_audio.stt.models.whisper.audio import HOP_LENGTH, N_FFT, N_FRAMES, N_SAMPLES, SAMPLE_RATE

APPENDED_ZEROS = HOP_LENGTH  # faster-whisper's FeatureExtractor(padding=160)
EDGE = N_FFT // 2  # samples of reflect padding at each end of the centred STFT


def frame_counts(lengths: mx.array, max_samples: int = N_SAMPLES) -> mx.array:
    """Valid feature frames of each clip (before padding to N_FRAMES): faster-whisper's count."""
    return (mx.minimum(lengths, max_samples) + APPENDED_ZEROS) // HOP_LENGTH


def log_mel(waveforms: mx.array, lengths: mx.array, n_mels: int, max_samples: int = N_SAMPLES) -> mx.array:
    """(B, T) 16 kHz samples, (B,) valid lengths -> (B, max_samples // 160, n_mels) features.

    Frames past a clip's own count are 0, as `pad_or_trim` leaves them. With the default
    `max_samples` (30 s) this is the encoder's input; `detect_language` passes several 30 s
    segments' worth, whose maximum is then taken over all of them, as faster-whisper does.
    """
    batch, width = waveforms.shape
    width = min(width, max_samples)
    lengths = mx.minimum(lengths, max_samples)
    x = waveforms[:, :width].astype(mx.float32)
    x = mx.where(mx.arange(width)[None, :] < lengths[:, None], x, 0.0)  # the contract's zeros, enforced
    out_frames = max_samples // HOP_LENGTH
    frames = min(out_frames + 1, (width + APPENDED_ZEROS) // HOP_LENGTH)  # the extra one counts for the maximum
    span = (frames - 1) * HOP_LENGTH + N_FFT  # samples the frames read, edges included
    x = mx.pad(x, [(0, 0), (0, max(0, span - EDGE - width, EDGE + 1 - width))])
    padded = mx.concatenate([x[:, 1 : EDGE + 1][:, ::-1], x], axis=1)[:, :span]
    windows = mx.as_strided(padded, (batch, frames, N_FFT), (padded.shape[1], HOP_LENGTH, 1))
    power = mx.square(mx.abs(mx.fft.rfft(windows * hanning(N_FFT, periodic=True))))  # (B, frames, 201)
    filters = mel_filters(SAMPLE_RATE, N_FFT, n_mels, norm="slaney", mel_scale="slaney", precise=True)
    log_spec = mx.log10(mx.maximum(power @ filters.T, 1e-10))  # (B, frames, n_mels)
    valid = (mx.arange(frames)[None, :] < frame_counts(lengths, max_samples)[:, None])[..., None]
    peak = mx.max(mx.where(valid, log_spec, -mx.inf), axis=(1, 2), keepdims=True)
    features = mx.where(valid, (mx.maximum(log_spec, peak - 8.0) + 4.0) / 4.0, 0.0)
    features = features[:, :out_frames]
    if features.shape[1] < out_frames:
        features = mx.pad(features, [(0, 0), (0, out_frames - features.shape[1]), (0, 0)])
    return features


def encoder_input(waveforms: mx.array, lengths: mx.array, n_mels: int) -> mx.array:
    """(B, T) -> (B, N_FRAMES, n_mels): the first 30 s of each clip, as the encoder takes it."""
    return log_mel(waveforms, lengths, n_mels, N_SAMPLES)


__all__ = ["log_mel", "encoder_input", "frame_counts", "N_FRAMES", "N_SAMPLES"]
