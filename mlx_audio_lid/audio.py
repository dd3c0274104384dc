"""Audio in: paths, bytes or arrays -> 16 kHz mono float32, streamed in blocks.

WAV, FLAC, MP3 and Ogg Vorbis are decoded by miniaudio (mlx-audio's own decoder) block by
block and resampled block by block with mlx-audio's polyphase resampler, so a file of any
length passes through in bounded memory. Other containers (M4A, Opus, WebM, ...) go through
`mlx_audio.audio_io.read`, which needs ffmpeg and decodes the whole file at once.
"""

import io
import os
import wave
from pathlib import Path
from typing import Iterator, Optional, Tuple, Union

import mlx.core as mx
import numpy as np
from mlx_audio.utils import resample_audio

SAMPLE_RATE = 16000  # Hz: every supported checkpoint was trained on 16 kHz audio
BLOCK_SECONDS = 30.0  # decoding and resampling granularity; bounds memory for any file length
# Input samples either side of a resampled block: more than the polyphase FIR's half-length
# (64 zero crossings), so each block's output equals a whole-buffer resample.
RESAMPLE_HALO_SECONDS = 0.05
TRUNCATION_TOLERANCE_SECONDS = 0.05  # decoded audio may end this far short of the header

AudioSource = Union[str, os.PathLike, bytes, np.ndarray, mx.array]
MINIAUDIO_FORMATS = ("wav", "flac", "vorbis", "mp3")  # decoded by miniaudio in blocks
# File extensions taken as audio when a folder is searched (the last ones need ffmpeg).
AUDIO_EXTENSIONS = ("wav", "flac", "mp3", "ogg", "oga", "opus", "m4a", "aac", "webm", "aiff", "aif", "caf")


def scale_to_float(samples: np.ndarray) -> np.ndarray:
    """Integer PCM -> float32 in [-1, 1); floating point is kept as it is."""
    if samples.dtype.kind == "f":
        return samples.astype(np.float32, copy=False)
    if samples.dtype.kind == "i":
        return (samples / float(2 ** (8 * samples.dtype.itemsize - 1))).astype(np.float32)
    if samples.dtype.kind == "u":  # e.g. 8-bit WAV: unsigned around a midpoint
        midpoint = float(2 ** (8 * samples.dtype.itemsize - 1))
        return ((samples - midpoint) / midpoint).astype(np.float32)
    raise ValueError(f"audio samples must be numbers, got dtype {samples.dtype}")


def check_samples(samples: np.ndarray) -> np.ndarray:
    if not np.isfinite(samples).all():
        raise ValueError("audio contains NaN or infinite samples; clean or re-export it")
    return samples


def _resampled(blocks: Iterator[np.ndarray], rate: int, block_frames: int) -> Iterator[np.ndarray]:
    """Resample a stream of blocks to SAMPLE_RATE, block by block with overlapping context.

    Each block is resampled with `halo` real input samples on both sides and only its own
    span is kept, so the result matches resampling the whole signal at once. Blocks start at
    multiples of the reduced ratio's `down`, where input and output sample grids coincide.
    """
    if rate == SAMPLE_RATE:
        yield from blocks
        return
    down = rate // np.gcd(rate, SAMPLE_RATE)
    halo = -(-int(RESAMPLE_HALO_SECONDS * rate) // down) * down
    step = max(down, block_frames // down * down)
    buffer = np.zeros(0, np.float32)
    start = 0  # input index of buffer[0]
    done = 0  # input samples whose output has been yielded
    exhausted = False
    while True:
        while not exhausted and start + len(buffer) < done + step + halo:
            block = next(blocks, None)
            if block is None:
                exhausted = True
            else:
                buffer = np.concatenate([buffer, block])
        end = start + len(buffer)
        if done >= end:
            return
        stop = end if exhausted else done + step
        left = max(start, done - halo)
        segment = buffer[left - start : min(end, stop + halo) - start]
        out = np.asarray(resample_audio(segment, rate, SAMPLE_RATE), dtype=np.float32)
        first = (done - left) * SAMPLE_RATE // rate
        last = first + -(-(stop - done) * SAMPLE_RATE // rate)
        yield out[first:last]
        done = stop
        keep = max(start, done - halo)
        buffer, start = buffer[keep - start :], keep


class AudioStream:
    """One source as 16 kHz mono float32 blocks; `duration` (seconds) when known up front."""

    def __init__(self, source: AudioSource, sample_rate: int = SAMPLE_RATE, block_seconds: float = BLOCK_SECONDS):
        self.name = str(source) if isinstance(source, (str, os.PathLike)) else f"<{type(source).__name__}>"
        self.block_frames = max(1, int(block_seconds * SAMPLE_RATE))
        if isinstance(source, (str, os.PathLike)):
            self._open_path(Path(source))
        elif isinstance(source, (bytes, bytearray, memoryview)):
            self._open_bytes(bytes(source))
        elif isinstance(source, (np.ndarray, mx.array, list, tuple)):
            self._open_array(source, sample_rate)
        else:
            raise ValueError(
                f"cannot read audio from a {type(source).__name__}: give a path, bytes, "
                "or a 1-D array of samples with its sample_rate"
            )

    # -- sources ---------------------------------------------------------------------------
    def _open_array(self, source, sample_rate: int) -> None:
        samples = np.asarray(source)
        if samples.ndim != 1:
            raise ValueError(f"each clip must be a 1-D array of samples, got shape {samples.shape}")
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        samples = check_samples(scale_to_float(samples))
        self.rate, self.declared_frames, self._format = sample_rate, len(samples), "array"
        self._samples = samples

    def _open_path(self, path: Path) -> None:
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file")
        if path.is_dir():
            raise ValueError(f"{path} is a folder, not an audio file")
        if path.stat().st_size == 0:
            raise ValueError(f"{path}: empty file (0 bytes)")
        import miniaudio

        self._path, self._data = path, None
        try:
            info = miniaudio.get_file_info(str(path))
        except miniaudio.DecodeError:
            return self._open_other(path)
        self._set_info(info)
        if self._format == "wav":
            self.declared_frames = _wav_header_frames(path) or self.declared_frames

    def _open_bytes(self, data: bytes) -> None:
        if not data:
            raise ValueError("empty audio bytes")
        import miniaudio

        self._path, self._data = None, data
        for fmt in MINIAUDIO_FORMATS:
            try:
                info = getattr(miniaudio, f"{fmt}_get_info")(data)
            except miniaudio.DecodeError:
                continue
            self._set_info(info)
            if fmt == "wav":
                self.declared_frames = _wav_header_frames(io.BytesIO(data)) or self.declared_frames
            return
        self._open_other(data)

    def _set_info(self, info) -> None:
        self._format = info.file_format.name.lower()
        self.rate, self.declared_frames = info.sample_rate, info.num_frames
        if not self.rate:
            raise ValueError(f"{self.name}: the file declares no sample rate")

    def _open_other(self, source: Union[Path, bytes]) -> None:
        """Containers miniaudio does not read: mlx-audio's reader (ffmpeg), whole file."""
        import miniaudio
        from mlx_audio.audio_io import read

        try:
            samples, rate = read(io.BytesIO(source) if isinstance(source, bytes) else source, dtype="float32")
        except (RuntimeError, ValueError, OSError, miniaudio.DecodeError) as error:
            reason = " ".join(str(error).split()) or type(error).__name__
            if "ffmpeg not found" in reason or "ffprobe not found" in reason:
                reason = "this format needs ffmpeg (e.g. apt-get install ffmpeg)"
            raise ValueError(
                f"{self.name}: not audio that can be decoded (WAV, FLAC, MP3 and Ogg Vorbis are "
                f"read directly, other formats through ffmpeg): {reason}"
            ) from None
        if samples.ndim == 2:
            samples = samples.mean(axis=1)  # down-mix channels
        self.rate, self.declared_frames, self._format = rate, len(samples), "ffmpeg"
        self._samples = check_samples(samples.astype(np.float32, copy=False))

    # -- blocks ----------------------------------------------------------------------------
    @property
    def duration(self) -> float:
        return self.declared_frames / self.rate

    def _native_blocks(self) -> Iterator[np.ndarray]:
        native_frames = max(1, int(self.block_frames * self.rate / SAMPLE_RATE))
        if self._format in ("array", "ffmpeg"):
            for begin in range(0, len(self._samples), native_frames):
                yield self._samples[begin : begin + native_frames]
            return
        import miniaudio

        settings = dict(output_format=miniaudio.SampleFormat.FLOAT32, nchannels=1,  # miniaudio averages channels
                        sample_rate=self.rate, frames_to_read=native_frames)
        if self._data is not None:
            stream = miniaudio.stream_memory(self._data, **settings)
        else:
            stream = miniaudio.stream_file(str(self._path), **settings)
        decoded = 0
        try:
            for block in stream:
                samples = check_samples(np.frombuffer(block, dtype=np.float32))
                decoded += len(samples)
                yield samples
        except miniaudio.DecodeError as error:
            raise ValueError(f"{self.name}: the audio data is damaged ({error})") from None
        finally:
            stream.close()
        if self.declared_frames - decoded > TRUNCATION_TOLERANCE_SECONDS * self.rate:
            raise ValueError(
                f"{self.name}: truncated file: its header promises {self.declared_frames / self.rate:.2f} s "
                f"but the audio stops at {decoded / self.rate:.2f} s (re-download or re-encode it)"
            )

    def blocks(self) -> Iterator[np.ndarray]:
        """16 kHz mono float32 blocks of about `block_seconds` each."""
        native_frames = max(1, int(self.block_frames * self.rate / SAMPLE_RATE))
        return _resampled(self._native_blocks(), self.rate, native_frames)


def _wav_header_frames(file) -> Optional[int]:
    """Frames a PCM WAV's data chunk claims (miniaudio counts what is present instead)."""
    try:
        with wave.open(file if not isinstance(file, Path) else str(file)) as reader:
            return reader.getnframes()
    except (wave.Error, EOFError, OSError):
        return None  # not plain PCM (e.g. float WAV): no truncation check


def load_audio(source: AudioSource, sample_rate: int = SAMPLE_RATE) -> Tuple[np.ndarray, float]:
    """A whole source as one 16 kHz mono float32 array, and its duration in seconds."""
    stream = AudioStream(source, sample_rate)
    blocks = list(stream.blocks())
    samples = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    return samples, len(samples) / SAMPLE_RATE
