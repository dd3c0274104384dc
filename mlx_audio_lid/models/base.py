"""The contract every model family honours, as an abstract base class.

`model(waveforms, lengths) -> logits`: raw 16 kHz waveforms (B, T), zero-padded on the right,
with each clip's valid length in samples; `softmax(logits)` are the language probabilities.
`model.embed(waveforms, lengths)` gives the utterance embedding. Every clip in a padded batch
gets what it gets alone. `config.sample_rate` is the rate the model takes (16000).
"""

import abc
import numbers
from typing import Dict, List, Optional, Sequence, Tuple

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten

from .. import cpu_cache, cpu_math
from ..audio import check_samples

# The most memory one intermediate array of one clip's pass may take. Above it a single pass
# fails or exhausts the machine (a 30-minute clip through MMS-LID asked for ~500 GB of attention
# scores and was killed); each family turns this into its longest clip (`max_samples`).
SINGLE_PASS_BYTES = 2 * 2**30


def _shorten(keys: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(sorted(keys)[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


# Whether identify() compiles the forward pass when its `compile` is None, per device type:
# off on the CPU, where compiled was slower than eager (README "Speed"); on a GPU off until
# benchmarks/gpu_suite.sh shows a warm-cache first call within seconds. Flip here.
COMPILE_BY_DEFAULT = {"cpu": False, "gpu": False}


def compile_by_default() -> bool:
    return COMPILE_BY_DEFAULT["gpu" if mx.default_device() == mx.gpu else "cpu"]


class LanguageIdModel(nn.Module, abc.ABC):
    """What a family implements (the abstract members) and what it gets: input checks, strict
    weight loading and mlx-audio's `predict`."""

    def __new__(cls, *args, **kwargs):
        # nn.Module is a dict, and dict's constructor skips ABCMeta's check: make it here.
        if cls.__abstractmethods__:
            missing = ", ".join(sorted(cls.__abstractmethods__))
            raise TypeError(f"{cls.__name__} does not implement the model contract's {missing}")
        cpu_cache.install()  # with the first model: importing the package leaves MLX's settings alone
        return super().__new__(cls, *args, **kwargs)

    @property
    @abc.abstractmethod
    def labels(self) -> List[str]:
        """The model's own label per logit, in logit order (e.g. "eng", or VoxLingua107's "en")."""

    @property
    def label_names(self) -> List[Optional[str]]:
        """English names per label where the checkpoint gives them, else None per label."""
        return [None] * len(self.labels)

    @property
    @abc.abstractmethod
    def min_samples(self) -> int:
        """The shortest clip, in samples, the network can answer for."""

    @property
    @abc.abstractmethod
    def max_samples(self) -> int:
        """The longest clip, in samples, one pass takes within SINGLE_PASS_BYTES."""

    max_samples_reason = "memory grows with the length"  # what grows: each family says

    @abc.abstractmethod
    def embed_batch(self, waveforms: mx.array, lengths: mx.array, padded: bool = True) -> mx.array:
        """Checked (B, T) waveforms and (B,) lengths -> (B, D) embeddings."""

    @abc.abstractmethod
    def classify(self, embeddings: mx.array) -> mx.array:
        """(B, D) embeddings -> (B, labels) logits."""

    def sanitize(self, weights):
        """Checkpoint names and layouts -> this model's; safe to run twice. Default: unchanged."""
        return weights

    def __call__(self, waveforms: mx.array, lengths: Optional[mx.array] = None) -> mx.array:
        """(B, T) raw waveforms, (B,) valid lengths in samples -> (B, labels) logits."""
        return self.forward(*self.prepare(waveforms, lengths))

    def embed(self, waveforms: mx.array, lengths: Optional[mx.array] = None) -> mx.array:
        """(B, T) raw waveforms, (B,) valid lengths -> (B, D) utterance embeddings."""
        return self.embed_batch(*self.prepare(waveforms, lengths))

    def forward(self, waveforms: mx.array, lengths: mx.array, padded: bool = True) -> mx.array:
        """The network alone, on checked inputs: pure, so `mx.compile(model.forward)` works.

        `padded=False` promises every clip fills the batch, which lets attention skip its mask.
        """
        return self.classify(self.embed_batch(waveforms, lengths, padded))

    def prepare(self, waveforms: mx.array, lengths: Optional[mx.array]) -> Tuple[mx.array, mx.array, bool]:
        """Validate a batch (shape, lengths, minimum length) -> (waveforms, lengths, padded).

        The checks read the lengths on the host: a reduction on the device would wait for every
        kernel queued before it, and keep identify() from queueing the next batch meanwhile."""
        if waveforms.ndim != 2:
            raise ValueError(f"expected waveforms of shape (batch, samples), got {tuple(waveforms.shape)}")
        if lengths is None:
            lengths = np.full((waveforms.shape[0],), waveforms.shape[1], dtype=np.int32)
        host = _host_lengths(lengths)
        if host.shape != (waveforms.shape[0],) or host.size == 0 or int(host.max()) > waveforms.shape[1]:
            raise ValueError(f"lengths {host.tolist()} do not fit waveforms of shape {tuple(waveforms.shape)}")
        self.check_lengths(host)
        return waveforms, mx.array(host, dtype=mx.int32), int(host.min()) < waveforms.shape[1]

    def check_lengths(self, lengths) -> None:
        """Each length (samples; an array or a sequence) within the model's minimum and max_samples."""
        host = _host_lengths(lengths)
        rate = self.config.sample_rate
        shortest, longest = int(host.min()), int(host.max())
        if shortest < self.min_samples:
            raise ValueError(
                f"clip of {shortest} samples is shorter than this model's minimum of "
                f"{self.min_samples} samples ({self.min_samples / rate * 1000:.0f} ms at {rate} Hz)"
            )
        if longest > self.max_samples:
            raise ValueError(
                f"clip of {longest / rate:.1f} s is longer than the "
                f"{self.max_samples / rate:.1f} s this model takes in one pass "
                f"({self.max_samples_reason}, over {SINGLE_PASS_BYTES / 2**30:.0f} GiB beyond that): "
                "identify() runs long recordings in windows (window=, hop=); for embed(), cut the "
                "audio into shorter clips"
            )

    def load_weights(self, file_or_weights, strict: bool = True) -> "LanguageIdModel":
        """Load weights, refusing to leave any parameter at its random initial value.

        Missing and mis-shaped weights are always errors naming the keys; unexpected
        weights are errors when `strict` (mlx-audio's loader passes strict=False, which
        here only tolerates extra keys).
        """
        weights = file_or_weights
        if isinstance(weights, str):
            weights = mx.load(weights)
        weights = dict(weights)
        expected = dict(tree_flatten(self.parameters()))
        missing = expected.keys() - weights.keys()
        unexpected = weights.keys() - expected.keys()
        if missing:
            raise ValueError(
                f"checkpoint is missing {len(missing)} weight(s) the model needs: "
                f"{_shorten(missing)}"
                + (f"; it has unexpected ones: {_shorten(unexpected)}" if unexpected else "")
            )
        if unexpected and strict:
            raise ValueError(
                f"checkpoint has {len(unexpected)} weight(s) the model does not use: "
                f"{_shorten(unexpected)} (load with strict=False to ignore them)"
            )
        for key, value in expected.items():
            if weights[key].shape != value.shape:
                raise ValueError(
                    f"weight {key} has shape {tuple(weights[key].shape)}, "
                    f"the model expects {tuple(value.shape)}"
                )
        check_weight_dtypes(expected, weights)
        super().load_weights([(k, weights[k]) for k in expected], strict=True)
        self._weights_changed()
        return self

    def set_dtype(self, dtype, predicate=None) -> None:
        """nn.Module.set_dtype, then prepare_weights again on the cast parameters."""
        if predicate is None:
            super().set_dtype(dtype)
        else:
            super().set_dtype(dtype, predicate)
        self._weights_changed()

    def _weights_changed(self) -> None:
        object.__setattr__(self, "_compiled_forward", None)  # a compiled graph keeps the arrays it traced
        self.prepare_weights()

    def compiled_forward(self):
        """`mx.compile(self.forward)`, made once per set of weights.

        Compiled per input shape (MLX cannot compile these graphs shapeless: the fbank's pad
        and the conv stack's slices fix their shapes); on a GPU each new shape traces again,
        and its kernels come from the on-disk cache (kernel_cache.py) when seen before.
        """
        if getattr(self, "_compiled_forward", None) is None:
            compiled = mx.compile(self.forward)

            def forward(*args, **kwargs):
                with cpu_math.tracing():  # every array a tracer: skip cpu_math's failed evaluations
                    return compiled(*args, **kwargs)

            object.__setattr__(self, "_compiled_forward", forward)
        return self._compiled_forward

    def prepare_weights(self) -> None:
        """Derive inference-only arrays from the parameters (e.g. folded norms); default none.

        Runs after load_weights and set_dtype. What it derives is kept outside the parameters
        (saved folders and strict loading never see it) and must be checked against them
        before use, since parameters can also change through `update`.
        """

    def predict(self, input_values, top_k: int = 5) -> List[Tuple[str, float]]:
        """mlx-audio's `predict`: one raw 16 kHz clip -> [(label, probability)], best first."""
        try:
            samples = np.asarray(input_values.astype(mx.float32) if isinstance(input_values, mx.array) else input_values)
        except ValueError:  # e.g. a list of clips of different lengths
            raise ValueError("predict() takes one clip (T,) or (1, T); use mlx_audio_lid.identify() for several") from None
        if samples.dtype.kind not in "fiu":
            raise ValueError(f"predict() takes audio samples as numbers, got dtype {samples.dtype}")
        audio = mx.array(samples)
        if audio.ndim == 2 and audio.shape[0] == 1:
            audio = audio[0]
        if audio.ndim != 1:
            raise ValueError(
                f"predict() takes one clip (T,) or (1, T), got shape {tuple(audio.shape)}; "
                "use mlx_audio_lid.identify() for batches"
            )
        check_top_k(top_k)
        audio = mx.array(check_samples(np.array(audio.astype(mx.float32))))  # NaN, inf, absurd amplitudes
        probs = mx.softmax(self(audio[None]).astype(mx.float32), axis=-1)[0]
        values = np.array(probs)
        check_finite_output(values)
        order = np.argsort(-values, kind="stable")[:top_k]
        return [(self.labels[i], float(values[i])) for i in order]


def _host_lengths(lengths) -> np.ndarray:
    """Lengths as a host int64 array. An mx.array made from host data (pad_batch's) converts
    without any device work; a device op here (even a cast) would wait for the whole queue."""
    host = np.asarray(lengths)
    whole = host.dtype.kind in "iu" or (host.dtype.kind == "f" and np.all(np.mod(host, 1) == 0))
    if not whole:
        raise ValueError(f"lengths must be whole numbers of samples, got {host.tolist()}")
    return host.astype(np.int64)


def check_top_k(top_k) -> None:
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1:
        raise ValueError(f"top_k must be a whole number of at least 1, got {top_k!r}")


def check_finite_output(values: np.ndarray, what: str = "the clip") -> None:
    """A NaN or infinite model output is an error, never an answer."""
    if not np.isfinite(values).all():
        raise ValueError(
            f"the model's output for {what} is not finite (NaN or inf): its weights may be damaged, "
            "or a float16 computation overflowed (load it with dtype='float32')"
        )


MAX_LIST_ENTRIES = 64  # per-layer lists in a config (conv_dim, channels, ...): published models have 5-7


def check_config(model_type: str, params: dict, required, limits: Dict[str, int]) -> None:
    """Every required key present, then every size within its limit (check_sizes)."""
    missing = [k for k in required if k not in params]
    if missing:
        raise ValueError(f"{model_type} config is missing required keys: {', '.join(missing)}")
    check_sizes(model_type, params, limits)


def check_sizes(model_type: str, params: dict, limits: Dict[str, int]) -> None:
    """Each size a config gives (a whole number, or a list of them) within 1..its limit.

    Checked before anything is built: a num_hidden_layers of 1e9 would build layers for ever.
    """
    for key, limit in limits.items():
        value = params.get(key)
        if value is None:
            continue
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if isinstance(value, (list, tuple)) and not 1 <= len(values) <= MAX_LIST_ENTRIES:
            raise ValueError(f"{model_type} config: {key} has {len(values)} entries; 1 to {MAX_LIST_ENTRIES} are supported")
        if not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= limit for v in values):
            raise ValueError(f"{model_type} config: {key} = {value!r}: sizes must be whole numbers from 1 to {limit}")


def check_weight_dtypes(expected: Dict[str, mx.array], weights: Dict[str, mx.array]) -> None:
    """A float parameter gets float weights with finite values; a quantized one its own integer type."""
    for key, value in expected.items():
        given = weights[key].dtype
        if mx.issubdtype(value.dtype, mx.floating):
            if not mx.issubdtype(given, mx.floating):
                raise ValueError(f"weight {key} has dtype {given}; it must be floating point (float32, float16, bfloat16)")
            if not mx.isfinite(weights[key]).all().item():
                raise ValueError(f"weight {key} has NaN or infinite values: the checkpoint is damaged")
        elif given != value.dtype:
            raise ValueError(f"weight {key} has dtype {given}; this (quantized) model stores it as {value.dtype}")

