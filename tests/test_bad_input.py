"""Bad input that once hung, crashed or answered silently wrong (issue 15): each is now a clear error.

Sample rates, single-pass lengths, non-finite values, truncated files, out-of-range options and
the CLI's file names and --output; the model-folder checks are in test_model_folders.py.
"""

import json
import math
import os
import struct
import time
from types import SimpleNamespace

import mlx.core as mx
import numpy as np
import pytest
import soundfile

import mlx_audio_lid as lid
from mlx_audio_lid import audio, cli
from mlx_audio_lid.audio import AudioStream, load_audio, resample_ratio
from mlx_audio_lid.containers import ogg_checksum, ogg_damage, wav_declared_frames
from mlx_audio_lid.models.wav2vec_cls import model as wav2vec_cls

from references import ecapa as reference_ecapa
from references import mms as ref
from references.signals import SYNTHETIC_VAD, speechlike_clips
import speech

ECAPA_FOLDER = str(reference_ecapa.FIXTURES / "voxlingua107_tiny")
RANGE_MESSAGE = "from 1000 to 384000"


@pytest.fixture(scope="module")
def ecapa():
    return lid.load(ECAPA_FOLDER)


@pytest.fixture(scope="module")
def mms(tmp_path_factory):
    folder = ref.save_published_layout(ref.build(ref.tiny_config(), seed=2), tmp_path_factory.mktemp("mms") / "m")
    return lid.load(folder)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The same speech as 16-bit WAV, float WAV, FLAC, MP3 and Ogg Vorbis."""
    root = tmp_path_factory.mktemp("formats")
    wav = speech.speak("en", root / "en.wav")
    samples, rate = soundfile.read(wav, dtype="float32")
    soundfile.write(root / "float.wav", samples, rate, subtype="FLOAT")
    return {"wav": wav, "float.wav": root / "float.wav", **{fmt: speech.convert(wav, fmt) for fmt in ("flac", "mp3", "ogg")}}


def clip(seconds=1.0, seed=0):
    return speechlike_clips([int(seconds * 16000)], seed=seed)[0]


# -- sample rates ------------------------------------------------------------------------------
@pytest.mark.parametrize("rate", [1, 0, -16000, 999, 384001, 10**9, 16000.5, float("nan"), True, "16000"])
def test_sample_rates_outside_the_range_are_refused_with_the_range(ecapa, rate):
    with pytest.raises(ValueError, match=RANGE_MESSAGE):
        lid.identify(ecapa, clip(), sample_rate=rate)


def _wav_with_rate(path, rate):
    """A 16 kHz WAV whose header then claims `rate` (sample rate at byte 24, byte rate at 28)."""
    soundfile.write(path, clip(), 16000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    data[24:32] = struct.pack("<II", rate, rate * 2)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("rate, message", [(1, RANGE_MESSAGE), (500, RANGE_MESSAGE), (999, RANGE_MESSAGE),
                                           (400000, "not audio that can be decoded")])  # miniaudio stops at 384 kHz
def test_a_file_header_with_an_absurd_rate_is_refused_at_once(tmp_path, rate, message):
    start = time.perf_counter()
    with pytest.raises(ValueError, match=message):
        load_audio(_wav_with_rate(tmp_path / "odd.wav", rate))
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("rate", [1000, 1001, 44101, 383999])
def test_rates_whose_exact_ratio_needs_a_huge_filter_resample_quickly(rate):
    samples = np.random.default_rng(rate).standard_normal(2 * rate).astype(np.float32) * 0.1
    start = time.perf_counter()
    out, duration = load_audio(samples, sample_rate=rate)
    assert time.perf_counter() - start < 10  # 383999 Hz took 26 s for 3 s of audio with the exact ratio
    assert duration == pytest.approx(2.0, rel=audio.RESAMPLE_MAX_TERM**-1)


def test_approximate_ratios_stay_within_the_stated_stretch():
    for rate in [1001, 7919, 44101, 96001, 320163, 383999]:
        ratio = resample_ratio(rate)
        assert max(ratio.numerator, ratio.denominator) <= audio.RESAMPLE_MAX_TERM
        assert abs(float(ratio) * rate / 16000 - 1) <= 1.25e-4
    assert resample_ratio(44100) == resample_ratio(44100).limit_denominator(441)  # common rates stay exact
    assert float(resample_ratio(44100)) * 44100 == 16000


@pytest.mark.parametrize("rate", [1000, 44101])
def test_streamed_blocks_equal_one_whole_resample_at_odd_rates(rate):
    samples = np.random.default_rng(1).standard_normal(3 * rate).astype(np.float32) * 0.1
    ratio = resample_ratio(rate)
    whole = audio.resample_audio(samples, ratio.denominator, ratio.numerator)
    streamed = np.concatenate(list(AudioStream(samples, rate, block_seconds=0.4).blocks()))
    assert len(streamed) == len(whole) and np.abs(streamed - whole).max() < 1e-5


# -- one pass too long ---------------------------------------------------------------------------
def test_embed_longer_than_one_pass_says_the_limit_and_the_way_round(mms):
    too_long = np.zeros(mms.max_samples + 16000, np.float32)
    too_long[::7] = 0.1
    with pytest.raises(ValueError, match=r"longer than the 20\.5 s this model takes in one pass.*windows"):
        lid.embed(mms, too_long)
    assert lid.identify(mms, too_long, window=1.0, vad=SYNTHETIC_VAD).probs  # identify runs it in windows


def test_a_window_longer_than_one_pass_is_refused_before_decoding(mms, ecapa):
    with pytest.raises(ValueError, match="window of 30.0 s is longer than the 20.5 s"):
        lid.identify(mms, "no-such-file.wav", window=30)
    with pytest.raises(ValueError, match="in one pass"):
        ecapa.check_lengths(mx.array([ecapa.max_samples + 1]))


def test_the_single_pass_limits_of_the_published_architectures():
    # MMS-LID: 16 heads, 320 samples a frame; float32 scores of 5792 x 5792 frames per head fit 2 GiB.
    config = SimpleNamespace(num_attention_heads=16, conv_stride=ref.mms_lid_config().conv_stride)
    mms_limit = wav2vec_cls.Model.max_samples.fget(SimpleNamespace(config=config))
    assert mms_limit / 16000 == pytest.approx(115.84) and 16 * (mms_limit // 320) ** 2 * 4 <= 2 * 2**30
    from mlx_audio_lid.models.ecapa_lid import model as ecapa_lid

    ecapa_limit = ecapa_lid.Model.max_samples.fget(SimpleNamespace(config=SimpleNamespace(channels=[1024] * 4 + [3072])))
    assert 29 * 60 < ecapa_limit / 16000 < 30 * 60


# -- non-finite values ---------------------------------------------------------------------------
@pytest.mark.parametrize("peak", [1e10, 1e30, float(np.finfo(np.float32).max)])
def test_absurd_amplitudes_are_refused_not_answered_with_nan(ecapa, mms, peak):
    loud = clip() / np.abs(clip()).max() * peak
    for model in (ecapa, mms):
        with pytest.raises(ValueError, match="float audio should lie within"):
            lid.identify(model, loud.astype(np.float32))


def test_the_loudest_accepted_amplitude_still_gives_finite_probabilities(ecapa, mms):
    loud = (clip() / np.abs(clip()).max() * audio.MAX_AMPLITUDE).astype(np.float32)
    for model in (ecapa, mms):
        prediction = lid.identify(model, loud)
        assert all(math.isfinite(p) for p in prediction.probs.values())
        assert np.isfinite(lid.embed(model, loud)).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e30])
def test_predict_refuses_non_finite_or_absurd_clips(ecapa, bad):
    samples = clip()
    samples[10] = bad
    with pytest.raises(ValueError, match="NaN or infinite|float audio should lie"):
        ecapa.predict(samples)


def test_a_model_that_outputs_nan_is_an_error_not_an_answer():
    model = lid.load(ECAPA_FOLDER)
    model.embedding_model.fc.weight = mx.full(model.embedding_model.fc.weight.shape, mx.nan)  # damaged weights
    for call in (lambda: lid.identify(model, clip(), vad=SYNTHETIC_VAD), lambda: model.predict(clip()), lambda: lid.embed(model, clip())):
        with pytest.raises(ValueError, match="not finite"):
            call()


# -- truncated and damaged files -----------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["wav", "float.wav", "flac", "mp3", "ogg"])
@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.97])
def test_truncated_files_are_errors_by_default(tmp_path, files, fmt, fraction):
    data = files[fmt].read_bytes()
    with pytest.raises(ValueError, match="truncated file.*allow_partial"):
        load_audio(data[: int(len(data) * fraction)])


@pytest.mark.parametrize("fmt", ["wav", "float.wav", "flac", "mp3", "ogg"])
def test_allow_partial_uses_what_decodes_and_warns(ecapa, files, fmt):
    data = files[fmt].read_bytes()
    whole = lid.identify(ecapa, data)
    part = lid.identify(ecapa, data[: len(data) // 2], allow_partial=True)
    assert whole.warnings == [] and "warnings" not in whole.to_dict()
    assert 0.5 < part.duration < whole.duration - 1
    assert len(part.warnings) == 1 and "only the part that decodes was used" in part.warnings[0]
    assert part.to_dict()["warnings"] == part.warnings


def _ogg_pages(data: bytes):
    """(start, end) of each Ogg page."""
    at, pages = 0, []
    while at < len(data):
        table = data[at + 27 : at + 27 + data[at + 26]]
        pages.append((at, at + 27 + len(table) + sum(table)))
        at = pages[-1][1]
    return pages


def test_ogg_checksums_are_libogg_s(files):
    data = files["ogg"].read_bytes()  # written by libsndfile through libogg
    for start, end in _ogg_pages(data):
        page = data[start:end]
        assert ogg_checksum(page[:22] + bytes(4) + page[26:]) == struct.unpack("<I", page[22:26])[0]
    assert ogg_damage(data) is None and ogg_damage(files["ogg"]) is None


def test_an_ogg_setup_header_spliced_with_other_bytes_is_a_clear_error(files):
    """Found by the fuzzer: such a file crashed miniaudio's probe (SIGSEGV), taking the process with it."""
    data = files["ogg"].read_bytes()
    start, end = _ogg_pages(data)[1]  # the comment and setup headers
    spliced = data[: (start + end) // 2] + files["wav"].read_bytes()[1000:]
    for allow_partial in (False, True):
        with pytest.raises(ValueError, match=f"damaged at byte {start} \\(page 1's checksum does not match"):
            load_audio(spliced, allow_partial=allow_partial)


def test_a_damaged_ogg_audio_page_is_an_error_or_with_allow_partial_the_pages_before_it(ecapa, files):
    data = bytearray(files["ogg"].read_bytes())
    pages = _ogg_pages(bytes(data))
    start, end = pages[len(pages) // 2]
    data[(start + end) // 2] ^= 0x10  # one bit, in the middle of the stream: stb_vorbis would decode it quietly
    with pytest.raises(ValueError, match=f"damaged at byte {start} .*checksum.*allow_partial"):
        lid.identify(ecapa, bytes(data))
    whole, part = lid.identify(ecapa, files["ogg"]), lid.identify(ecapa, bytes(data), allow_partial=True)
    assert 0.2 < part.duration < whole.duration
    assert len(part.warnings) == 1 and f"damaged at byte {start}" in part.warnings[0]
    assert "only the part that decodes was used" in part.warnings[0]


def test_a_header_the_probe_accepts_but_the_decoder_refuses_is_a_clear_error(tmp_path):
    """Found by the fuzzer: 255 channels passes miniaudio's probe, then its decoder fails to open."""
    path = _wav_with_rate(tmp_path / "channels.wav", 16000)
    data = bytearray(path.read_bytes())
    data[22:24] = struct.pack("<H", 255)
    with pytest.raises(ValueError, match="its header is damaged"):
        load_audio(bytes(data))


def test_a_streamed_wav_with_an_unknown_data_size_is_not_called_truncated(files):
    data = bytearray(files["wav"].read_bytes())
    at = data.find(b"data")
    data[at + 4 : at + 8] = struct.pack("<I", 0xFFFFFFFF)  # what a writer that cannot seek leaves
    assert wav_declared_frames(bytes(data)) is None
    assert load_audio(bytes(data))[1] == pytest.approx(load_audio(files["wav"])[1])


# -- options -------------------------------------------------------------------------------------
@pytest.mark.parametrize("options, message", [
    ({"top_k": -1}, "top_k"), ({"top_k": 0}, "top_k"), ({"top_k": 2.5}, "top_k"), ({"top_k": True}, "top_k"),
    ({"vad_threshold_db": float("nan")}, "vad_threshold_db"), ({"vad_threshold_db": float("inf")}, "vad_threshold_db"),
    ({"vad_threshold_db": "-50"}, "vad_threshold_db"),
    ({"window": float("nan")}, "window"), ({"window": float("inf")}, "window"), ({"window": "3"}, "window"),
    ({"hop": float("nan")}, "hop"), ({"hop": -1.0}, "hop"),
    ({"min_probability": float("nan")}, "min_probability"), ({"min_probability": "0.5"}, "min_probability"),
    ({"batch_size": 0}, "batch_size"), ({"batch_size": 2.5}, "batch_size"),
    ({"max_whole": float("inf")}, "max_whole"), ({"max_whole": "3"}, "max_whole"), ({"max_whole": -1.0}, "max_whole"),
])
def test_out_of_range_options_are_refused(ecapa, options, message):
    with pytest.raises(ValueError, match=message):
        lid.identify(ecapa, clip(), **options)


@pytest.mark.parametrize("audio_in, message", [
    (np.zeros((24000, 2), np.float32), "looks like \\(samples, channels\\)"),  # once 24000 clips of 2 samples
    (np.float32(0.5), "cannot read audio from a float32"),
    (5, "cannot read audio from a int"),
    (np.zeros(16000, object), "must be numbers"),
])
def test_inputs_that_are_not_clips_are_refused(ecapa, audio_in, message):
    with pytest.raises(ValueError, match=message):
        lid.identify(ecapa, audio_in)


@pytest.mark.parametrize("languages", [5, [5], ["en", None]])
def test_languages_of_the_wrong_type_are_refused(ecapa, languages):
    with pytest.raises(ValueError, match="languages must be a string"):
        lid.identify(ecapa, clip(), languages=languages)


def test_predict_refuses_samples_that_are_not_numbers(ecapa):
    with pytest.raises(ValueError, match="as numbers"):
        ecapa.predict(np.array(["0.1"] * 8000))


def test_predict_refuses_a_negative_top_k(ecapa):
    with pytest.raises(ValueError, match="top_k"):
        ecapa.predict(clip(), top_k=-1)


# -- the command line ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def odd_names(tmp_path_factory, files):
    """A good and a bad file whose names are not valid UTF-8 (Latin-1 bytes), as os.listdir gives them."""
    root = os.fsencode(tmp_path_factory.mktemp("names"))
    good, bad = root + b"/caf\xe9.wav", root + b"/d\xe9fectueux.wav"
    with open(good, "wb") as out:
        out.write(files["wav"].read_bytes())
    with open(bad, "wb") as out:
        out.write(b"not audio " * 50)
    return [os.fsdecode(good), os.fsdecode(bad)]


@pytest.mark.parametrize("fmt", cli.FORMATS)
@pytest.mark.parametrize("to_file", [True, False])
def test_file_names_that_are_not_utf8_are_escaped_in_every_format(capsys, tmp_path, odd_names, fmt, to_file):
    target = tmp_path / f"out.{fmt}"
    code = cli.main(["identify", *odd_names, "--model", ECAPA_FOLDER, "--format", fmt]
                    + (["--output", str(target)] if to_file else []))
    out = target.read_text(encoding="utf-8") if to_file else capsys.readouterr().out
    assert code == 1  # the bad file fails, the good one is answered
    if fmt in ("json", "jsonl"):
        good, bad = json.loads(out) if fmt == "json" else [json.loads(line) for line in out.splitlines()]
        assert good["path"].endswith("caf\\xe9.wav") and good["language"]
        assert bad["path"].endswith("d\\xe9fectueux.wav") and "not audio" in bad["error"]
    else:
        assert "caf\\xe9.wav" in out and "d\\xe9fectueux.wav" in out


@pytest.mark.parametrize("output, message", [(".", "is a folder"), ("no/such/folder/out.json", "does not exist")])
def test_an_output_that_cannot_be_a_file_is_one_line_and_exit_2_before_any_model_work(capsys, files, output, message):
    code = cli.main(["identify", str(files["wav"]), "--model", "./not-a-model-folder", "--output", output])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "model" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("option", [["--top-k", "-1"], ["--top-k", "x"], ["--vad-threshold-db", "nan"],
                                    ["--window", "inf"], ["--hop", "0"], ["--min-probability", "1.5"],
                                    ["--batch-size", "0"]])
def test_out_of_range_cli_options_exit_2(capsys, files, option):
    with pytest.raises(SystemExit) as stop:
        cli.main(["identify", str(files["wav"]), "--model", ECAPA_FOLDER, *option])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and f"argument {option[0]}: " in err and ("out of range" in err or "not a" in err)


def test_allow_partial_on_the_command_line_puts_the_warning_in_the_record(capsys, tmp_path, files):
    data = files["mp3"].read_bytes()
    (tmp_path / "cut.mp3").write_bytes(data[: len(data) // 2])
    code = cli.main(["identify", str(tmp_path / "cut.mp3"), "--model", ECAPA_FOLDER, "--format", "jsonl"])
    assert code == 1 and "truncated file" in json.loads(capsys.readouterr().out)["error"]
    code = cli.main(["identify", str(tmp_path / "cut.mp3"), "--model", ECAPA_FOLDER, "--format", "jsonl", "--allow-partial"])
    record = json.loads(capsys.readouterr().out)
    assert code == 0 and record["language"] and "truncated file" in record["warnings"][0]
