"""The published layout of SpeechBrain's language ID: a folder read into (ecapa_lid config, weights), executing nothing.

Files: `hyperparams.yaml`, `embedding_model.ckpt`, `classifier.ckpt`, `label_encoder.txt`.
Trust boundary: the YAML is HyperPyYAML, whose tags build Python objects when SpeechBrain
loads it. Here every tag (`!new:`, `!name:`, `!apply:`, `!!python/...`) is read as inert
data and only plain values are used. Checkpoints are torch pickles, loaded with
`weights_only=True`, so a pickle that carries code is refused.
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
import yaml

from ...readers import Weights, to_mlx

MODEL_TYPE = "ecapa_lid"  # what this reader writes into the configs it returns
FILES = ("hyperparams.yaml", "embedding_model.ckpt", "classifier.ckpt", "label_encoder.txt")
HUB_PATTERNS = ("hyperparams.yaml", "*.ckpt", "label_encoder.txt")
LAYOUTS = f"a SpeechBrain language-ID folder ({', '.join(FILES)})"
ECAPA = "speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN"
CLASSIFIER_TAGS = {
    "speechbrain.lobes.models.Xvector.Classifier": "xvector",
    "speechbrain.lobes.models.ECAPA_TDNN.Classifier": "cosine",
}


@dataclass
class Tagged:
    """A YAML node with a tag, kept as data: nothing it names is imported or called."""

    tag: str
    value: Any


class _InertLoader(yaml.SafeLoader):
    pass


def _inert(loader: yaml.SafeLoader, suffix: str, node: yaml.Node, prefix: str) -> Tagged:
    if isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_scalar(node)
    return Tagged(prefix + suffix, value)


_InertLoader.add_multi_constructor("!", lambda l, s, n: _inert(l, s, n, "!"))
_InertLoader.add_multi_constructor("tag:yaml.org,2002:python/", lambda l, s, n: _inert(l, s, n, "!!python/"))


def read_hyperparams(path: Path) -> Dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=_InertLoader)  # noqa: S506 (an inert SafeLoader subclass)


def _resolve(value: Any, root: Dict[str, Any]) -> Any:
    """Follow HyperPyYAML `!ref <key>` references to plain values."""
    if isinstance(value, Tagged) and value.tag == "!ref":
        match = re.fullmatch(r"<([\w.]+)>", str(value.value).strip())
        if not match:
            raise ValueError(f"hyperparams.yaml: unsupported reference {value.value!r}")
        target: Any = root
        for part in match.group(1).split("."):
            if not isinstance(target, dict) or part not in target:
                raise ValueError(f"hyperparams.yaml: reference to missing key <{match.group(1)}>")
            target = target[part]
        return _resolve(target, root)
    if isinstance(value, list):
        return [_resolve(v, root) for v in value]
    return value


def _constructor(hparams: Dict[str, Any], key: str, expected: Tuple[str, ...]) -> Tuple[str, Dict[str, Any]]:
    node = hparams.get(key)
    if not isinstance(node, Tagged) or not node.tag.startswith("!new:"):
        raise ValueError(f"hyperparams.yaml: `{key}` is not a `!new:` object")
    name = node.tag[len("!new:"):]
    if name not in expected:
        raise ValueError(f"hyperparams.yaml: `{key}` is {name}, supported: {', '.join(expected)}")
    args = node.value if isinstance(node.value, dict) else {}
    return name, {k: _resolve(v, hparams) for k, v in args.items()}


def read_labels(path: Path) -> List[str]:
    """SpeechBrain CategoricalEncoder file (`'en: English' => 12` lines) -> labels by index."""
    by_index: Dict[int, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("="):
            break  # the footer (`'starting_index' => 0`) is not a label
        match = re.fullmatch(r"'(.*)' => (\d+)", line.strip())
        if match:
            by_index[int(match.group(2))] = match.group(1)
    if not by_index or sorted(by_index) != list(range(len(by_index))):
        raise ValueError(f"{path}: expected labels numbered 0..N-1 in CategoricalEncoder format")
    return [by_index[i] for i in range(len(by_index))]


def split_label(label: str) -> Tuple[str, str]:
    """`'en: English'` -> ('en', 'English'); a bare name (CommonLanguage) is both."""
    code, sep, name = label.partition(": ")
    return (code.strip(), name.strip()) if sep else (label, label)


def load_checkpoint(path: Path) -> Weights:
    """A torch state dict -> MLX arrays, refusing any pickle that carries more than tensors."""
    try:
        import torch
    except ImportError as error:
        raise ImportError(
            f"reading SpeechBrain checkpoints ({path.name}) needs PyTorch: "
            "pip install 'mlx-audio-lid[speechbrain]', or load an already converted MLX folder"
        ) from error
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError or RuntimeError variants
        raise ValueError(f"refusing to load {path}: not a plain tensor checkpoint ({error})") from error
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
    return to_mlx({k: v.detach().float().numpy() if v.is_floating_point() else v.numpy().astype(np.int64)
                   for k, v in state.items()})


def recognise(folder: Path) -> bool:
    return (folder / "hyperparams.yaml").exists()


def read(folder: Path) -> Tuple[dict, Weights]:
    missing = [name for name in FILES if not (folder / name).exists()]
    if missing:
        raise FileNotFoundError(f"SpeechBrain folder {folder} lacks {', '.join(missing)}")
    hparams = read_hyperparams(folder / "hyperparams.yaml")
    _, ecapa = _constructor(hparams, "embedding_model", (ECAPA,))
    classifier_name, classifier = _constructor(hparams, "classifier", tuple(CLASSIFIER_TAGS))
    _, fbank = _constructor(hparams, "compute_features", ("speechbrain.lobes.features.Fbank",))
    _, norm = _constructor(hparams, "mean_var_norm", ("speechbrain.processing.features.InputNormalization",))
    _check_supported(fbank, norm, ecapa, classifier, CLASSIFIER_TAGS[classifier_name])

    labels = read_labels(folder / "label_encoder.txt")
    codes, names = zip(*(split_label(label) for label in labels))
    config = {
        "model_type": MODEL_TYPE,
        "n_mels": int(fbank.get("n_mels", 40)),
        "sample_rate": int(fbank.get("sample_rate", 16000)),
        "channels": list(ecapa.get("channels", [512, 512, 512, 512, 1536])),
        "kernel_sizes": list(ecapa.get("kernel_sizes", [5, 3, 3, 3, 1])),
        "dilations": list(ecapa.get("dilations", [1, 2, 3, 4, 1])),
        "attention_channels": int(ecapa.get("attention_channels", 128)),
        "res2net_scale": int(ecapa.get("res2net_scale", 8)),
        "se_channels": int(ecapa.get("se_channels", 128)),
        "global_context": bool(ecapa.get("global_context", True)),
        "lin_neurons": int(ecapa.get("lin_neurons", 192)),
        "classifier": CLASSIFIER_TAGS[classifier_name],
        "classifier_lin_neurons": int(classifier.get("lin_neurons", 512)),
        "labels": list(codes),
        "label_names": list(names),
    }
    if len(labels) != int(classifier.get("out_neurons", len(labels))):
        raise ValueError(f"label_encoder.txt has {len(labels)} labels, the classifier {classifier['out_neurons']}")
    weights = {f"embedding_model.{k}": v for k, v in load_checkpoint(folder / "embedding_model.ckpt").items()}
    weights.update({f"classifier.{k}": v for k, v in load_checkpoint(folder / "classifier.ckpt").items()})
    return config, weights


def _check_supported(fbank: dict, norm: dict, ecapa: dict, classifier: dict, kind: str) -> None:
    """Refuse settings this port does not implement, rather than computing something else."""
    problems = []
    if fbank.get("deltas") or fbank.get("context"):
        problems.append("Fbank deltas/context")
    for key, default in (("n_fft", 400), ("win_length", 25), ("hop_length", 10), ("f_min", 0)):
        if fbank.get(key, default) != default:
            problems.append(f"Fbank {key}={fbank[key]}")
    if fbank.get("f_max") not in (None, fbank.get("sample_rate", 16000) // 2):
        problems.append(f"Fbank f_max={fbank['f_max']}")
    if norm.get("norm_type", "global") != "sentence" or norm.get("std_norm", True):
        problems.append("InputNormalization other than sentence mean (std_norm False)")
    activation = ecapa.get("activation")
    if activation is not None and getattr(activation, "tag", None) != "!name:torch.nn.ReLU":
        problems.append(f"ECAPA activation {getattr(activation, 'tag', activation)} (only ReLU)")
    if any(g != 1 for g in ecapa.get("groups", [1])):
        problems.append("grouped ECAPA convs")
    if kind == "xvector":
        if int(classifier.get("lin_blocks", 1)) != 1:
            problems.append(f"Xvector classifier lin_blocks={classifier['lin_blocks']}")
        act = classifier.get("activation")
        if act is not None and getattr(act, "tag", None) != "!name:torch.nn.LeakyReLU":
            problems.append(f"classifier activation {getattr(act, 'tag', act)} (only LeakyReLU)")
    elif int(classifier.get("lin_blocks", 0)) != 0:
        problems.append(f"cosine classifier lin_blocks={classifier['lin_blocks']}")
    if problems:
        raise ValueError("unsupported SpeechBrain settings: " + "; ".join(problems))
