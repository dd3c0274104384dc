"""identify() and embed() from several threads on one model answer as sequential calls do.

A server shares one loaded model between request threads. Model evaluation is serialised by
identification.MODEL_LOCK (MLX's evaluation from concurrent threads is not safe on every backend);
decoding, resampling and the VAD of different requests overlap.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import mlx_audio_lid as lid

from references import ecapa as reference_ecapa
from references import mms as ref
from references.signals import SYNTHETIC_VAD, speechlike_clips

THREADS = 6


@pytest.fixture(scope="module", params=["ecapa", "mms"])
def model(request, tmp_path_factory):
    if request.param == "ecapa":
        return lid.load(str(reference_ecapa.FIXTURES / "voxlingua107_tiny"))
    folder = ref.save_published_layout(ref.build(ref.tiny_config(), seed=4), tmp_path_factory.mktemp("mms") / "m")
    return lid.load(folder)


def test_identify_from_several_threads_equals_sequential_calls(model):
    # Lengths from one window to several, and 8 kHz input, so threads resample and window differently.
    clips = speechlike_clips([8000, 14000, 20000, 26000, 12000, 18000], seed=7)
    rates = [16000, 8000, 16000, 16000, 8000, 16000]
    run = lambda i: lid.identify(model, clips[i], sample_rate=rates[i], segments=True, window=0.5,  # noqa: E731
                                   vad=SYNTHETIC_VAD)
    sequential = [run(i) for i in range(len(clips))]
    with ThreadPoolExecutor(THREADS) as pool:
        threaded = list(pool.map(run, list(range(len(clips))) * 3))
    for index, prediction in enumerate(threaded):
        alone = sequential[index % len(clips)]
        assert prediction.language == alone.language and prediction.probs == alone.probs
        assert [vars(s) for s in prediction.segments] == [vars(s) for s in alone.segments]


def test_embed_from_several_threads_equals_sequential_calls(model):
    clips = speechlike_clips([9000, 17000, 25000, 13000], seed=8)
    sequential = [lid.embed(model, c) for c in clips]
    with ThreadPoolExecutor(THREADS) as pool:
        threaded = list(pool.map(lambda c: lid.embed(model, c), clips * 3))
    for index, vector in enumerate(threaded):
        assert np.array_equal(vector, sequential[index % len(clips)])
