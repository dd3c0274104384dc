"""Audio in: files of each format, bytes, arrays; resampling, down-mixing, scaling; bad input."""

import numpy as np
import pytest
import soundfile
from mlx_audio.utils import resample_audio

from mlx_audio_lid.audio import SAMPLE_RATE, AudioStream, load_audio

import speech


@pytest.fixture(scope="module")
def english(tmp_path_factory):
    return speech.speak("en", tmp_path_factory.mktemp("audio") / "en.wav")


def test_wav_is_resampled_to_16k_like_a_whole_buffer_resample(english):
    samples, rate = speech.read_wav(english)
    expected = resample_audio(samples, rate, SAMPLE_RATE)
    # Blocks of 0.3 s force many block joins; each must be seamless.
    streamed = np.concatenate(list(AudioStream(english, block_seconds=0.3).blocks()))
    assert rate != SAMPLE_RATE and len(streamed) == len(expected)
    assert np.abs(streamed - expected).max() < 1e-5


@pytest.mark.parametrize("fmt, tolerance", [("flac", 1e-4), ("mp3", None), ("ogg", None)])
def test_each_format_decodes_to_the_same_speech(english, fmt, tolerance):
    reference, _ = load_audio(english)
    decoded, duration = load_audio(speech.convert(english, fmt))
    assert duration == pytest.approx(len(reference) / SAMPLE_RATE, abs=0.1)
    n = min(len(reference), len(decoded))
    if tolerance is not None:  # lossless
        assert np.abs(decoded[:n] - reference[:n]).max() < tolerance
    else:  # lossy codecs: the same loudness, not the same samples
        assert np.sqrt(np.mean(decoded**2)) == pytest.approx(np.sqrt(np.mean(reference**2)), rel=0.2)


def test_bytes_decode_like_the_file(english):
    from_file, _ = load_audio(english)
    from_bytes, _ = load_audio(english.read_bytes())
    assert np.array_equal(from_file, from_bytes)


def test_stereo_is_down_mixed_by_averaging(tmp_path, english):
    samples, rate = speech.read_wav(english)
    stereo = tmp_path / "stereo.wav"
    soundfile.write(stereo, np.stack([samples, np.zeros_like(samples)], axis=1), rate, subtype="FLOAT")
    mono, _ = load_audio(english)
    mixed, _ = load_audio(stereo)
    assert np.abs(mixed - mono / 2).max() < 1e-4


@pytest.mark.parametrize("dtype, scale", [(np.int16, 32768), (np.int32, 2**31)])
def test_integer_pcm_is_scaled(dtype, scale):
    floats = np.sin(np.linspace(0, 100, 16000)).astype(np.float32) * 0.5
    ints = np.round(floats * (scale - 1)).astype(dtype)
    samples, _ = load_audio(ints)
    assert samples.dtype == np.float32 and np.abs(samples - floats).max() < 1e-4


def test_unsigned_8_bit_pcm_is_centred():
    samples, _ = load_audio(np.array([0, 128, 255], np.uint8))
    assert samples.tolist() == pytest.approx([-1.0, 0.0, 127 / 128])


def _file(folder, name, content):
    (folder / name).write_bytes(content)
    return folder / name


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda d: d / "missing.wav", FileNotFoundError, "no such file"),
        (lambda d: _file(d, "empty.wav", b""), ValueError, "empty file"),
        (lambda d: _file(d, "text.wav", b"not audio " * 50), ValueError, "not audio"),
        (lambda d: d, ValueError, "is a folder"),
    ],
)
def test_bad_paths_are_clear_errors(tmp_path, make, error, message):
    with pytest.raises(error, match=message):
        list(AudioStream(make(tmp_path)).blocks())


def test_bytes_that_are_not_audio_are_a_clear_error():
    with pytest.raises(ValueError, match="not audio"):
        AudioStream(b"\x00\x01 definitely not audio" * 100)


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_truncated_file_is_a_clear_error(tmp_path, english, fmt):
    source = english if fmt == "wav" else speech.convert(english, fmt)
    data = source.read_bytes()
    truncated = tmp_path / f"truncated.{fmt}"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated file"):
        load_audio(truncated)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_samples_are_a_clear_error(bad):
    samples = np.zeros(16000, np.float32)
    samples[100] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        load_audio(samples)
