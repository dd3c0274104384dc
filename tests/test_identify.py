"""The first API: identify() on one clip or many, and its LanguagePrediction."""

import mlx.core as mx
import numpy as np
import pytest

import mlx_audio_lid as lid

from references import ecapa as reference_ecapa
from references import mms as ref
from references.signals import SYNTHETIC_VAD, speechlike_clips


@pytest.fixture(scope="module")
def model_and_reference(tmp_path_factory):
    reference = ref.build(ref.tiny_config(), seed=1)
    folder = ref.save_published_layout(reference, tmp_path_factory.mktemp("identify") / "published")
    return lid.load(folder), reference


def test_single_clip_gives_one_prediction(model_and_reference):
    model, reference = model_and_reference
    clip = speechlike_clips([8000])[0]
    prediction = lid.identify(model, clip, top_k=3, vad=SYNTHETIC_VAD)
    assert isinstance(prediction, lid.LanguagePrediction)
    expected = np.exp(ref.reference_logits(reference, [clip])[0])
    expected /= expected.sum()
    assert prediction.language == ref.LANGUAGES[int(expected.argmax())]
    assert prediction.probability == pytest.approx(expected.max(), abs=1e-5)
    assert list(prediction.probs) == ref.LANGUAGES  # every label, in the model's order
    assert sum(prediction.probs.values()) == pytest.approx(1.0, abs=1e-5)
    assert len(prediction.top()) == 3 and len(prediction.top(5)) == 5
    assert prediction.top()[0] == (prediction.language, prediction.probability)


def test_list_of_clips_keeps_order_and_equals_alone(model_and_reference):
    model, _ = model_and_reference
    clips = speechlike_clips([4000, 16000, 7000, 11000, 5000], seed=3)
    together = lid.identify(model, clips, batch_size=2, vad=SYNTHETIC_VAD)
    assert isinstance(together, list) and len(together) == len(clips)
    for clip, prediction in zip(clips, together):
        alone = lid.identify(model, mx.array(clip), vad=SYNTHETIC_VAD)
        assert alone.language == prediction.language
        assert max(abs(alone.probs[k] - prediction.probs[k]) for k in alone.probs) <= 1e-5


def test_other_sample_rates_are_resampled(model_and_reference):
    model, _ = model_and_reference
    clip_16k = speechlike_clips([16000])[0]
    clip_8k = clip_16k[::2].copy()
    prediction = lid.identify(model, clip_8k, sample_rate=8000, vad=SYNTHETIC_VAD)
    assert set(prediction.probs) == set(ref.LANGUAGES)


@pytest.mark.parametrize(
    "audio, message",
    [
        (np.zeros(0, np.float32), "empty clip"),
        (np.array([0.1, np.nan] * 4000, np.float32), "NaN or infinite"),
        (np.zeros((2, 2, 8000), np.float32), "1-D array"),
        ([np.zeros(10, np.float32)], "shorter than this model's minimum"),
        ([], "no audio"),
    ],
)
def test_bad_input_is_a_clear_error(model_and_reference, audio, message):
    model, _ = model_and_reference
    with pytest.raises(ValueError, match=message):
        lid.identify(model, audio)


def test_predict_refuses_batches(model_and_reference):
    model, _ = model_and_reference
    with pytest.raises(ValueError, match="one clip"):
        model.predict(np.zeros((2, 8000), np.float32))


def test_embed_gives_one_vector_per_clip_batched_as_alone():
    model = lid.load(reference_ecapa.FIXTURES / "voxlingua107_tiny")
    clips = [reference_ecapa.clip(name) for name in reference_ecapa.clip_names()]
    vectors = lid.embed(model, clips, batch_size=4)
    assert vectors.shape == (len(clips), model.config.lin_neurons)
    one = lid.embed(model, clips[0])
    assert one.shape == (model.config.lin_neurons,)
    assert np.abs(vectors[0] - one).max() <= 1e-5


def test_compiled_identify_gives_the_eager_answer(model_and_reference):
    model, _ = model_and_reference
    clips = speechlike_clips([8000, 12000])
    eager = lid.identify(model, clips, compile=False, vad=SYNTHETIC_VAD)
    compiled = lid.identify(model, clips, compile=True, vad=SYNTHETIC_VAD)
    for a, b in zip(eager, compiled):
        assert a.language == b.language
        assert max(abs(a.probs[k] - b.probs[k]) for k in a.probs) <= 1e-5
