"""The contract every registered family honours, on a tiny model of each (tests/families.py).

Loading from the family's published layout, batched == alone, `forward(padded=False)`, the
minimum length, strict loading (a removed, renamed or reshaped tensor is an error naming it),
each dtype, and the round trip through a converted folder and mlx-audio's own loaders. A family
added to the registry gets all of it by adding its tiny source to tests/families.py.
"""

import ast
import fnmatch
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import mlx_audio.lid
import mlx_audio.utils
import numpy as np
import pytest
from mlx.utils import tree_flatten
from safetensors.numpy import load_file, save_file

import mlx_audio_lid as lid
from mlx_audio_lid import registry
from mlx_audio_lid.identification import pad_batch
from mlx_audio_lid.loading import read_source
from mlx_audio_lid.models.base import LanguageIdModel
from mlx_audio_lid.models.family import Family

from families import SOURCES
from references.signals import SYNTHETIC_VAD, speechlike_clips

PACKAGE = Path(lid.__file__).parent
CASES = [(f.model_type, variant) for f in registry.FAMILIES for variant in SOURCES.get(f.model_type, {})]
BATCH_RELATIVE = 2e-5  # batched vs alone, relative to the logits' scale (float32 rounding of other blockings)
DTYPE_RELATIVE = {"float16": 2e-2, "bfloat16": 1e-1}


@dataclass
class Case:
    family: Family
    source: Path  # the tiny model in its published layout
    converted: Path  # the same, converted to an MLX folder (float32)
    model: LanguageIdModel  # loaded from the source


@pytest.fixture(scope="module", params=CASES, ids=[f"{t}-{v}" for t, v in CASES])
def case(request, tmp_path_factory):
    model_type, variant = request.param
    root = tmp_path_factory.mktemp(f"{model_type}-{variant}")
    source = SOURCES[model_type][variant](root / "source")
    return Case(registry.family(model_type), source, lid.convert(source, root / "mlx"), lid.load(source))


def clips(model, seed=0):
    """Three speech-like clips of different lengths, the shortest a little over the model's minimum."""
    return speechlike_clips([16000, 9000, max(4000, 2 * model.min_samples)], seed=seed)


def logits(model, waveforms, lengths=None):
    return np.array(model(waveforms, lengths).astype(mx.float32))


def alone(model, clip_list, method="__call__"):
    return np.concatenate([np.array(getattr(model, method)(mx.array(c)[None]).astype(mx.float32)) for c in clip_list])


def test_every_registered_family_has_a_tiny_source():
    missing = [t for t in registry.model_types() if not SOURCES.get(t)]
    assert not missing, f"add a tiny source for {missing} to tests/families.py"


def test_family_record_and_package(case):
    family, package = case.family, case.family.package
    assert package.FAMILY is family and family.module == package.__name__
    assert issubclass(package.Model, LanguageIdModel) and isinstance(case.model, package.Model)
    assert package.ModelConfig.from_dict(read_source(case.source)[0]).model_type == family.model_type
    assert family.card_template.is_file() and Path(family.card_template).parent == Path(package.__file__).parent
    assert 0 < family.hop <= family.window and family.max_whole >= family.window
    assert family.license and family.tags and family.layouts


def test_source_layout_is_recognised_by_its_family_alone(case):
    assert [f.model_type for f in registry.FAMILIES if f.recognise(case.source)] == [case.family.model_type]
    config, _ = case.family.read(case.source)
    assert config["model_type"] == case.family.model_type
    files = [p.relative_to(case.source).as_posix() for p in case.source.rglob("*") if p.is_file()]
    unfetched = [f for f in files if not any(fnmatch.fnmatch(f, pattern) for pattern in registry.hub_patterns())]
    assert not unfetched, f"the Hub download would not fetch {unfetched}"


def test_outputs_labels_and_sample_rate(case):
    model = case.model
    waveforms, lengths = pad_batch(clips(model))
    out = logits(model, waveforms, lengths)
    assert out.shape == (3, len(model.labels)) and np.isfinite(out).all()
    assert len(model.label_names) == len(model.labels) and len(set(model.labels)) == len(model.labels)
    assert model.embed(waveforms, lengths).shape[0] == 3
    assert model.config.sample_rate == 16000
    assert np.abs(out[0] - out[1]).max() > 1e-3  # the answers depend on the audio


def test_batched_equals_alone(case):
    model, clip_list = case.model, clips(case.model)
    waveforms, lengths = pad_batch(clip_list)
    for method, batched in (("__call__", logits(model, waveforms, lengths)),
                            ("embed", np.array(model.embed(waveforms, lengths)))):
        single = alone(model, clip_list, method)
        assert np.abs(batched - single).max() <= BATCH_RELATIVE * max(1.0, np.abs(single).max()), method


def test_forward_without_padding_promise(case):
    model = case.model
    waveforms, lengths = pad_batch(speechlike_clips([12000, 12000], seed=4))
    unpadded = np.array(model.forward(waveforms, lengths, padded=False))
    padded = np.array(model.forward(waveforms, lengths, padded=True))
    assert np.abs(unpadded - padded).max() <= BATCH_RELATIVE * max(1.0, np.abs(padded).max())
    assert np.array_equal(unpadded, logits(model, waveforms))  # an unpadded batch takes the unpadded path


def test_minimum_length(case):
    model = case.model
    with pytest.raises(ValueError, match="shorter than this model's minimum"):
        model(mx.zeros((1, model.min_samples - 1)))
    assert np.isfinite(logits(model, 0.1 * mx.random.normal((1, model.min_samples)))).all()


def test_sanitize_is_safe_to_run_twice(case):
    _, weights = read_source(case.source)
    once = case.model.sanitize(weights)
    twice = case.model.sanitize(once)
    assert once.keys() == twice.keys() and all(np.array_equal(once[k], twice[k]) for k in once)


def _edited(case, tmp_path, edit):
    folder = tmp_path / "edited"
    folder.mkdir()
    (folder / "config.json").write_bytes((case.converted / "config.json").read_bytes())
    weights = load_file(case.converted / "model.safetensors")
    edit(weights)
    save_file(weights, folder / "model.safetensors")
    return folder


def _some_matrix(case) -> str:
    return next(k for k, v in sorted(tree_flatten(case.model.parameters())) if v.ndim >= 2 and v.shape[-1] > 1)


@pytest.mark.parametrize("change", ["removed", "renamed", "reshaped"])
def test_strict_loading_names_the_bad_tensor(case, tmp_path, change):
    key = _some_matrix(case)
    edit, message = {
        "removed": (lambda w: w.pop(key), f"missing 1 weight(s) the model needs: {key}"),
        "renamed": (lambda w: w.__setitem__(key + "_moved", w.pop(key)), f"{key}; it has unexpected ones: {key}_moved"),
        "reshaped": (lambda w: w.__setitem__(key, w[key][..., :-1]), f"weight {key} has shape"),
    }[change]
    folder = _edited(case, tmp_path, edit)
    for loader in (lid.load, lambda f: lid.load(f, strict=False), lambda f: mlx_audio.lid.load(str(f))):
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            loader(folder)


def test_unexpected_tensor_is_an_error_unless_not_strict(case, tmp_path):
    folder = _edited(case, tmp_path, lambda w: w.__setitem__("extra.weight", np.zeros(3, np.float32)))
    with pytest.raises(ValueError, match="does not use: extra.weight"):
        lid.load(folder)
    clip = mx.array(clips(case.model)[0])[None]
    assert np.array_equal(logits(lid.load(folder, strict=False), clip), logits(case.model, clip))


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "auto"])
def test_each_dtype(case, dtype):
    model = lid.load(case.converted, dtype=dtype)
    expected = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16,
                "auto": mx.float16 if mx.default_device() == mx.gpu else mx.float32}[dtype]
    floats = {v.dtype for _, v in tree_flatten(model.parameters()) if mx.issubdtype(v.dtype, mx.floating)}
    assert floats == {expected}
    waveforms, lengths = pad_batch(clips(case.model))
    full, got = logits(case.model, waveforms, lengths), logits(model, waveforms, lengths)
    tolerance = DTYPE_RELATIVE.get(str(expected).split(".")[-1], 0.0)
    assert np.isfinite(got).all() and np.abs(got - full).max() <= tolerance * np.abs(full).max()


@pytest.mark.parametrize("loader", [mlx_audio.lid.load, mlx_audio.utils.load_model], ids=["lid.load", "utils.load_model"])
def test_mlx_audio_loaders_round_trip(case, loader):
    model = loader(str(case.converted))
    assert isinstance(model, case.family.package.Model)
    clip = clips(case.model)[0]
    expected = logits(case.model, mx.array(clip)[None])
    assert np.array_equal(logits(model, mx.array(clip)[None]), expected)  # float32 saved and read back exactly
    ranked = model.predict(clip, top_k=3)  # mlx-audio's predict: [(label, probability)], best first
    assert [label for label, _ in ranked] == [case.model.labels[i] for i in np.argsort(-expected[0])[:3]]


def test_models_import_no_identify_cli_or_loading():
    """Data flows one way: nothing under models/ imports the layers built on top of it."""
    above = {"identification", "cli", "loading", "converter", "timeline", "registry"}
    found = []
    for path in (PACKAGE / "models").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [(node.module or "")] + [f"{node.module or ''}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            found += [f"{path.name}: {n}" for n in names if set(n.replace("mlx_audio_lid.", "").split(".")) & above]
    assert not found


def test_loading_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError):
        lid.load(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no supported model.*Supported: an MLX folder"):
        lid.load(tmp_path / "empty")


def test_unknown_dtype_is_refused(case):
    with pytest.raises(ValueError, match="dtype 'float8'"):
        lid.load(case.converted, dtype="float8")


@pytest.mark.parametrize("max_whole", [None, 0], ids=["whole", "windows"])
def test_kept_candidates_keep_their_full_table_ratios(case, max_whole):
    """Candidates are renormalised over one distribution, whole pass or windows' mean alike."""
    clip = speechlike_clips([int(1.2 * case.family.window * 16000)], seed=6)[0]
    full = lid.identify(case.model, clip, max_whole=max_whole, vad=SYNTHETIC_VAD)
    ranked = [label for label, _ in full.top(len(case.model.labels))]
    kept = lid.identify(case.model, clip, max_whole=max_whole, languages=[ranked[1], ranked[2], ranked[4]],
                        vad=SYNTHETIC_VAD)
    assert len(kept.probs) >= 3 and sum(kept.probs.values()) == pytest.approx(1.0, abs=1e-9)
    first, *others = kept.probs
    for label in others:
        ratio = kept.probs[label] / kept.probs[first]
        assert ratio == pytest.approx(full.probs[label] / full.probs[first], rel=1e-5), label
