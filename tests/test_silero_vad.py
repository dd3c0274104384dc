"""Silero VAD on MLX against Silero's own code running its ONNX file on onnxruntime.

The reference (references/silero.py) is silero-vad 6.2.3's OnnxWrapper and segment rules; the
real speech is ../shared/real/speech/ (skipped where absent); the noise and music are made here.
"""

import numpy as np
import pytest
import soundfile

import mlx_audio_lid as lid
from mlx_audio_lid.timeline import Windower
from mlx_audio_lid.vad import NAMES, VADStream, VoiceActivity, resolve
from mlx_audio_lid.vad.energy import EnergyVAD
from mlx_audio_lid.vad.segments import FRAME, Rules, Segmenter, speech_segments
from mlx_audio_lid.vad.silero import WEIGHTS, Probabilities, SileroVAD
from references import silero as reference
from references.signals import noise_and_music

PROBABILITY_BOUND = 1e-4  # measured: 1.05e-5 at worst over the 27 real clips (24,873 frames), 1e-6 on noise
RATE = 16000
REAL = reference.real_speech()
needs_real = pytest.mark.skipif(not REAL, reason="../shared/real/speech is absent: real-speech checks skipped")
needs_silero = pytest.mark.skipif(reference.package_folder() is None, reason="silero-vad is not installed ([test] extra)")


@pytest.fixture(scope="module")
def vad():
    return SileroVAD()


def streamed(vad, samples, seed=0, largest=40000):
    """push in random block sizes, then finish -> (flags, flags available after each push, pushed)."""
    rng = np.random.default_rng(seed)
    stream, flags, progress, start = vad.stream(), [], [], 0
    while start < len(samples):
        block = samples[start : start + int(rng.integers(1, largest))]
        flags.append(stream.push(block))
        start += len(block)
        progress.append((sum(map(len, flags)), start))
    flags.append(stream.finish())
    return np.concatenate(flags), progress


def speech_seconds(vad, samples):
    stream = vad.stream()
    flags = np.concatenate([stream.push(samples), stream.finish()])
    return flags.sum() * vad.frame / RATE


@needs_silero
def test_packaged_weights_are_the_onnx_file_converted(tmp_path):
    from conversion.convert_silero_vad import convert

    fresh = convert(reference.onnx_file(), tmp_path)
    from safetensors.numpy import load_file

    packaged, converted = load_file(WEIGHTS / "model.safetensors"), load_file(fresh / "model.safetensors")
    assert packaged.keys() == converted.keys()
    for name in packaged:
        np.testing.assert_array_equal(packaged[name], converted[name], err_msg=name)
    assert (WEIGHTS / "config.json").read_text() == (fresh / "config.json").read_text()  # names the ONNX file's sha256
    assert "MIT License" in (WEIGHTS / "LICENSE").read_text()


@needs_silero
@needs_real
@pytest.mark.parametrize("path", REAL, ids=[p.stem for p in REAL])
def test_real_speech_matches_onnxruntime(vad, path):
    samples, rate = soundfile.read(path, dtype="float32")
    assert rate == RATE
    ours, theirs = vad.probabilities(samples), reference.onnx_probabilities(samples)
    assert ours.shape == theirs.shape == (-(-len(samples) // FRAME),)
    assert np.abs(ours - theirs).max() < PROBABILITY_BOUND
    found = vad.segments(samples)
    assert found, "real speech with no speech segment"
    assert found == reference.segments_from_probabilities(theirs, len(samples))  # Silero's rules on onnxruntime's


@needs_silero
@needs_real
@pytest.mark.parametrize("name", ["en_silero_60s", "es_silero_60s", "en_leopard_diarization_3spk"])
def test_streamed_flags_are_silero_s_segments(vad, name):
    """Pushed in random blocks, the flags are Silero's segments on onnxruntime, frame by frame
    (a frame is speech where its centre lies in a segment)."""
    samples, _ = soundfile.read(REAL[0].with_name(name + ".wav"), dtype="float32")
    found = reference.onnx_segments(samples)
    flags, _ = streamed(vad, samples)
    full = len(samples) // FRAME  # the last partial frame has no centre inside the clip to compare
    np.testing.assert_array_equal(flags[:full], reference.frame_flags(found, len(flags))[:full])


@needs_silero
def test_noise_and_music_match_onnxruntime_and_are_not_speech(vad):
    for name, samples in noise_and_music(6.0).items():
        ours, theirs = vad.probabilities(samples), reference.onnx_probabilities(samples)
        assert np.abs(ours - theirs).max() < PROBABILITY_BOUND, name
        assert vad.segments(samples) == reference.onnx_segments(samples) == [], name
        assert not streamed(vad, samples)[0].any(), name


@needs_silero
@pytest.mark.parametrize("seed", range(40))
def test_segment_rules_are_silero_s(seed):
    """Our segment logic == silero-vad's get_speech_timestamps_from_probs, on random probabilities
    that dwell and hop across both thresholds, under Silero's defaults and other rules."""
    rng = np.random.default_rng(seed)
    levels = rng.choice([0.05, 0.3, 0.4, 0.45, 0.6, 0.95], size=int(rng.integers(1, 60)))
    probabilities = np.repeat(levels, rng.integers(1, 12, size=len(levels)))
    length = len(probabilities) * FRAME - int(rng.integers(0, FRAME))
    rules = [{}, {"min_silence_duration_ms": 0, "speech_pad_ms": 100}, {"threshold": 0.4, "neg_threshold": 0.3,
             "min_speech_duration_ms": 64, "min_silence_duration_ms": 200, "speech_pad_ms": 0}][seed % 3]
    ours = Rules(rules.get("threshold", 0.5), rules.get("neg_threshold"), rules.get("min_speech_duration_ms", 250),
                 rules.get("min_silence_duration_ms", 100), rules.get("speech_pad_ms", 30))
    assert speech_segments(probabilities, length, ours) == reference.segments_from_probabilities(
        probabilities, length, **rules)


def test_streaming_equals_whole_and_lags_little(vad):
    """Blocks of any size give the whole clip's probabilities and flags; flags trail the pushed
    samples by at most the rules' look-ahead (min_speech 250 ms + a padding frame)."""
    speech = np.concatenate(list(noise_and_music(2.0).values()) + [_speech(4.0)])  # noise, music, speech
    whole = vad.probabilities(speech)
    network, parts, start = Probabilities(), [], 0
    for size in (1, 511, 513, 5000, 70000, 40):
        parts.append(network.push(speech[start : start + size]))
        start += size
    parts += [network.push(speech[start:]), network.finish()]
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-5)
    flags, progress = streamed(vad, speech, seed=1)
    assert len(flags) == len(whole)
    np.testing.assert_array_equal(flags, streamed(vad, speech, seed=2, largest=3000)[0])
    lag = max(pushed // FRAME - emitted for emitted, pushed in progress)
    assert lag <= 250 * RATE / 1000 / FRAME + 2


def test_long_recording_holds_bounded_state(vad):
    """The stream keeps the LSTM state, 64 samples of context, a partial frame and a few frames of
    undecided flags, however long the recording (benchmarks/vad_memory.py: peak RSS over 2 h)."""
    stream, block = vad.stream(), _speech(30.0)
    for _ in range(6):  # 3 minutes
        stream.push(block)
        assert stream.network.state.shape == (2, 1, 128)
        assert len(stream.network.context) == 64 and len(stream.network.pending) < FRAME
        assert len(stream.unpadded) <= 20


@needs_real
def test_silero_finds_the_speech_after_loud_noise_and_the_energy_vad_does_not(vad):
    """The issue's case: 10 s of loud noise or music (-15 dBFS RMS, louder than the speech), then
    5 s of real speech. Silero's speech is within 1 s of 5 s and none of it lies in the noise;
    the energy VAD (-50 dBFS frames) counts the noise as speech."""
    speech = _real_speech_5s()
    energy = EnergyVAD()
    for name, noise in noise_and_music(10.0).items():
        recording = np.concatenate([noise, speech])
        stream = vad.stream()
        flags = np.concatenate([stream.push(recording), stream.finish()])
        assert abs(flags.sum() * FRAME / RATE - 5.0) <= 1.0, name
        assert not flags[: int(9.9 * RATE) // FRAME].any(), name  # 30 ms padding may reach back over 10 s
        assert abs(speech_seconds(energy, recording) - 5.0) > 1.0, name


@needs_real
def test_identify_record_counts_silero_speech(vad):
    """Through identify: `speech` and the timeline come from the VAD asked for."""
    from test_timeline import ToneModel  # a contract-honouring model whose answers need no weights

    recording = np.concatenate([noise_and_music(10.0)["music"], _real_speech_5s()])
    silero = lid.identify(ToneModel(), recording, vad="silero", segments=True, window=3.0)
    energy = lid.identify(ToneModel(), recording, vad="energy", segments=True, window=3.0)
    assert abs(silero.speech - 5.0) <= 1.0 and abs(energy.speech - 5.0) > 1.0
    assert silero.segments and min(s.start for s in silero.segments) >= 9.9  # the music is not labelled
    assert min(s.start for s in energy.segments) < 1.0


class _LateEnergyStream(VADStream):
    """The energy VAD's flags, each handed out `lag` frames late (as a look-ahead VAD does)."""

    def __init__(self, lag: int):
        self.inner, self.lag, self.held = EnergyVAD().stream(), lag, np.zeros(0, bool)

    def push(self, samples):
        self.held = np.concatenate([self.held, self.inner.push(samples)])
        ready = max(len(self.held) - self.lag, 0)
        out, self.held = self.held[:ready], self.held[ready:]
        return out

    def finish(self):
        return np.concatenate([self.held, self.inner.finish()])


class _LateEnergyVAD(VoiceActivity):
    frame = EnergyVAD().frame

    def stream(self):
        return _LateEnergyStream(lag=30)


def test_windower_waits_for_late_flags():
    """A window is handed out only once its frames are flagged, so the speech counted for it
    when identify decides whether to run it is the speech it has."""
    recording = np.concatenate([np.zeros(RATE, np.float32), _speech(6.0), np.zeros(RATE // 3, np.float32)])
    windower, seen = Windower(3 * RATE, 3 * RATE // 2, _LateEnergyVAD()), []
    blocks = (recording[i : i + 7000] for i in range(0, len(recording), 7000))
    for start, samples in windower.windows(blocks):
        seen.append((start, len(samples), windower.sound_seconds(start, start + len(samples))))
    assert seen == [(start, n, windower.sound_seconds(start, start + n)) for start, n, _ in seen]
    assert [start for start, _, _ in seen] == [start for start, _ in Windower(3 * RATE, 3 * RATE // 2, EnergyVAD())
                                                .windows([recording])]


def test_named_and_resolved():
    assert NAMES["silero"] == "mlx_audio_lid.vad.silero:SileroVAD"
    assert isinstance(resolve("silero"), SileroVAD)
    with pytest.raises(ValueError, match="energy VAD's threshold"):
        resolve("silero", -40.0)


def test_bad_input_is_refused(vad):
    with pytest.raises(ValueError, match="NaN or infinite"):
        vad.stream().push(np.array([0.0, np.nan], np.float32))
    with pytest.raises(ValueError, match="1-D"):
        vad.stream().push(np.zeros((2, 512), np.float32))
    with pytest.raises(ValueError, match="non-finite speech probabilities"):
        vad.probabilities(np.full(4096, 3e38, np.float32))  # finite samples whose spectrum overflows
    for bad in ({"threshold": 1.5}, {"threshold": float("nan")}, {"min_speech_ms": -1}, {"neg_threshold": 0.9}):
        with pytest.raises(ValueError):
            SileroVAD(**bad)


def test_silence_and_empty_input(vad):
    assert len(vad.probabilities(np.zeros(0, np.float32))) == 0
    assert vad.segments(np.zeros(RATE, np.float32)) == []
    stream = vad.stream()
    assert len(stream.push(np.zeros(100, np.float32))) == 0 and len(stream.finish()) == 1  # a partial frame
    segmenter = Segmenter()
    assert segmenter.feed([0.9] * 4) == [] and segmenter.close(4 * FRAME) is None  # 128 ms: shorter than 250


def _speech(seconds: float) -> np.ndarray:
    """Real speech where there is some, else the synthetic speech-like signal (same length)."""
    if REAL:
        samples, _ = soundfile.read(REAL[0].with_name("en_silero_60s.wav"), dtype="float32")
        return samples[: int(seconds * RATE)]
    from references.signals import speechlike_clips

    return speechlike_clips([int(seconds * RATE)])[0]


def _real_speech_5s() -> np.ndarray:
    """The first 5 s of a read sentence with few pauses (Silero alone finds 4.5 s of it)."""
    samples, _ = soundfile.read(REAL[0].with_name("en_leopard_test.wav"), dtype="float32")
    return samples[: 5 * RATE]


def test_vad_benchmarks_run_reduced():
    """benchmarks/vad_cost.py and vad_memory.py end to end on a few seconds (no timing asserted)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for args in (["vad_cost", "--minutes", "0.1", "--repeats", "1", "--devices", "cpu"], ["vad_memory", "--minutes", "0.5"]):
        done = subprocess.run([sys.executable, "-m", f"benchmarks.{args[0]}", *args[1:]], capture_output=True,
                              text=True, timeout=600, cwd=root)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "Machine:" in done.stdout and "Silero" in done.stdout, done.stdout
