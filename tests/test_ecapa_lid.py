"""`ecapa_lid` against SpeechBrain's recorded outputs (tests/fixtures/ecapa, made with SpeechBrain 1.1.2).

Tolerances, float32, measured on these fixtures (README "Fidelity"):
- log-mel: both FFTs round in float32, which shows in the faintest bins; against SpeechBrain's
  float64 pipeline this port is within 6.6e-4 dB (SpeechBrain float32: 8.2e-4).
- VoxLingua107 log-probabilities: this fixture's classifier turns a 1e-5 change of the embedding
  into ~1e-3 of log-probability. SpeechBrain's own float32 run is up to 5.2e-4 from its float64
  run; this port's up to 7.4e-4, and up to 9.7e-4 from SpeechBrain's float32 run. The bounds
  (1.5e-3 against float32, 1e-3 against float64) leave room for another BLAS's rounding.
"""

import mlx.core as mx
import numpy as np
import pytest

import mlx_audio_lid as lid
from mlx_audio_lid.models.ecapa_lid.fbank import speechbrain_fbank
from mlx_audio_lid.identification import pad_batch

from references import ecapa as ref

FBANK_DB_TOLERANCE = 1e-3
EMBEDDING_TOLERANCE = 5e-5
LOGPROB_TOLERANCE = 1.5e-3  # against SpeechBrain float32 (see module docstring)
LOGPROB_FLOAT64_TOLERANCE = 1e-3
PROBABILITY_TOLERANCE = 2e-4
COSINE_TOLERANCE = 2e-5
BATCH_TOLERANCE = 1e-4


@pytest.fixture(scope="module", params=ref.MODELS)
def loaded(request):
    return request.param, lid.load(ref.FIXTURES / request.param)


def alone(model, name):
    return mx.array(ref.clip(name))[None]


@pytest.mark.parametrize("model_name", ref.MODELS)
def test_fbank_matches_speechbrain_above_floor(model_name):
    n_mels = 60 if model_name.startswith("voxlingua") else 80
    for name in ref.clip_names():
        audio = ref.clip(name)
        ours = np.array(speechbrain_fbank(mx.array(audio)[None], mx.array([len(audio)]), n_mels))[0]
        expected = ref.recorded(model_name, name, "fbank")
        expected64 = ref.recorded(model_name, name, "fbank_float64")
        assert ours.shape == expected.shape
        level = expected - (expected.max() - 80)  # dB above the top_db floor
        assert (level < 1e-3).any()  # the espeak clips end in silence: the floor is exercised
        above = level > 1e-3
        error, error64 = np.abs(ours - expected), np.abs(ours - expected64)
        # Against the float64 pipeline (the same filters, exact FFT) this port is within 1e-3 dB,
        # as SpeechBrain's float32 run is; against that run the two float32 FFT noises add up in
        # the faintest bins, so within 10 dB of the floor the bound is 1.5e-3 dB.
        assert error64[above].max() <= FBANK_DB_TOLERANCE, name
        assert error[level > 10].max() <= FBANK_DB_TOLERANCE, name
        assert error[above].max() <= 1.5 * FBANK_DB_TOLERANCE, name
        assert error[level > 30].max() <= 0.2 * FBANK_DB_TOLERANCE, name
        assert error[~above].max() <= FBANK_DB_TOLERANCE  # floor bins agree as well


def test_embeddings_match_speechbrain(loaded):
    model_name, model = loaded
    for name in ref.clip_names():
        ours = np.array(model.embed(alone(model, name)))[0]
        assert np.abs(ours - ref.recorded(model_name, name, "embedding")).max() <= EMBEDDING_TOLERANCE, name


def test_outputs_match_speechbrain(loaded):
    model_name, model = loaded
    for name in ref.clip_names():
        ours = np.array(model(alone(model, name)))[0].astype(np.float64)
        expected = ref.recorded(model_name, name, "logits").astype(np.float64)
        expected64 = ref.recorded(model_name, name, "logits_float64")
        if model.config.classifier == "xvector":  # log-probabilities, as SpeechBrain returns them
            assert np.abs(ours - expected).max() <= LOGPROB_TOLERANCE, name
            assert np.abs(ours - expected64).max() <= LOGPROB_FLOAT64_TOLERANCE, name
            assert np.abs(np.exp(ours) - np.exp(expected)).max() <= PROBABILITY_TOLERANCE, name
        else:  # logits are scale * cosine; SpeechBrain returns the cosines
            cosine = ours / model.config.cosine_scale
            assert np.abs(cosine - expected).max() <= COSINE_TOLERANCE, name
            assert np.abs(cosine - expected64).max() <= COSINE_TOLERANCE, name
        assert ours.argmax() == expected.argmax(), name


def test_outputs_are_informative(loaded):
    """Guards the comparisons above: the answers differ between clips and are peaky."""
    model_name, model = loaded
    top = {ref.recorded(model_name, name, "logits").argmax() for name in ref.clip_names()}
    assert len(top) >= 4
    probabilities = lid.identify(model, [ref.clip(n) for n in ref.clip_names()])
    assert max(p.probability for p in probabilities) > 0.9


def test_a_padded_batch_gives_each_clip_speechbrains_answer_alone(loaded):
    """SpeechBrain's own batch is not padding-invariant (its convs see the padding); this port's is."""
    model_name, model = loaded
    waveforms, lengths = pad_batch([ref.clip(name) for name in ref.clip_names()])
    batched = np.array(model(waveforms, lengths)).astype(np.float64)
    speechbrain_alone = np.stack([ref.recorded(model_name, n, "logits") for n in ref.clip_names()])
    if model.config.classifier == "xvector":
        assert np.abs(batched - speechbrain_alone).max() <= LOGPROB_TOLERANCE
    else:
        assert np.abs(batched / model.config.cosine_scale - speechbrain_alone).max() <= COSINE_TOLERANCE
    speechbrain_batch = ref.reference()[f"{model_name}/batch/logits"]
    assert np.abs(speechbrain_batch - speechbrain_alone).max() > 100 * BATCH_TOLERANCE


def speechbrain_probabilities(model, model_name, name):
    """softmax of what SpeechBrain's classify_batch returned for the clip alone (30 x cos for CommonLanguage)."""
    out = ref.recorded(model_name, name, "logits").astype(np.float64)
    out = out * model.config.cosine_scale if model.config.classifier == "cosine" else out
    return out - out.max() - np.log(np.exp(out - out.max()).sum())


def test_identify_gives_speechbrains_answer_for_each_clip(loaded):
    """identify's defaults run these 1-5.5 s clips whole (ECAPA: up to 60 s), as classify_batch does."""
    model_name, model = loaded
    for name in ref.clip_names():
        expected = speechbrain_probabilities(model, model_name, name)
        prediction = lid.identify(model, ref.clip(name))
        got = np.array([prediction.probs[label] for label in model.labels])
        assert np.abs(got - np.exp(expected)).max() <= PROBABILITY_TOLERANCE, name
        shown = expected > -200  # below, float64 probabilities underflow
        scale = model.config.cosine_scale if model.config.classifier == "cosine" else 1.0
        bound = scale * COSINE_TOLERANCE if model.config.classifier == "cosine" else LOGPROB_TOLERANCE
        assert np.abs(np.log(got[shown]) - expected[shown]).max() <= bound, name
        assert prediction.language == model.labels[int(expected.argmax())], name
    # Guards the test: 3 s windows (the old default) give another answer on the longest clip.
    windowed = lid.identify(model, ref.clip("es"), max_whole=0)
    expected = np.exp(speechbrain_probabilities(model, model_name, "es"))
    assert np.abs(np.array([windowed.probs[label] for label in model.labels]) - expected).max() > 100 * PROBABILITY_TOLERANCE


@pytest.mark.parametrize("seconds", [12.0, 30.0, 60.0])
def test_identify_runs_up_to_60_s_whole(loaded, seconds):
    """Past the fixtures' lengths: identify equals the network's one pass over the whole clip
    (which benchmarks/parity_ecapa.py compares with SpeechBrain at full size on 1-60 s clips)."""
    _, model = loaded
    recording = np.tile(np.concatenate([ref.clip(name) for name in ref.clip_names()]), 4)[: int(seconds * 16000)]
    logits = np.array(model(mx.array(recording)[None]), np.float64)[0]
    whole = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    prediction = lid.identify(model, recording)
    assert np.abs(np.array([prediction.probs[label] for label in model.labels]) - whole).max() <= 1e-6
    if seconds == 60.0:  # half a second past max_whole: windows, another answer
        longer = lid.identify(model, np.concatenate([recording, recording[:8000]]))
        assert max(abs(longer.probs[label] - prediction.probs[label]) for label in model.labels) > 1e-3
