"""cpu_math: NumPy's attention, softmax and GELU equal MLX's, and the models give the same answers either way."""

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

import families
import mlx_audio_lid as lid
from mlx_audio_lid import cpu_math
from mlx_audio_lid.identification import pad_batch


@pytest.fixture
def numpy_path(monkeypatch):
    monkeypatch.setenv(cpu_math.ENV, "1")  # on any CPU, Apple silicon included
    assert cpu_math.enabled(mx.zeros(1))


def test_gelu_equals_mlx_over_a_wide_range(numpy_path):
    x = mx.array(np.concatenate([np.linspace(-30, 30, 200_001), [0.0, -0.0, 1e-30, -1e-30]]).astype(np.float32))
    ours, theirs = np.asarray(cpu_math.gelu(x)), np.asarray(nn.gelu(x))
    np.testing.assert_allclose(ours, theirs, rtol=2e-6, atol=5e-7)
    assert np.asarray(cpu_math.GELU()(x[None])).shape == (1, x.size)


@pytest.mark.parametrize("frames", [300, 2 * cpu_math.ROWS + 76])  # one block of queries; two and a part
@pytest.mark.parametrize("with_mask", [False, True])
def test_attention_equals_mlx_fused_kernel(numpy_path, with_mask, frames):
    # q, k, v as the models make them: strided views of one stacked projection
    qkv = mx.random.normal((2, frames, 3, 4, 32), key=mx.random.key(0)) * 2
    q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
    mask = None
    if with_mask:  # the second clip's last 100 frames are padding
        valid = mx.arange(frames)[None, :] < mx.array([[frames], [frames - 100]])
        mask = mx.where(valid, 0.0, -mx.inf)[:, None, None, :]
    ours = np.asarray(cpu_math.attention(q, k, v, 32**-0.5, mask))
    theirs = np.asarray(mx.fast.scaled_dot_product_attention(q, k, v, scale=32**-0.5, mask=mask))
    # the exact answer, in float64: both are float32 roundings of it (summation orders differ)
    q64, k64, v64 = (np.asarray(a).astype(np.float64) for a in (q, k, v))
    scores = q64 @ np.swapaxes(k64, -1, -2) * 32**-0.5 + (0 if mask is None else np.asarray(mask))
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    exact = (weights / weights.sum(-1, keepdims=True)) @ v64
    mlx_error, our_error = np.abs(theirs - exact).max(), np.abs(ours - exact).max()
    assert our_error <= max(2 * mlx_error, 1e-6), (our_error, mlx_error)
    np.testing.assert_allclose(ours, theirs, atol=5e-5)


@pytest.mark.parametrize("shape, axis", [((2, 300, 3072), 1), ((3, 7, 33), -1), ((3, 5, 2, 9), 2), ((1500,), 0)])
def test_softmax_equals_mlx(numpy_path, shape, axis):
    x = mx.random.normal(shape, key=mx.random.key(2)) * 4
    if axis == 1:  # masked entries along the axis, as ECAPA's pooling gives its padded frames
        x = mx.where(mx.arange(shape[1])[None, :, None] < shape[1] - 2, x, -mx.inf)
    ours, theirs = np.asarray(cpu_math.softmax(x, axis)), np.asarray(mx.softmax(x, axis=axis))
    np.testing.assert_allclose(ours, theirs, rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(ours.sum(axis=axis), 1, atol=1e-5)


def test_when_the_numpy_path_is_taken(monkeypatch):
    x = mx.zeros((2, 3))
    monkeypatch.setenv(cpu_math.ENV, "1")
    assert cpu_math.enabled(x)
    assert not cpu_math.enabled(x.astype(mx.float16)), "NumPy has no bfloat16, and float16 keeps MLX's rounding"
    with cpu_math.tracing():
        assert not cpu_math.enabled(x)
    assert cpu_math.enabled(x)
    monkeypatch.setenv(cpu_math.ENV, "0")
    assert not cpu_math.enabled(x)
    monkeypatch.setenv(cpu_math.ENV, "yes")
    with pytest.raises(ValueError, match="MLX_AUDIO_LID_NUMPY_CPU='yes'"):
        cpu_math.enabled(x)


def test_a_traced_call_stays_in_mlx(numpy_path):
    x = mx.linspace(-3, 3, 64).reshape(1, 8, 8)

    def both(a):
        return cpu_math.gelu(a) + cpu_math.attention(a[None], a[None], a[None], 0.5)[0] + cpu_math.softmax(a, 1)

    eager = np.asarray(both(x))
    # a user's compile, or vmap: MLX's kernels
    np.testing.assert_allclose(np.asarray(mx.compile(both)(x)), eager, atol=1e-6)
    np.testing.assert_allclose(np.asarray(mx.vmap(both)(x[None]))[0], eager, atol=1e-6)
    with cpu_math.tracing():  # the package's compiled path says so up front
        np.testing.assert_allclose(np.asarray(mx.compile(both)(x)), eager, atol=1e-6)


def test_derivatives_are_mlx_kernels(numpy_path, monkeypatch):
    """The NumPy values are constants to MLX: without custom derivatives grad would be zero."""
    x = mx.random.normal((1, 2, 16, 8), key=mx.random.key(1))
    mask = mx.where(mx.arange(16) < 12, 0.0, -1e9)[None, None, None, :]

    def loss(a):
        return (cpu_math.gelu(a) * cpu_math.attention(a, a * 0.5, a + 1, 0.3, mask) * cpu_math.softmax(a, 2)).sum()

    ours_grad = mx.grad(loss)(x)
    ours_jvp = mx.jvp(loss, [x], [mx.ones_like(x)])[1][0]
    monkeypatch.setenv(cpu_math.ENV, "0")
    np.testing.assert_allclose(np.asarray(ours_grad), np.asarray(mx.grad(loss)(x)), atol=1e-5)
    np.testing.assert_allclose(np.asarray(ours_jvp), np.asarray(mx.jvp(loss, [x], [mx.ones_like(x)])[1][0]), atol=1e-4)
    assert float(mx.abs(ours_grad).max()) > 0.1


@pytest.mark.parametrize("family", ["wav2vec_cls", "whisper_lid", "ecapa_lid"])
def test_models_give_the_same_logits_either_way(tmp_path, monkeypatch, family):
    variant = next(iter(families.SOURCES[family].values()))
    model = lid.load(variant(tmp_path / family))
    clips = [np.random.default_rng(i).normal(0, 0.1, 16000 * (1 + i)).astype(np.float32) for i in range(3)]
    waveforms, lengths = pad_batch(clips)
    monkeypatch.setenv(cpu_math.ENV, "0")
    mlx_logits = np.asarray(model(waveforms, lengths))
    monkeypatch.setenv(cpu_math.ENV, "1")
    numpy_logits = np.asarray(model(waveforms, lengths))
    compiled_logits = np.asarray(model.compiled_forward()(waveforms, lengths, True))  # traced: MLX's kernels
    # float32 rounding, relative: the tiny ECAPA's log-softmax logits reach -700
    np.testing.assert_allclose(numpy_logits, mlx_logits, rtol=1e-5, atol=2e-5)
    np.testing.assert_allclose(compiled_logits, mlx_logits, rtol=1e-5, atol=2e-5)
