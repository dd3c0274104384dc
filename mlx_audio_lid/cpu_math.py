"""Attention, softmax and GELU through NumPy where MLX runs on an x86 CPU.

MLX's Linux wheels vectorize none of their element-wise kernels on x86 (MLX's CPU SIMD layer
is NEON/Accelerate only, so every op runs one float at a time), and `exp` and `erf` call
libm's `fma` once per polynomial term. On the 2-core x86 machine here `mx.exp` runs 53 M
values/s against NumPy's (AVX-512) 1000 M/s, so the softmax of a transformer's attention and
its GELU dominate a forward pass: one Whisper base encoder layer (30 s, 8 heads) spends 388 of
its ~690 ms in attention and 96 ms in GELU. Through NumPy (its BLAS and its vectorized
kernels), one head or block of 2^18 values per task on a thread pool as wide as the cores the
process may use, they take ~50 and ~20 ms, equal to MLX's to float32 rounding
(tests/test_cpu_math.py).

Used when MLX's default device is the CPU of an x86 machine, for float32 arrays. Under MLX's
transformations the result stays right: a traced array (`mx.compile`, `mx.vmap`) cannot leave
MLX, so there MLX's kernel runs (the package's compiled path says so up front, see `tracing`),
and derivatives (`mx.grad`, `mx.vjp`, `mx.jvp`) are MLX's kernel's (see `_numpy_forward`).
MLX_AUDIO_LID_NUMPY_CPU=0 keeps MLX's kernels, =1 uses NumPy on any CPU (Apple silicon's CPU
kernels are NEON-vectorized, so there the default is MLX's).
"""

import contextlib
import contextvars
import functools
import math
import os
import platform
from concurrent.futures import ThreadPoolExecutor

import mlx.core as mx
import mlx.nn as nn
import numpy as np

ENV = "MLX_AUDIO_LID_NUMPY_CPU"
_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
ROWS = 512  # queries per block of attention scores (one head): 512 x 1500 floats, 3 MB
BLOCK = 1 << 18  # values per block of GELU: its six temporaries stay in cache (21 against 37 ms on 3 M)
_tracing = contextvars.ContextVar("mlx_audio_lid_tracing", default=False)
# NumPy's element-wise kernels run on one core; they release the GIL, so blocks of one
# attention or GELU run on every core the process may use. A pool of its own, made on first use.
_WORKERS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@functools.lru_cache(maxsize=None)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(_WORKERS, thread_name_prefix="mlx_audio_lid_cpu_math")


@functools.lru_cache(maxsize=None)
def _numpy_blas():
    """threadpoolctl's handle on NumPy's BLAS (not the one cpu_blas loaded for MLX)."""
    from threadpoolctl import ThreadpoolController

    from . import cpu_blas

    controller = ThreadpoolController()
    mlx_blas = os.path.realpath(cpu_blas.active) if cpu_blas.active else None
    others = [lib["filepath"] for lib in controller.info()
              if lib["user_api"] == "blas" and os.path.realpath(lib["filepath"]) != mlx_blas]
    return controller.select(filepath=others)


def _run_all(work, items) -> None:
    """work(item) for every item, on the pool where there is more than one of each.

    Meanwhile NumPy's BLAS runs one thread per call: the pool's threads are the parallelism
    (its own threads on top took one Whisper attention from 50 to 145 ms, 2 cores).
    """
    items = list(items)
    if _WORKERS == 1 or len(items) == 1:
        for item in items:
            work(item)
        return
    with _numpy_blas().limit(limits=1):
        for _ in _pool().map(work, items):  # re-raises the first worker's exception here
            pass


@contextlib.contextmanager
def tracing():
    """Inside: every array may be a tracer of `mx.compile`, so everything stays in MLX."""
    token = _tracing.set(True)
    try:
        yield
    finally:
        _tracing.reset(token)


def enabled(*arrays: mx.array) -> bool:
    """Whether these arrays take the NumPy path here and now."""
    setting = os.environ.get(ENV, "").strip()
    if setting not in ("", "0", "1"):
        raise ValueError(f"{ENV}={setting!r}: use 0 (MLX's kernels) or 1 (NumPy on any CPU)")
    if setting == "0" or _tracing.get() or mx.default_device() != mx.cpu:
        return False
    return (setting == "1" or _X86) and all(a.dtype == mx.float32 for a in arrays)


_TRACED = "during function transformations"  # MLX's refusal to evaluate a tracer


def _numpy_forward(mlx_kernel, numpy_kernel):
    """`numpy_kernel`'s values with `mlx_kernel`'s derivatives, and `mlx_kernel` on tracers.

    Without the custom derivatives `mx.grad` would see arrays made from NumPy, constants, and
    return zeros; without the fallback a user's `mx.compile(model)` would fail.
    """

    @mx.custom_function
    def forward(*arrays):
        try:
            mx.eval(*arrays)
        except ValueError as error:
            if _TRACED not in str(error):
                raise
            return mlx_kernel(*arrays)
        return mx.array(numpy_kernel(*(np.asarray(a) for a in arrays)))

    # MLX hands a function of one argument its primal (and tangent) bare, not in a tuple
    def listed(arrays):
        return [arrays] if isinstance(arrays, mx.array) else list(arrays)

    @forward.vjp
    def _(primals, cotangent, output):
        grads = mx.vjp(mlx_kernel, listed(primals), [cotangent])[1]
        return grads[0] if isinstance(primals, mx.array) else tuple(grads)

    @forward.jvp
    def _(primals, tangents):
        primals = listed(primals)  # an argument held constant (the mask) comes with None
        tangents = [mx.zeros_like(p) if t is None else t for p, t in zip(primals, listed(tangents))]
        return mx.jvp(mlx_kernel, primals, tangents)[1][0]

    return forward


def attention(q: mx.array, k: mx.array, v: mx.array, scale: float, mask=None) -> mx.array:
    """softmax(q k^T * scale + mask) v for (B, heads, frames, width) q, k, v.

    As `mx.fast.scaled_dot_product_attention`; an additive float mask broadcasts over the
    scores. Off the NumPy path it is that kernel.
    """
    if not enabled(q, k, v) or (mask is not None and mask.dtype != mx.float32):
        return mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask)
    return _attention_function(float(scale))(q, k, v, *([] if mask is None else [mask]))


@functools.lru_cache(maxsize=None)
def _attention_function(scale: float):
    def mlx_kernel(q, k, v, mask=None):
        return mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask)

    return _numpy_forward(mlx_kernel, functools.partial(_attention_numpy, scale=scale))


def _attention_numpy(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask=None, *, scale: float) -> np.ndarray:
    if mask is not None:
        mask = np.broadcast_to(mask, (*q.shape[:2], *mask.shape[2:]))
    out = np.empty((*q.shape[:-1], v.shape[-1]), np.float32)

    # One head and ROWS queries at a time: its scores stay in cache (60 against 102 ms for the
    # whole (8, 1500, 1500) block at once), and memory stays bounded for long inputs. Each head
    # reuses one scores buffer, the scale goes into the keys (frames x width, not frames^2) and
    # the sums divide the (rows, width) output instead of the (rows, frames) weights: Whisper
    # base's head at 30 s, one thread, 11.4 to 7.9 ms.
    def head(index):
        b, h = index
        keys = np.multiply(k[b, h].T, np.float32(scale), order="C")  # (width, frames)
        values = np.ascontiguousarray(v[b, h])
        buffer = np.empty((min(ROWS, q.shape[2]), keys.shape[1]), np.float32)
        for start in range(0, q.shape[2], ROWS):
            rows = slice(start, start + ROWS)
            scores = buffer[: min(ROWS, q.shape[2] - start)]
            np.matmul(q[b, h, rows], keys, out=scores)
            if mask is not None:
                scores += mask[b, h, rows] if mask.shape[2] > 1 else mask[b, h, 0]
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            total = scores.sum(axis=-1, keepdims=True)
            np.matmul(scores, values, out=out[b, h, rows])
            out[b, h, rows] /= total

    _run_all(head, np.ndindex(*q.shape[:2]))
    return out


# erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): the polynomial that MLX's CPU erf and
# PyTorch's vectorized CPU erf both use, so GELU here is theirs to float32 rounding.
_P, _A = 0.3275911, (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)


def _gelu_numpy(x: np.ndarray) -> np.ndarray:
    z = x * np.float32(2**-0.5)
    t = np.abs(z)
    t *= np.float32(_P)
    t += 1
    np.reciprocal(t, out=t)
    r = t * np.float32(_A[0])
    for a in _A[1:]:
        r += np.float32(a)
        r *= t
    np.square(z, out=t)
    np.negative(t, out=t)
    np.exp(t, out=t)
    r *= t  # r = 1 - erf(|z|)
    # 1 + erf(z) is 2 - r above zero and r below it
    one_plus_erf = np.where(z >= 0, np.float32(2) - r, r)
    one_plus_erf *= x
    one_plus_erf *= np.float32(0.5)
    return one_plus_erf


def _gelu_blocks(x: np.ndarray) -> np.ndarray:
    flat = x.reshape(-1)
    out = np.empty_like(flat)

    def block(start):
        out[start : start + BLOCK] = _gelu_numpy(flat[start : start + BLOCK])

    _run_all(block, range(0, flat.size, BLOCK))
    return out.reshape(x.shape)


_gelu_function = _numpy_forward(nn.gelu, _gelu_blocks)


def _softmax_numpy(x: np.ndarray, *, axis: int) -> np.ndarray:
    out = np.array(x, dtype=np.float32)  # the copy the blocks work in, in place
    axis %= out.ndim
    size = out.shape[axis]
    view = out.reshape(math.prod(out.shape[:axis]), size, -1)  # (before, axis, after): no transpose copy
    if view.shape[2] == 1:  # the last axis: blocks of whole rows
        rows = max(1, BLOCK // size)
        parts = [(slice(r, r + rows), slice(None), 0) for r in range(0, view.shape[0], rows)]
        reduced = -1
    else:  # an inner axis: blocks of columns, each a (size, columns) slab
        columns = max(1, BLOCK // size)
        parts = [(b, slice(None), slice(c, c + columns)) for b in range(view.shape[0]) for c in range(0, view.shape[2], columns)]
        reduced = 0

    def block(index):
        part = view[index]
        part -= part.max(axis=reduced, keepdims=True)
        np.exp(part, out=part)
        part /= part.sum(axis=reduced, keepdims=True)

    _run_all(block, parts)
    return out


@functools.lru_cache(maxsize=None)
def _softmax_function(axis: int):
    return _numpy_forward(lambda x: mx.softmax(x, axis=axis), functools.partial(_softmax_numpy, axis=axis))


def softmax(x: mx.array, axis: int) -> mx.array:
    """`mx.softmax(x, axis)`; through NumPy here (MLX's x86 exp is scalar: ECAPA's pooling
    softmax over 1000 x 3072 values took 61 ms)."""
    return _softmax_function(axis)(x) if enabled(x) else mx.softmax(x, axis=axis)


def gelu(x: mx.array) -> mx.array:
    """Exact (erf) GELU, as `nn.gelu`."""
    return _gelu_function(x) if enabled(x) else nn.gelu(x)


class GELU(nn.Module):
    """`nn.GELU()` (no parameters) through `gelu` above: a drop-in for mlx-audio's layers."""

    def __call__(self, x: mx.array) -> mx.array:
        return gelu(x)
