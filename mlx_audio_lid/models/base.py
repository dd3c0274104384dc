"""The contract every model family honours, as an abstract base class.

`model(waveforms, lengths) -> logits`: raw 16 kHz waveforms (B, T), zero-padded on the right,
with each clip's valid length in samples; `softmax(logits)` are the language probabilities.
`model.embed(waveforms, lengths)` gives the utterance embedding. Every clip in a padded batch
gets what it gets alone. `config.sample_rate` is the rate the model takes (16000).
"""

import abc
from typing import List, Optional, Sequence, Tuple

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten


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
        """Validate a batch (shape, lengths, minimum length) -> (waveforms, lengths, padded)."""
        if waveforms.ndim != 2:
            raise ValueError(f"expected waveforms of shape (batch, samples), got {tuple(waveforms.shape)}")
        if lengths is None:
            lengths = mx.full((waveforms.shape[0],), waveforms.shape[1], dtype=mx.int32)
        lengths = mx.array(lengths).astype(mx.int32)
        if lengths.shape != (waveforms.shape[0],) or int(lengths.max().item()) > waveforms.shape[1]:
            raise ValueError(f"lengths {lengths.tolist()} do not fit waveforms of shape {tuple(waveforms.shape)}")
        self.check_lengths(lengths)
        return waveforms, lengths, int(lengths.min().item()) < waveforms.shape[1]

    def check_lengths(self, lengths: mx.array) -> None:
        rate = self.config.sample_rate
        shortest = int(lengths.min().item())
        if shortest < self.min_samples:
            raise ValueError(
                f"clip of {shortest} samples is shorter than this model's minimum of "
                f"{self.min_samples} samples ({self.min_samples / rate * 1000:.0f} ms at {rate} Hz)"
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
            object.__setattr__(self, "_compiled_forward", mx.compile(self.forward))
        return self._compiled_forward

    def prepare_weights(self) -> None:
        """Derive inference-only arrays from the parameters (e.g. folded norms); default none.

        Runs after load_weights and set_dtype. What it derives is kept outside the parameters
        (saved folders and strict loading never see it) and must be checked against them
        before use, since parameters can also change through `update`.
        """

    def predict(self, input_values, top_k: int = 5) -> List[Tuple[str, float]]:
        """mlx-audio's `predict`: one raw 16 kHz clip -> [(label, probability)], best first."""
        audio = mx.array(input_values)
        if audio.ndim == 2 and audio.shape[0] == 1:
            audio = audio[0]
        if audio.ndim != 1:
            raise ValueError(
                f"predict() takes one clip (T,) or (1, T), got shape {tuple(audio.shape)}; "
                "use mlx_audio_lid.identify() for batches"
            )
        probs = mx.softmax(self(audio[None].astype(mx.float32)).astype(mx.float32), axis=-1)[0]
        order = mx.argsort(-probs)[:top_k].tolist()
        values = probs.tolist()
        return [(self.labels[i], values[i]) for i in order]

