"""The torch-free checkpoint reader: what torch.load(weights_only=True) gives, and nothing ever run.

Files written by torch.save are compared with torch's own reading of them, byte for byte; the
refusals are checked on hand-made pickles, so those tests need no torch.
"""

import hashlib
import os
import pickle
import re
import subprocess
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from mlx_audio_lid.torch_checkpoint import CheckpointError, load, load_state_dict

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ecapa"
FIXTURE_CHECKPOINTS = sorted(FIXTURES.glob("**/*.ckpt"))


# --- comparing with torch ---------------------------------------------------------------------

def _torch():
    return pytest.importorskip("torch", reason="the reference reading is torch.load")


def _assert_same(ours, theirs, where="root"):
    """`ours` is what torch.load gave, with numpy arrays for tensors: same types, bytes and strides."""
    torch = _torch()
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, np.ndarray), where
        reference = theirs.detach().resolve_conj().resolve_neg()
        if reference.dtype == torch.bfloat16:  # documented: widened to float32, exactly
            bits = reference.contiguous().view(torch.int16).numpy().view(np.uint16)
            assert ours.dtype == np.float32, where
            assert np.array_equal((np.ascontiguousarray(ours).view(np.uint32) >> 16).astype(np.uint16), bits), where
            assert not (np.ascontiguousarray(ours).view(np.uint32) & 0xFFFF).any(), where
            reference = reference.float()
        expected = reference.numpy()
        assert (ours.dtype, ours.shape) == (expected.dtype, expected.shape), where
        assert ours.tobytes() == expected.tobytes(), where
        if expected.size and not (theirs.is_conj() or theirs.is_neg() or theirs.dtype == torch.bfloat16):
            assert ours.strides == expected.strides, where
    elif isinstance(theirs, dict):
        assert type(ours) is type(theirs) and list(ours) == list(theirs), where
        for key in theirs:
            _assert_same(ours[key], theirs[key], f"{where}[{key!r}]")
        assert getattr(ours, "_metadata", None) == getattr(theirs, "_metadata", None), where
    elif isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs)):
            _assert_same(a, b, f"{where}[{i}]")
    else:
        assert type(ours) is type(theirs) and ours == theirs, where


def _saved(tmp_path, obj, name="saved.pt"):
    torch = _torch()
    path = tmp_path / name
    torch.save(obj, path)
    return path


def _round_trip(tmp_path, obj):
    path = _saved(tmp_path, obj)
    ours = load(path)
    _assert_same(ours, _torch().load(path, weights_only=True))
    return ours, path


def _memory_mapped(array):
    while isinstance(array, np.ndarray) and not isinstance(array, np.memmap):
        array = array.base
    return isinstance(array, np.memmap)


@pytest.mark.parametrize("path", FIXTURE_CHECKPOINTS, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_fixture_checkpoints_equal_torch_load(path):
    ours = load_state_dict(path)
    _assert_same(ours, _torch().load(path, weights_only=True))
    assert all(_memory_mapped(a) for a in ours.values())  # torch.save stores members plain


def test_fixtures_are_there():
    assert len(FIXTURE_CHECKPOINTS) == 4


def test_every_dtype(tmp_path):
    torch = _torch()
    torch.manual_seed(0)
    special = torch.tensor([0.0, -0.0, 1.5, -2.25, float("inf"), float("-inf"), float("nan"), 1e-8, 3e4])
    tensors = {str(d).replace("torch.", ""): special.to(d) for d in (torch.float64, torch.float32, torch.float16, torch.bfloat16)}
    tensors["bfloat16_random"] = torch.randn(7, 5).to(torch.bfloat16)
    for d in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.uint16, torch.uint32, torch.uint64):
        info = torch.iinfo(d)
        tensors[str(d).replace("torch.", "")] = torch.tensor([info.min, info.max, 0, 1, info.max // 3], dtype=d)
    tensors["bool"] = torch.tensor([[True, False, True], [False, False, True]])
    tensors["complex64"] = torch.randn(3, 2, dtype=torch.complex64)
    tensors["complex128"] = torch.randn(4, dtype=torch.complex128)
    tensors["scalar"] = torch.tensor(2.5)
    tensors["empty"] = torch.zeros(0, 3)
    ours, _ = _round_trip(tmp_path, tensors)
    assert ours["uint16"].dtype == np.uint16 and ours["bfloat16"].dtype == np.float32


def test_views_offsets_and_shared_storages(tmp_path):
    torch = _torch()
    base = torch.arange(60, dtype=torch.float32).reshape(6, 10)
    views = {
        "base": base,
        "transposed": base.t(),  # non-contiguous
        "stepped": base[1::2, ::3],  # strides (20, 3), offset 10
        "tail": base.view(-1)[17:],  # storage offset
        "column": base[:, 4],
        "expanded": torch.arange(3.0).expand(4, 3),  # stride 0
        "parameter": torch.nn.Parameter(torch.ones(2, 2)),
        "int_view": torch.arange(24).reshape(2, 3, 4).permute(2, 0, 1),
    }
    ours, path = _round_trip(tmp_path, views)
    assert ours["transposed"].strides == (4, 40) and not ours["transposed"].flags.c_contiguous
    assert np.shares_memory(ours["base"], ours["stepped"]) and np.shares_memory(ours["base"], ours["tail"])

    before = hashlib.sha256(path.read_bytes()).hexdigest()
    ours["base"][1, 0], ours["base"][2, 0] = -1.0, -2.0  # like torch: one storage, every view sees a write...
    assert ours["stepped"][0, 0] == -1.0 and ours["transposed"][0, 1] == -1.0 and ours["tail"][3] == -2.0
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before  # ...and the file is not changed


def test_nested_containers_and_whisper_layout(tmp_path):
    torch = _torch()
    state = OrderedDict([("encoder.conv1.weight", torch.randn(4, 3, 3)), ("decoder.ln.bias", torch.randn(4))])
    whisper_like = {"dims": {"n_mels": 80, "n_audio_ctx": 1500, "n_vocab": 51865}, "model_state_dict": state}
    ours, path = _round_trip(tmp_path, whisper_like)
    assert load_state_dict(path) is not None and list(load_state_dict(path)) == list(state)
    _assert_same(load_state_dict(path), state)

    odd = {
        "list": [torch.ones(2), [torch.zeros(1), None]],
        "tuple": (1, 2.5, "text", b"\x00\xffbytes", True),
        "set": {1, 2, 3},
        "size": torch.Size([3, 4]),
        "nested": {"deeper": {"deepest": torch.arange(5)}},
        "model": torch.nn.Linear(3, 2).state_dict(),
    }
    ours_odd = load(_saved(tmp_path, odd, "odd.pt"))
    theirs = torch.load(tmp_path / "odd.pt", weights_only=True)
    assert ours_odd["set"] == theirs["set"] and ours_odd["size"] == tuple(theirs["size"])
    for key in ("list", "tuple", "nested", "model"):
        _assert_same(ours_odd[key], theirs[key], key)


def test_dtype_kept_as_a_value_is_its_name(tmp_path):
    torch = _torch()
    assert load(_saved(tmp_path, {"dtype": torch.float16}))["dtype"] == "torch.float16"


def test_conjugate_and_negative_views(tmp_path):
    torch = _torch()
    z, w = torch.randn(3, dtype=torch.complex64), torch.randn(3, dtype=torch.complex64)
    assert w.conj().imag.is_neg()
    _round_trip(tmp_path, {"conj": z.conj(), "neg": w.conj().imag})


def test_bare_untyped_storage_is_its_bytes(tmp_path):
    torch = _torch()
    t = torch.randn(5)
    ours = load(_saved(tmp_path, {"s": t.untyped_storage()}))
    assert ours["s"].dtype == np.uint8 and ours["s"].tobytes() == t.numpy().tobytes()


def _rewrite(source, target, change):
    """Copy a zip member by member, `change(name, data) -> (data, compress_type)`."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for info in zin.infolist():
            data, compression = change(info.filename, zin.read(info))
            zout.writestr(info.filename, data, compress_type=compression)


def test_big_endian_archive(tmp_path):
    torch = _torch()
    tensors = {"f": torch.randn(3, 4), "i": torch.arange(-5, 5, dtype=torch.int64), "h": torch.randn(6).half(),
               "b": torch.randn(4).to(torch.bfloat16)}
    little = _saved(tmp_path, tensors)
    itemsize = {"0": 4, "1": 8, "2": 2, "3": 2}  # storages are keyed in the order the dict is pickled

    def to_big(name, data):
        if name.endswith("/byteorder"):
            return b"big", zipfile.ZIP_STORED
        if "/data/" in name:
            size = itemsize[name.rsplit("/", 1)[1]]
            return np.frombuffer(data, f"<u{size}").astype(f">u{size}").tobytes(), zipfile.ZIP_STORED
        return data, zipfile.ZIP_STORED

    big = tmp_path / "big.pt"
    _rewrite(little, big, to_big)
    assert (zipfile.ZipFile(big).read("saved/byteorder")) == b"big"
    _assert_same(load(big), torch.load(big, weights_only=True))
    _assert_same(load(big), torch.load(little, weights_only=True))


def test_compressed_members_are_read(tmp_path):
    torch = _torch()
    tensors = {"w": torch.randn(8, 8), "v": torch.randn(8, 8).t()}
    plain = _saved(tmp_path, tensors)
    packed = tmp_path / "packed.pt"
    _rewrite(plain, packed, lambda name, data: (data, zipfile.ZIP_DEFLATED))
    ours = load(packed)
    _assert_same(ours, torch.load(plain, weights_only=True))
    assert not _memory_mapped(ours["w"])


def test_state_dict_choice(tmp_path):
    torch = _torch()
    two = _saved(tmp_path, {"ema": {"w": torch.ones(1)}, "model": {"w": torch.zeros(1)}, "step": 3})
    with pytest.raises(CheckpointError, match=r"several entries \('ema', 'model'\).*key="):
        load_state_dict(two)
    assert load_state_dict(two, key="model")["w"][0] == 0
    with pytest.raises(CheckpointError, match="'step' is not a dict of tensors"):
        load_state_dict(two, key="step")
    with pytest.raises(CheckpointError, match="no entry"):
        load_state_dict(_saved(tmp_path, {"epoch": 1, "names": ["a"]}, "none.pt"))
    with pytest.raises(CheckpointError, match="holds a list"):
        load_state_dict(_saved(tmp_path, [torch.ones(1)], "list.pt"))


def test_formats_it_does_not_read(tmp_path):
    torch = _torch()
    legacy = tmp_path / "legacy.pt"
    torch.save({"w": torch.ones(2)}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="legacy .*pre-1.6"):
        load(legacy)
    scripted = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), scripted)
    with pytest.raises(CheckpointError, match="TorchScript"):
        load(scripted)
    with pytest.raises(CheckpointError, match=r"torch\.float8_e4m3fn tensors"):
        load(_saved(tmp_path, {"w": torch.ones(2).to(torch.float8_e4m3fn)}, "f8.pt"))
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="not a zip"):
        load(tmp_path / "text.pt")
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.pt")


def test_reads_with_torch_unimportable():
    module = Path(__file__).resolve().parents[1] / "mlx_audio_lid" / "torch_checkpoint.py"
    code = f"""
import importlib.util, sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, NoTorch())
spec = importlib.util.spec_from_file_location("torch_checkpoint", {str(module)!r})
reader = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reader)
print(len(reader.load_state_dict({str(FIXTURE_CHECKPOINTS[0])!r})), "torch" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "False"]  # commonlanguage_tiny/classifier.ckpt: one weight


# --- hand-made archives: no torch needed -------------------------------------------------------

def _archive(path, data_pkl, storages=None, root="archive"):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{root}/data.pkl", data_pkl)
        z.writestr(f"{root}/byteorder", "little")
        for key, data in (storages or {}).items():
            z.writestr(f"{root}/data/{key}", data)
    return path


def _tensor_opcodes(size, stride, offset=0, numel=4, storage="FloatStorage"):
    """`torch._utils._rebuild_tensor_v2` of a storage, written out as protocol-0 opcodes."""
    ints = lambda values: b"(" + b"".join(b"I%d\n" % v for v in values) + b"t"  # noqa: E731
    persistent_id = b"(S'storage'\nctorch\n" + storage.encode() + b"\nS'0'\nS'cpu'\nI%d\ntQ" % numel
    return (b"ctorch._utils\n_rebuild_tensor_v2\n(" + persistent_id + b"I%d\n" % offset + ints(size) + ints(stride)
            + b"I00\nccollections\nOrderedDict\n)RtR")


def _state_dict_pickle(tensor_opcodes):
    return b"ccollections\nOrderedDict\n)R(S'w'\n" + tensor_opcodes + b"u."


def test_hand_made_archive_reads_as_torch_would(tmp_path):
    data = np.arange(6, dtype="<f4")
    path = _archive(tmp_path / "hand.pt", _state_dict_pickle(_tensor_opcodes((3, 2), (1, 3), numel=6)), {"0": data.tobytes()})
    w = load_state_dict(path)["w"]
    assert np.array_equal(w, data.reshape(2, 3).T) and w.strides == (4, 12)


@pytest.mark.parametrize("opcodes, storage, message", [
    (_tensor_opcodes((2, 2), (2, 1), offset=1), 16, "reaches element 4 of 4"),
    (_tensor_opcodes((2,), (-1,)), 16, "bad view"),
    (_tensor_opcodes((2,), (1,), numel=8), 16, "holds 16 bytes, its FloatStorage needs 32"),
    (_tensor_opcodes((2,), (1,), storage="QInt8Storage"), 16, r"torch\.QInt8Storage tensors"),
    (b"ctorch._utils\n_rebuild_tensor_v2\n(S'x'\nI0\n(t(tI00\nNtR", 16, "needs a typed storage"),
    (b"(S'module'\nS'x'\ntQ", 16, "unknown persistent id"),
], ids=["out of bounds", "negative stride", "short member", "quantized", "no storage", "module pid"])
def test_malformed_tensors_are_errors(tmp_path, opcodes, storage, message):
    path = _archive(tmp_path / "bad.pt", _state_dict_pickle(opcodes), {"0": b"\x00" * storage})
    with pytest.raises(CheckpointError, match=message):
        load(path)


def test_missing_storage_member(tmp_path):
    path = _archive(tmp_path / "bad.pt", _state_dict_pickle(_tensor_opcodes((2,), (1,))))
    with pytest.raises(CheckpointError, match="archive/data/0 is missing"):
        load(path)


class _Payload:
    """Pickles as a call of `function(*args)`: what a malicious checkpoint carries."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def _payloads(marker):
    """(global the pickle names, pickled bytes) for payloads that would create `marker` if run."""
    shell = f"touch {marker}"
    payloads = [
        (f"{os.system.__module__}.system", _Payload(os.system, shell)),  # posix.system on Linux and macOS
        ("builtins.eval", _Payload(eval, f"open({str(marker)!r}, 'w')")),
        ("builtins.exec", _Payload(exec, f"open({str(marker)!r}, 'w')")),
        ("subprocess.Popen", _Payload(subprocess.Popen, ["touch", str(marker)])),
    ]
    out = []
    for name, payload in payloads:
        for protocol in (2, 4):  # GLOBAL, and STACK_GLOBAL inside frames
            out.append((name, pickle.dumps(payload, protocol=protocol)))
        # after a tensor and inside the state dict, as a tampered checkpoint would hide it
        out.append((name, pickle.dumps(OrderedDict(w=1.0, evil=payload), protocol=2)))
    out.append(("os.system", b"cos\nsystem\n(S'" + shell.encode() + b"'\ntR."))  # written by hand, protocol 0
    return out


def test_malicious_pickles_are_refused_with_the_global_named(tmp_path):
    marker = tmp_path / "marker"
    cases = _payloads(marker)
    for i, (name, data) in enumerate(cases):
        path = _archive(tmp_path / f"evil{i}.pt", data)
        with pytest.raises(CheckpointError, match=rf"refusing to load .*evil{i}\.pt: its pickle names {re.escape(name)}( \(written [\w.]+\))?,"):
            load(path)
        assert not marker.exists(), name
    assert len(cases) == 13


def test_bare_malicious_pickle_is_not_unpickled(tmp_path):
    marker = tmp_path / "marker"
    for i, (_, data) in enumerate(_payloads(marker)):
        (tmp_path / f"bare{i}.pt").write_bytes(data)
        with pytest.raises(CheckpointError, match="is not a torch.save checkpoint: (a bare pickle|not a zip)"):
            load(tmp_path / f"bare{i}.pt")
    assert not marker.exists()


@pytest.mark.parametrize("target", [b"ctorch\nFloatStorage\n", b"ctorch._utils\n_rebuild_tensor_v2\n"])
def test_pickle_cannot_change_the_readers_own_objects(tmp_path, target):
    # BUILD with slot state would setattr on the shared stand-in (say FloatStorage's dtype -> f8).
    rebuild = target + b"N(S'dtype'\nS'f8'\nd\x86b."
    with pytest.raises(CheckpointError, match="sets state"):
        load(_archive(tmp_path / "build.pt", rebuild))
    data = np.arange(2, dtype="<f4")
    good = _archive(tmp_path / "good.pt", _state_dict_pickle(_tensor_opcodes((2,), (1,), numel=2)), {"0": data.tobytes()})
    assert load_state_dict(good)["w"].dtype == np.float32
