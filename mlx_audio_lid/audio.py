"""Audio in: paths, bytes or arrays -> 16 kHz mono float32, streamed in blocks.

WAV, FLAC, MP3 and Ogg Vorbis are decoded by miniaudio (mlx-audio's own decoder) block by
block and resampled block by block with mlx-audio's polyphase resampler, so a file of any
length passes through in bounded memory. Other containers (M4A, Opus, WebM, ...) go through
`mlx_audio.audio_io.read`, which needs ffmpeg and decodes the whole file at once.
"""

import io
import math
import numbers
import os
import sys
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Iterator, List, Optional, Tuple, Union

import mlx.core as mx
import numpy as np
from mlx_audio.utils import resample_audio

from .containers import ogg_damage, ogg_is_complete, wav_declared_frames

SAMPLE_RATE = 16000  # Hz: every supported checkpoint was trained on 16 kHz audio
BLOCK_SECONDS = 30.0  # decoding and resampling granularity; bounds memory for any file length
# Sample rates accepted, in Hz. Below 1 kHz there is no speech band left to resample (1 Hz asked
# mlx-audio's resampler for a 16000x upsampling that never finished); 384 kHz is the highest
# rate audio interfaces record.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 384000
# mlx-audio's polyphase filter has 2 * 64 * max(up, down) + 1 taps for the reduced ratio
# up/down. A rate such as 44101 Hz reduces to 16000/44101 (5.6 M taps, ~1 s to design per
# block; 383999 Hz: 49 M taps, 17 s): such a ratio is replaced by the nearest one whose terms
# are at most RESAMPLE_MAX_TERM (512 k taps), which stretches time by at most 1.25e-4 (0.45 s
# an hour, a pitch change of 0.2 cents): nothing a language answer depends on.
RESAMPLE_MAX_TERM = 4000
RESAMPLE_ZERO_CROSSINGS = 64  # mlx-audio's kaiser_best FIR: 64 zero crossings either side
# Decoded audio may end this far short of what a lossy header declares (encoder delay and
# padding); lossless formats (WAV, FLAC) declare exact frame counts.
TRUNCATION_TOLERANCE_SECONDS = 0.05
EXACT_LENGTH_FORMATS = ("wav", "flac")
# Samples beyond this magnitude are no audio in any convention (float audio lies in [-1, 1],
# integer PCM within 2**31), and near 1e17 the models' float32 power and variance overflow.
MAX_AMPLITUDE = 2.0**31

AudioSource = Union[str, os.PathLike, bytes, np.ndarray, mx.array]
PARTIAL_HINT = "(re-download or re-encode it, or pass allow_partial=True / --allow-partial to use the part that decodes)"
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
    peak = float(np.abs(samples).max()) if len(samples) else 0.0  # NaN if any is NaN: one pass for both checks
    if not math.isfinite(peak):
        raise ValueError("audio contains NaN or infinite samples; clean or re-export it")
    if peak > MAX_AMPLITUDE:
        raise ValueError(
            f"audio samples reach {peak:.3g}: float audio should lie within [-1, 1] (integer PCM "
            f"within {MAX_AMPLITUDE:.0f}); scale it before identifying"
        )
    return samples


def check_sample_rate(rate, where: str = "sample_rate") -> int:
    """A whole number of Hz within MIN_SAMPLE_RATE..MAX_SAMPLE_RATE, as an int."""
    whole = isinstance(rate, numbers.Integral) and not isinstance(rate, bool)
    if isinstance(rate, float) and rate.is_integer():
        whole, rate = True, int(rate)
    if not whole or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise ValueError(
            f"{where} is {rate!r}: it must be a whole number of Hz from {MIN_SAMPLE_RATE} to "
            f"{MAX_SAMPLE_RATE} (1 kHz - 384 kHz)"
        )
    return int(rate)


def resample_ratio(rate: int) -> Fraction:
    """SAMPLE_RATE / rate, or the nearest ratio whose terms are at most RESAMPLE_MAX_TERM."""
    exact = Fraction(SAMPLE_RATE, rate)
    if max(exact.numerator, exact.denominator) <= RESAMPLE_MAX_TERM:
        return exact
    if rate > SAMPLE_RATE:  # up < down: bound down
        return exact.limit_denominator(RESAMPLE_MAX_TERM)
    return 1 / (1 / exact).limit_denominator(RESAMPLE_MAX_TERM)  # down < up: bound up


def _resampled(blocks: Iterator[np.ndarray], rate: int, block_frames: int) -> Iterator[np.ndarray]:
    """Resample a stream of blocks to SAMPLE_RATE, block by block with overlapping context.

    Each block is resampled with `halo` real input samples on both sides and only its own
    span is kept, so the result matches resampling the whole signal at once. Blocks start at
    multiples of the reduced ratio's `down`, where input and output sample grids coincide.
    """
    if rate == SAMPLE_RATE:
        yield from blocks
        return
    ratio = resample_ratio(rate)
    up, down = ratio.numerator, ratio.denominator
    # Input samples either side of a block: more than the FIR's half-length, so each block's
    # output equals a whole-buffer resample (a multiple of `down`, to keep the phase).
    support = math.ceil((RESAMPLE_ZERO_CROSSINGS * max(up, down) + down) / up)
    halo = -(-support // down) * down
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
        # mlx-audio reduces the rates it is given: (down, up) resamples by exactly up/down.
        out = np.asarray(resample_audio(segment, down, up), dtype=np.float32)
        first = (done - left) * up // down
        last = first + -(-(stop - done) * up // down)
        yield out[first:last]
        done = stop
        keep = max(start, done - halo)
        buffer, start = buffer[keep - start :], keep


class AudioStream:
    """One source as 16 kHz mono float32 blocks; `duration` (seconds) when known up front.

    A file that decodes to less than its container declares (truncated, or damaged part way)
    is an error; with `allow_partial=True` the part that decodes is used and `warnings` says
    what was missing.
    """

    def __init__(self, source: AudioSource, sample_rate: int = SAMPLE_RATE, block_seconds: float = BLOCK_SECONDS,
                 allow_partial: bool = False):
        self.name = str(source) if isinstance(source, (str, os.PathLike)) else f"<{type(source).__name__}>"
        self.block_frames = max(1, int(block_seconds * SAMPLE_RATE))
        self.allow_partial = allow_partial
        self.warnings: List[str] = []
        self._ogg_complete, self._damage = True, None
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
        sample_rate = check_sample_rate(sample_rate)
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
        before_damage = self._pages_before_damage(path)
        if before_damage is not None:
            return self._open_bytes(before_damage)
        import miniaudio

        self._path, self._data = self._encodable_name(path), None
        try:
            info = miniaudio.get_file_info(self._path)
        except miniaudio.DecodeError:
            return self._open_other(Path(self._path))  # the plain name, for the same reason
        self._set_info(info, path)

    def _encodable_name(self, path: Path) -> str:
        """A name miniaudio can open: it encodes names strictly, so a file name with bytes that are
        not UTF-8 is reached through a symlink with a plain name (and the same extension)."""
        try:
            str(path).encode(sys.getfilesystemencoding())
            return str(path)
        except UnicodeEncodeError:
            self._link_folder = tempfile.TemporaryDirectory(prefix="mlx_audio_lid-")  # removed with the stream
            link = Path(self._link_folder.name) / ("audio" + path.suffix.encode("ascii", "replace").decode())
            os.symlink(os.fsencode(path.resolve()), os.fsencode(link))
            return str(link)

    def _open_bytes(self, data: bytes) -> None:
        if not data:
            raise ValueError("empty audio bytes")
        data = self._pages_before_damage(data) or data
        import miniaudio

        self._path, self._data = None, data
        for fmt in MINIAUDIO_FORMATS:
            try:
                info = getattr(miniaudio, f"{fmt}_get_info")(data)
            except miniaudio.DecodeError:
                continue
            self._set_info(info, data)
            return
        if self._damage:  # allow_partial, but not even the pages before the damage decode
            raise ValueError(f"{self.name}: {self._damage}, and the pages before it hold no audio that decodes")
        self._open_other(data)

    def _pages_before_damage(self, source: Union[Path, bytes]) -> Optional[bytes]:
        """For an Ogg file whose pages break off (containers.ogg_damage), which miniaudio must not
        see: an error, or with allow_partial the bytes of the pages before the break."""
        damage = ogg_damage(source)
        if damage is None:
            return None
        at, why = damage
        self._damage = f"the Ogg stream is damaged at byte {at} ({why})"
        if not self.allow_partial:
            raise ValueError(f"{self.name}: {self._damage} {PARTIAL_HINT}")
        return (source if isinstance(source, bytes) else source.read_bytes())[:at]

    def _set_info(self, info, source: Union[Path, bytes]) -> None:
        """Format, rate and the frame count the container declares (miniaudio's is what it found)."""
        self._format = info.file_format.name.lower()
        self.rate = check_sample_rate(info.sample_rate, f"{self.name}: the sample rate in the file's header")
        self.declared_frames = info.num_frames
        if self._format == "wav":
            self.declared_frames = wav_declared_frames(source) or self.declared_frames
        elif self._format == "vorbis":
            self._ogg_complete = ogg_is_complete(source)

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
        self.rate = check_sample_rate(rate, f"{self.name}: the sample rate in the file's header")
        self.declared_frames, self._format = len(samples), "ffmpeg"
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
        try:  # miniaudio opens the decoder here, and can refuse a header its probe accepted
            if self._data is not None:
                stream = miniaudio.stream_memory(self._data, **settings)
            else:
                stream = miniaudio.stream_file(self._path, **settings)
        except miniaudio.DecodeError as error:
            raise ValueError(f"{self.name}: not audio that can be decoded: its header is damaged ({error})") from None
        decoded, problem = 0, None
        try:
            for block in stream:
                samples = check_samples(np.frombuffer(block, dtype=np.float32))
                decoded += len(samples)
                yield samples
        except miniaudio.DecodeError as error:
            problem = f"the audio data is damaged after {decoded / self.rate:.2f} s ({error})"
        finally:
            stream.close()
        if problem is None and self._damage:
            problem = self._damage
        tolerance = 0 if self._format in EXACT_LENGTH_FORMATS else TRUNCATION_TOLERANCE_SECONDS * self.rate
        if problem is None and self.declared_frames - decoded > tolerance:
            problem = (f"truncated file: its header promises {self.declared_frames / self.rate:.2f} s "
                       f"but the audio stops at {decoded / self.rate:.2f} s")
        if problem is None and not self._ogg_complete:
            problem = f"truncated file: the Ogg stream stops at {decoded / self.rate:.2f} s without its last page"
        if problem is None:
            return
        if not self.allow_partial:
            raise ValueError(f"{self.name}: {problem} {PARTIAL_HINT}")
        self.warnings.append(f"{problem}; only the part that decodes was used")

    def blocks(self) -> Iterator[np.ndarray]:
        """16 kHz mono float32 blocks of about `block_seconds` each."""
        native_frames = max(1, int(self.block_frames * self.rate / SAMPLE_RATE))
        return _resampled(self._native_blocks(), self.rate, native_frames)


def load_audio(source: AudioSource, sample_rate: int = SAMPLE_RATE, allow_partial: bool = False) -> Tuple[np.ndarray, float]:
    """A whole source as one 16 kHz mono float32 array, and its duration in seconds."""
    stream = AudioStream(source, sample_rate, allow_partial=allow_partial)
    blocks = list(stream.blocks())
    samples = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    return samples, len(samples) / SAMPLE_RATE
