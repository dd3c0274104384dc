"""Whole passes, windows, aggregation and timelines, on answers the test controls.

`ToneModel` honours the model contract but answers from the signal's pitch: a 300 Hz tone is
"eng", a 700 Hz tone "deu". Recordings of tones and silences therefore have a known truth.
"""

from functools import partial
from types import SimpleNamespace

import mlx.core as mx
import numpy as np
import pytest

import mlx_audio_lid as lid
from mlx_audio_lid import registry
from mlx_audio_lid.models.base import LanguageIdModel
from mlx_audio_lid.timeline import Windower, cells, log_mean, timeline, window_sizes
from mlx_audio_lid.vad import NoVoiceActivity, VoiceActivity
from mlx_audio_lid.vad.energy import FRAME as VAD_FRAME
from mlx_audio_lid.vad.energy import EnergyVAD

from references.signals import SYNTHETIC_VAD

RATE = 16000
TONES = {"eng": 300.0, "deu": 700.0}


class ToneModel(LanguageIdModel):
    """embedding = each label tone's energy share in the clip's valid samples; logits = its log."""

    labels = ["eng", "deu", "rus"]
    min_samples = 400
    max_samples = 10**9  # no single-pass limit for a tone detector

    def __init__(self, model_type: str = "ecapa_lid"):
        super().__init__()
        self.config = SimpleNamespace(model_type=model_type, sample_rate=RATE)
        self.calls = []  # (batch, samples) of every call

    def embed_batch(self, waveforms, lengths, padded=True):
        self.calls.append(tuple(waveforms.shape))
        waves, lengths = np.array(waveforms), np.array(lengths)
        rows = []
        for wave, length in zip(waves, lengths):
            t = np.arange(length) / RATE
            energy = [abs(np.dot(wave[:length], np.exp(-2j * np.pi * TONES[k] * t))) ** 2 for k in ("eng", "deu")]
            share = np.array(energy + [1e-3 * sum(energy)]) + 1e-12
            rows.append(share / share.sum())
        return mx.array(np.array(rows, np.float32))

    def classify(self, embeddings):
        return mx.log(embeddings)


ECAPA = registry.family("ecapa_lid")
MMS = registry.family("wav2vec_cls")
# Tones are sound, not speech: Silero (identify's default VAD) would skip them all.
identify = partial(lid.identify, vad=SYNTHETIC_VAD)


def tone(language: str, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * TONES[language] * t)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.float32)


# -- windows -------------------------------------------------------------------------------

@pytest.mark.parametrize("total, block", [(RATE * 10 + 123, 7000), (RATE * 2, 50000), (RATE * 3, RATE)])
def test_windows_cover_the_recording_and_keep_memory_bounded(total, block):
    signal = np.arange(total, dtype=np.float32)
    windower = Windower(window=3 * RATE, hop=RATE * 3 // 2, vad=NoVoiceActivity())
    blocks = (signal[i : i + block] for i in range(0, total, block))
    spans = [(start, samples.copy()) for start, samples in windower.windows(blocks)]
    assert windower.total == total
    for start, samples in spans:  # each window holds exactly the samples it claims
        assert np.array_equal(samples, signal[start : start + len(samples)])
    assert spans[0][0] == 0 and spans[-1][0] + len(spans[-1][1]) == total
    assert all(len(s) == min(3 * RATE, total) for _, s in spans)
    starts = [start for start, _ in spans]
    assert all(0 < b - a <= RATE * 3 // 2 for a, b in zip(starts, starts[1:]))


def test_window_sizes_follow_the_family_and_refuse_gaps():
    assert window_sizes(ECAPA) == (3 * RATE, RATE * 3 // 2)
    assert window_sizes(MMS) == (10 * RATE, 5 * RATE)
    assert window_sizes(MMS, 4.0) == (4 * RATE, 2 * RATE)  # hop follows the window
    with pytest.raises(ValueError, match="must not exceed"):
        window_sizes(ECAPA, 2.0, 3.0)
    with pytest.raises(ValueError, match="positive"):
        window_sizes(ECAPA, 0.0)


def test_vad_flags_frames_above_the_threshold():
    windower = Windower(window=RATE, hop=RATE, vad=EnergyVAD())
    list(windower.windows([np.concatenate([tone("eng", 1.0), silence(1.0), tone("eng", 0.5)])]))
    sound = windower.sound
    assert len(sound) == 2.5 * RATE / VAD_FRAME
    assert sound[:50].all() and not sound[50:100].any() and sound[100:].all()
    assert windower.sound_seconds(0, 2 * RATE) == pytest.approx(1.0)


# -- aggregation and timelines on per-window outputs ----------------------------------------

def test_cells_tile_the_recording_between_window_centres():
    spans = np.array([[0, 30], [15, 45], [30, 60], [40, 70]], float)
    tiles = cells(spans, 70)
    assert tiles[0][0] == 0 and tiles[-1][1] == 70
    assert np.array_equal(tiles[:-1, 1], tiles[1:, 0])
    assert tiles[:, 0].tolist() == [0, 22.5, 37.5, 50]


def test_windows_are_averaged_weighted_by_speech():
    log_probs = np.log([[0.9, 0.1], [0.2, 0.8]])
    assert np.exp(log_mean(log_probs, [3.0, 1.0])).tolist() == pytest.approx([0.725, 0.275])
    assert np.exp(log_mean(log_probs, [0.0, 0.0])).tolist() == pytest.approx([0.55, 0.45])
    assert np.exp(log_mean(log_probs, [1.0, 0.0])).tolist() == pytest.approx([0.9, 0.1])


def test_timeline_merges_same_language_and_breaks_at_gaps():
    frames_per_second = RATE // VAD_FRAME
    sound = np.ones(10 * frames_per_second, bool)
    sound[-frames_per_second:] = False  # the last second is silent
    tiles = np.array([[0, 2], [2, 4], [4, 6], [7, 9], [9, 10]], float) * RATE  # a skipped window at 6-7 s
    found = timeline(tiles, ["eng", "eng", "deu", "deu", "deu"], [0.9, 0.7, 0.8, 0.6, 0.5], [2, 2, 2, 2, 0], sound,
                     VAD_FRAME)
    assert [(s.start, s.end, s.language) for s in found] == [(0, 4, "eng"), (4, 6, "deu"), (7, 9, "deu")]
    assert found[0].probability == pytest.approx(0.8)
    assert found[2].probability == pytest.approx(0.6)  # the silent window carries no weight


def test_timeline_drops_silent_segments():
    sound = np.zeros(4 * RATE // VAD_FRAME, bool)
    assert timeline(np.array([[0, 4 * RATE]], float), ["eng"], [0.9], [0.0], sound, VAD_FRAME) == []


# -- identify end to end with answers we know ----------------------------------------------

def test_language_change_is_placed_within_one_hop():
    model = ToneModel()
    recording = np.concatenate([tone("eng", 10.0), tone("deu", 8.0)])
    prediction = identify(model, recording, segments=True, max_whole=0)  # the answer from windows too
    languages = [(s.language, s.code, s.name) for s in prediction.segments]
    assert languages == [("eng", "eng", "English"), ("deu", "deu", "German")]
    assert abs(prediction.segments[0].end - 10.0) <= 1.5 and prediction.segments[1].start == prediction.segments[0].end
    assert prediction.segments[0].start == 0 and prediction.segments[1].end == pytest.approx(18.0)
    assert prediction.language == "eng" and prediction.probs["eng"] == pytest.approx(10 / 18, abs=1.5 / 18)


def test_silence_produces_no_segment_and_no_model_call():
    model = ToneModel()
    recording = np.concatenate([tone("deu", 6.0), silence(9.0), tone("eng", 6.0)])
    prediction = identify(model, recording, segments=True, max_whole=0)
    assert [s.language for s in prediction.segments] == ["deu", "eng"]
    deu, eng = prediction.segments
    assert abs(deu.end - 6.0) <= 1.5 and abs(eng.start - 15.0) <= 1.5
    assert prediction.speech == pytest.approx(12.0, abs=0.05)
    windows_run = sum(batch for batch, _ in model.calls)
    assert windows_run < len(range(0, 21 * RATE - 3 * RATE + 1, 3 * RATE // 2))  # silent windows skipped


def test_all_zero_audio_answers_und():
    prediction = identify(ToneModel(), silence(5.0), segments=True)
    assert (prediction.language, prediction.code, prediction.probability) == ("und", "und", 0.0)
    assert prediction.segments == [] and prediction.top() == []


def test_weak_answers_become_und():
    mixed = tone("eng", 4.0) + tone("deu", 4.0) * 0.9  # nearly even: ~0.55 eng
    prediction = identify(ToneModel(), mixed, min_probability=0.8, segments=True)
    assert prediction.language == "und" and prediction.name == "Undetermined"
    assert prediction.top()[0][0] == "eng"  # the weak guess is still reported
    assert {s.language for s in prediction.segments} == {"und"}
    assert identify(ToneModel(), mixed, min_probability=0.5).language == "eng"


def test_vad_off_runs_every_window():
    model = ToneModel()
    identify(model, np.concatenate([tone("eng", 3.0), silence(6.0)]), vad=False, batch_size=2, max_whole=0)
    assert sum(batch for batch, _ in model.calls) == 5  # starts 0, 1.5, 3, 4.5, 6 s


def test_windows_of_many_recordings_share_batches():
    model = ToneModel()
    predictions = identify(model, [tone("eng", 1.0), tone("deu", 2.0), tone("eng", 0.5)], batch_size=4)
    assert [p.language for p in predictions] == ["eng", "deu", "eng"]
    assert len(model.calls) == 1 and model.calls[0][0] == 3


# -- whole passes ----------------------------------------------------------------------------

def full_table(model, clip):
    """The model's own probabilities for the whole clip, one pass."""
    logits = np.array(model(mx.array(clip)[None]), np.float64)[0]
    return np.exp(logits) / np.exp(logits).sum()


def test_a_recording_up_to_max_whole_runs_whole_in_one_pass():
    model = ToneModel()
    recording = np.concatenate([tone("eng", 7.0), tone("deu", 5.0)])  # 12 s: 7 windows of 3 s otherwise
    prediction = identify(model, recording)
    assert model.calls == [(1, len(recording))]  # one pass over the whole recording
    assert [prediction.probs[k] for k in model.labels] == pytest.approx(full_table(model, recording).tolist(), rel=1e-6)
    longer = ToneModel()
    identify(longer, recording, max_whole=11.9)
    assert all(samples == 3 * RATE for _, samples in longer.calls)  # windows, never the whole


def test_max_whole_is_inclusive_and_refuses_negative():
    model = ToneModel()
    recording = tone("eng", 4.0)
    identify(model, recording, max_whole=4.0)
    assert model.calls == [(1, 4 * RATE)]
    with pytest.raises(ValueError, match="max_whole"):
        identify(model, recording, max_whole=-1)


def test_segments_of_a_whole_recording_come_from_windows_its_answer_from_the_pass():
    model = ToneModel()
    recording = np.concatenate([tone("eng", 10.0), tone("deu", 8.0)])
    prediction = identify(model, recording, segments=True)
    assert [s.language for s in prediction.segments] == ["eng", "deu"]
    assert prediction.probs["eng"] == pytest.approx(full_table(model, recording)[0], rel=1e-6)


@pytest.mark.parametrize("max_whole", [None, 0], ids=["whole", "windows"])
def test_kept_candidates_keep_their_full_table_ratio(max_whole):
    model = ToneModel()
    recording = np.concatenate([tone("eng", 5.0), tone("deu", 4.0) * 0.7])
    full = identify(model, recording, max_whole=max_whole)
    kept = identify(model, recording, max_whole=max_whole, languages="deu,rus")
    assert list(kept.probs) == ["deu", "rus"] and sum(kept.probs.values()) == pytest.approx(1.0)
    assert kept.probs["deu"] / kept.probs["rus"] == pytest.approx(full.probs["deu"] / full.probs["rus"], rel=1e-9)


# -- voice activity --------------------------------------------------------------------------

class EveryOtherSecond(VoiceActivity):
    """A VAD the test controls: speech in even seconds only."""

    frame = RATE // 10

    def stream(self):
        outer = self

        class Stream:
            seen = 0

            def push(self, samples):
                frames = (self.seen + len(samples)) // outer.frame - self.seen // outer.frame
                first = self.seen // outer.frame
                self.seen += len(samples)
                return (np.arange(first, first + frames) // 10) % 2 == 0

            def finish(self):
                return np.zeros(int(self.seen % outer.frame > 0), bool)

        return Stream()


def test_another_vad_plugs_in():
    prediction = identify(ToneModel(), tone("eng", 6.0), vad=EveryOtherSecond(), segments=True)
    assert prediction.speech == pytest.approx(3.0)
    assert prediction.segments[0].start == 0 and prediction.segments[-1].end == pytest.approx(5.0)


@pytest.mark.parametrize("vad, speech", [("energy", 3.0), (True, 3.0), (None, 9.0), (False, 9.0),
                                         (EnergyVAD(threshold_db=-200.0), 9.0)])
def test_vad_names_and_the_older_switch(vad, speech):
    recording = np.concatenate([tone("eng", 3.0), silence(6.0)])
    assert identify(ToneModel(), recording, vad=vad).speech == pytest.approx(speech)


@pytest.mark.parametrize("options, message", [
    (dict(vad="webrtc"), "vad must be one of 'energy'"),
    (dict(vad=None, vad_threshold_db=-40.0), "needs vad='energy'"),
])
def test_bad_vad_settings_are_clear_errors(options, message):
    with pytest.raises(ValueError, match=message):
        identify(ToneModel(), tone("eng", 1.0), **options)


def test_long_whole_passes_run_in_smaller_batches():
    """A batch holds at most batch_size windows' worth of samples (8 x 3 s here), alone if need be."""
    model = ToneModel()
    identify(model, [tone("eng", 10.0), tone("eng", 10.0), tone("deu", 20.0), tone("deu", 30.0), tone("eng", 2.0)])
    # By length: 2 + 10 s pad to 2 x 10 s (20 s of samples); a third 10 s clip would make 30 s.
    assert model.calls == [(2, 10 * RATE), (1, 10 * RATE), (1, 20 * RATE), (1, 30 * RATE)]
