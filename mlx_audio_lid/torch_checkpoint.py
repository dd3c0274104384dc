"""Read PyTorch checkpoints (`torch.save` since 1.6: `.ckpt`, `.pt`, `.bin`) with numpy, without torch.

The zip archive holds `<root>/data.pkl`, a pickle that describes the objects, and one member per
storage (`<root>/data/<key>`, raw bytes, stored uncompressed and 64-byte aligned). Unpickling
calls whatever callables the pickle names, so this unpickler resolves only the globals a state
dict uses (the tensor and parameter rebuild functions, storage and dtype names,
`collections.OrderedDict`, `set`, protocol 2's `bytes`, `torch.Size`), each to a stand-in of this
module that builds an inert record, and refuses every other global with a `CheckpointError`
naming it (`posix.system`, `builtins.eval`, `subprocess.Popen`, ...) before anything is called.
The checks are those of `torch.load(weights_only=True)`'s allow-list, with no torch behind them.

Arrays come back as numpy views of their storage with the saved shape, stride and offset (views
that share a storage in torch share memory here too), in native byte order (the archive's
`byteorder` record says how the bytes were written; without one they are little-endian, as torch
assumes). Storages are memory-mapped copy-on-write where the member is stored uncompressed, which
`torch.save` always does: the arrays are writable and the file is never changed. A compressed
member is read into memory.

dtypes: every one numpy has (float16/32/64, complex64/128, int8..64, uint8..64, bool) keeps its
dtype. bfloat16 comes back as float32: widening is exact (the float32 whose top 16 bits are the
bfloat16's), MLX and numpy read it without an extension dtype, and the model loaders cast to
float32 anyway. float8 and other torch-only dtypes are refused with an error naming the dtype. A
torch dtype or storage class kept as a plain value (`torch.float16`) comes back as its name.

Legacy files (`torch.save(..., _use_new_zipfile_serialization=False)` or torch < 1.6: a bare
pickle stream) and TorchScript archives (`torch.jit.save`) are refused with an error that says so;
re-save the weights with a current torch (`torch.save(torch.load(p, weights_only=True), q)`).
"""

import _compat_pickle  # pickle's own table of Python 2 -> 3 names
import io
import pickle
import re
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

__all__ = ["CheckpointError", "load", "load_state_dict"]


class CheckpointError(ValueError):
    """The file is not a plain tensor checkpoint this reader can read without running code."""


_BFLOAT16 = "bfloat16"  # read as uint16 bits, widened to float32

# Typed storages (`torch.FloatStorage`, ...; `_rebuild_tensor_v2`) -> the dtype of their bytes.
_STORAGE_DTYPES = {
    "DoubleStorage": "f8", "FloatStorage": "f4", "HalfStorage": "f2", "BFloat16Storage": _BFLOAT16,
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?", "ComplexFloatStorage": "c8", "ComplexDoubleStorage": "c16",
}
# dtypes as `_rebuild_tensor_v3` names them (`torch.uint16`, ...), viewing an untyped storage.
_TORCH_DTYPES = {
    "float64": "f8", "float32": "f4", "float16": "f2", "bfloat16": _BFLOAT16,
    "int64": "i8", "int32": "i4", "int16": "i2", "int8": "i1",
    "uint64": "u8", "uint32": "u4", "uint16": "u2", "uint8": "u1",
    "bool": "?", "complex64": "c8", "complex128": "c16",
}
_UNTYPED = "untyped"  # torch.UntypedStorage: bytes, given a dtype by _rebuild_tensor_v3
# torch dtypes numpy has no dtype for (float8_*, float4_*, bits*, complex32, sub-byte ints), and the
# quantized storages: named in a clear error rather than the generic refusal.
_NUMPY_LACKS = re.compile(r"float8_\w+|float4_\w+|bits\w+|complex32|u?int[1-7]|\w+Storage")
# The first bytes of torch.save's legacy format: the pickled magic number 0x1950a86a20f9469cfc6c.
_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"
_ZIP_LOCAL_HEADER = 30  # bytes before a member's name in its local header (PKZIP APPNOTE 4.3.7)


def _stored(dtype: str) -> np.dtype:
    """How elements of `dtype` lie in the file."""
    return np.dtype({_BFLOAT16: "u2", _UNTYPED: "u1"}.get(dtype, dtype))


class _Inert:
    """Base of what the pickle may touch: BUILD (which sets state, even on a module-level object
    shared by later loads) is refused, and nothing of it is hashable, pickled or mutable."""

    __slots__ = ()
    __hash__ = None

    def __setstate__(self, state):
        raise CheckpointError(f"the pickle sets state on {type(self).__name__.strip('_')}, which torch.save never does")


class _StorageType(_Inert):
    """`torch.FloatStorage`, `torch.UntypedStorage`, ...: the element type of a storage's bytes."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str, dtype: str):
        self.name, self.dtype = name, dtype


class _DType(_StorageType):
    """`torch.float32`, `torch.uint16`, ...: the dtype `_rebuild_tensor_v3` views an untyped storage as."""

    __slots__ = ()


class _Function(_Inert):
    """One of this module's stand-ins for a torch function, callable by the pickle but not changeable."""

    __slots__ = ("function",)

    def __init__(self, function):
        self.function = function

    def __call__(self, *args):
        return self.function(*args)


class _Storage(_Inert):
    """One `data/<key>` member: its bytes as written, and views of them as typed elements."""

    __slots__ = ("key", "kind", "raw", "byteorder", "_typed")

    def __init__(self, key: str, kind: str, raw: np.ndarray, byteorder: str):
        self.key, self.kind, self.raw, self.byteorder, self._typed = key, kind, raw, byteorder, {}

    def typed(self, dtype: str) -> np.ndarray:
        """The bytes as native `dtype` elements, cached so that views of one storage share memory."""
        if dtype not in self._typed:
            stored = _stored(dtype).newbyteorder(self.byteorder)
            if self.raw.size % stored.itemsize:
                raise CheckpointError(f"storage {self.key}: {self.raw.size} bytes are not whole {dtype} elements")
            array = self.raw.view(stored)
            if not stored.isnative:
                array = array.astype(stored.newbyteorder("="))
            if dtype == _BFLOAT16:
                array = (array.astype(np.uint32) << 16).view(np.float32)
            self._typed[dtype] = array
        return self._typed[dtype]


class _Tensor(_Inert):
    """A tensor as the pickle describes it; made into an array once the whole pickle is read."""

    __slots__ = ("storage", "dtype", "offset", "shape", "stride", "metadata")

    def array(self) -> np.ndarray:
        data = self.storage.typed(self.dtype)
        shape, stride, offset = self.shape, self.stride, self.offset
        if len(shape) != len(stride) or min(shape + stride + (offset,), default=0) < 0:
            raise CheckpointError(f"storage {self.storage.key}: bad view shape {shape}, stride {stride}, offset {offset}")
        if 0 not in shape:
            last = offset + sum((n - 1) * s for n, s in zip(shape, stride))
            if last >= data.size:
                raise CheckpointError(
                    f"storage {self.storage.key}: view (shape {shape}, stride {stride}, offset {offset}) "
                    f"reaches element {last} of {data.size}"
                )
        itemsize = data.dtype.itemsize
        array = np.ndarray(shape, data.dtype, buffer=data, offset=0 if 0 in shape else offset * itemsize,
                           strides=tuple(s * itemsize for s in stride))
        if self.metadata.get("conj"):
            array = np.conj(array)
        if self.metadata.get("neg"):
            array = np.negative(array)
        return array


def _ints(values: Any, what: str) -> Tuple[int, ...]:
    if not isinstance(values, (tuple, list)) or not all(type(v) is int for v in values):
        raise CheckpointError(f"tensor {what} must be a tuple of ints, got {values!r}")
    return tuple(values)


def _tensor(storage: Any, offset: Any, size: Any, stride: Any, dtype: Optional[str], metadata: Any) -> _Tensor:
    if not isinstance(storage, _Storage):
        raise CheckpointError(f"a tensor's storage must be a checkpoint storage, got {type(storage).__name__}")
    if type(offset) is not int:
        raise CheckpointError(f"tensor storage offset must be an int, got {offset!r}")
    metadata = metadata or {}
    if not isinstance(metadata, dict) or not set(metadata) <= {"conj", "neg"}:
        raise CheckpointError(f"unknown tensor metadata {metadata!r} (torch writes only 'conj' and 'neg')")
    tensor = _Tensor()
    tensor.storage, tensor.dtype, tensor.offset = storage, dtype, offset
    tensor.shape, tensor.stride, tensor.metadata = _ints(size, "size"), _ints(stride, "stride"), metadata
    return tensor


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None):
    """A tensor over a typed storage (every dtype torch had before 2.1)."""
    if not isinstance(storage, _Storage) or storage.kind == _UNTYPED:
        raise CheckpointError(f"_rebuild_tensor_v2 needs a typed storage, got {storage!r}")
    return _tensor(storage, storage_offset, size, stride, storage.kind, metadata)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None):
    """A tensor over an untyped storage, with its dtype given (uint16/32/64 and newer dtypes)."""
    if not isinstance(dtype, _DType):
        raise CheckpointError(f"_rebuild_tensor_v3 needs a dtype, got {dtype!r}")
    return _tensor(storage, storage_offset, size, stride, dtype.dtype, metadata)


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
    """nn.Parameter -> its tensor (requires_grad and hooks mean nothing to an array)."""
    if not isinstance(data, _Tensor):
        raise CheckpointError(f"a parameter must wrap a tensor, got {type(data).__name__}")
    return data


def _bytes_from_latin1(text, encoding="latin1"):
    """`_codecs.encode`, as protocol 2 pickles bytes: only str -> latin-1 bytes."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise CheckpointError(f"_codecs.encode is allowed only for str -> latin1 bytes, got {encoding!r}")
    return text.encode("latin1")


def _size(dims=()):
    return tuple(_ints(dims, "torch.Size"))


_UNTYPED_STORAGE = _StorageType("UntypedStorage", _UNTYPED)
_GLOBALS: Dict[Tuple[str, str], Any] = {
    ("collections", "OrderedDict"): _Function(OrderedDict),
    ("builtins", "set"): _Function(set),
    ("_codecs", "encode"): _Function(_bytes_from_latin1),
    ("torch", "Size"): _Function(_size),
    ("torch._utils", "_rebuild_tensor_v2"): _Function(_rebuild_tensor_v2),
    ("torch._utils", "_rebuild_tensor_v3"): _Function(_rebuild_tensor_v3),
    ("torch._utils", "_rebuild_parameter"): _Function(_rebuild_parameter),
    ("torch._utils", "_rebuild_parameter_with_state"): _Function(_rebuild_parameter),
    ("torch", "UntypedStorage"): _UNTYPED_STORAGE,
    ("torch.storage", "UntypedStorage"): _UNTYPED_STORAGE,
    **{("torch", name): _StorageType(name, dtype) for name, dtype in _STORAGE_DTYPES.items()},
    **{("torch", name): _DType(name, dtype) for name, dtype in _TORCH_DTYPES.items()},
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: "_Archive"):
        super().__init__(io.BytesIO(data))
        self._archive = archive

    def find_class(self, module: str, name: str):
        # Every global the pickle names (GLOBAL, STACK_GLOBAL, INST, OBJ, EXT*) comes through here.
        # Protocol 2 (torch.save's) writes Python 2 names (`__builtin__.set`, `commands.Popen`): read
        # them as pickle's fix_imports does, so that the check and the error see the real global.
        written = f"{module}.{name}"
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) in _GLOBALS:
            return _GLOBALS[(module, name)]
        if module == "torch" and _NUMPY_LACKS.fullmatch(name):
            raise CheckpointError(f"it holds torch.{name} tensors, which this reader does not support (numpy has no such dtype)")
        as_written = "" if written == f"{module}.{name}" else f" (written {written})"
        raise CheckpointError(
            f"its pickle names {module}.{name}{as_written}, which is not a tensor, storage or plain "
            "container (this reader never runs code from a checkpoint)"
        )

    def persistent_load(self, pid):
        # torch.save's zip format: ('storage', storage type, key, location, numel)
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and type(pid[1]) is _StorageType
                and isinstance(pid[2], str) and type(pid[4]) is int and pid[4] >= 0):
            raise CheckpointError(f"unknown persistent id {pid!r} (torch.save writes storages only)")
        return self._archive.storage(pid[2], pid[1], pid[4])


class _Archive:
    def __init__(self, path: Path, archive: zipfile.ZipFile):
        self.path, self.zip = path, archive
        roots = [n[: -len("data.pkl")] for n in archive.namelist() if n.endswith("data.pkl") and n.count("/") == 1]
        if len(roots) != 1:
            raise CheckpointError(f"{path}: a torch.save archive has one <root>/data.pkl, found {len(roots)}")
        self.root = roots[0]
        if self.root + "constants.pkl" in archive.namelist():
            raise CheckpointError(f"{path} is a TorchScript archive (torch.jit.save), not a torch.save checkpoint")
        order = self._read_optional("byteorder", b"little")
        if order not in (b"little", b"big"):
            raise CheckpointError(f"{path}: unknown byteorder record {order!r}")
        self.byteorder = "<" if order == b"little" else ">"
        self.storages: Dict[str, _Storage] = {}
        self._mapped: Optional[np.ndarray] = None  # the whole file, mapped once for every storage

    def _read_optional(self, name: str, default: bytes) -> bytes:
        try:
            return self.zip.read(self.root + name).strip()
        except KeyError:
            return default

    def pickle(self) -> bytes:
        return self.zip.read(self.root + "data.pkl")

    def storage(self, key: str, kind: _StorageType, numel: int) -> _Storage:
        if key not in self.storages:
            member = f"{self.root}data/{key}"
            try:
                info = self.zip.getinfo(member)
            except KeyError:
                raise CheckpointError(f"the pickle names storage {key}, but {member} is missing") from None
            nbytes = numel * _stored(kind.dtype).itemsize
            if info.file_size != nbytes:
                raise CheckpointError(f"{member} holds {info.file_size} bytes, its {kind.name} needs {nbytes}")
            self.storages[key] = _Storage(key, kind.dtype, self._bytes(info), self.byteorder)
        return self.storages[key]

    def _bytes(self, info: zipfile.ZipInfo) -> np.ndarray:
        """A member's bytes: memory-mapped copy-on-write when stored plain, else read into memory."""
        if info.file_size == 0:
            return np.empty(0, np.uint8)
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:  # compressed or encrypted
            return np.frombuffer(bytearray(self.zip.read(info)), np.uint8)
        if self._mapped is None:
            self._mapped = np.memmap(self.path, dtype=np.uint8, mode="c")  # copy-on-write: writable, file unchanged
        header = bytes(self._mapped[info.header_offset : info.header_offset + _ZIP_LOCAL_HEADER])
        if len(header) < _ZIP_LOCAL_HEADER or header[:4] != b"PK\x03\x04":
            raise CheckpointError(f"bad zip local header for {info.filename}")
        # The data follows the local header's own name and extra field, which may differ from the central directory's.
        start = info.header_offset + _ZIP_LOCAL_HEADER + int.from_bytes(header[26:28], "little") + int.from_bytes(header[28:30], "little")
        if start + info.file_size > self._mapped.size:
            raise CheckpointError(f"{info.filename} runs past the end of the file")
        return self._mapped[start : start + info.file_size]


def _open(path: Path) -> zipfile.ZipFile:
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if zipfile.is_zipfile(path):
        return zipfile.ZipFile(path)
    with open(path, "rb") as f:
        start = f.read(len(_LEGACY_MAGIC))
    if start == _LEGACY_MAGIC:
        raise CheckpointError(
            f"{path} is in PyTorch's legacy (pre-1.6, non-zip) format, which this reader does not read; "
            "re-save it with torch >= 1.6: torch.save(torch.load(path, weights_only=True), new_path)"
        )
    what = "a bare pickle, which is not read (unpickling it could run code)" if start[:1] == b"\x80" else "not a zip archive"
    raise CheckpointError(f"{path} is not a torch.save checkpoint: {what}")


def _arrays(obj: Any, seen: Dict[int, Any]) -> Any:
    """The unpickled tree with every tensor record made an array; containers are updated in place."""
    if isinstance(obj, _Tensor):
        return obj.array()
    if isinstance(obj, _Storage):
        return obj.typed(obj.kind)  # a bare storage: its elements (bytes for an UntypedStorage)
    if isinstance(obj, _StorageType):
        return f"torch.{obj.name}"  # a dtype or storage class kept as a value: its name
    if isinstance(obj, _Inert):
        raise CheckpointError(f"the pickle keeps one of torch's functions as a value ({obj!r}), not data")
    if id(obj) in seen:  # a container met before (shared or cyclic)
        return seen[id(obj)]
    if isinstance(obj, tuple):
        seen[id(obj)] = obj  # a tuple inside itself goes through a list or dict, which is filled in place
        converted = tuple(_arrays(item, seen) for item in obj)
        seen[id(obj)] = converted
        return converted
    seen[id(obj)] = obj
    if isinstance(obj, list):
        obj[:] = [_arrays(item, seen) for item in obj]
    elif isinstance(obj, dict):
        for key, value in obj.items():
            obj[key] = _arrays(value, seen)
        for key, value in vars(obj).items() if hasattr(obj, "__dict__") else ():  # OrderedDict._metadata
            setattr(obj, key, _arrays(value, seen))
    return obj


def load(path: Union[str, Path]) -> Any:
    """Everything a torch.save checkpoint holds: its containers, with numpy arrays for its tensors."""
    path = Path(path)
    with _open(path) as archive:
        source = _Archive(path, archive)
        try:
            return _arrays(_Unpickler(source.pickle(), source).load(), {})
        except CheckpointError as error:
            raise CheckpointError(f"refusing to load {path}: {error}") from None
        except RecursionError:
            raise CheckpointError(f"{path}: its containers nest too deeply to be a checkpoint") from None
        except Exception as error:  # a malformed pickle: UnpicklingError, EOFError, TypeError, ...
            raise CheckpointError(f"{path}: cannot read its pickle ({type(error).__name__}: {error})") from error


def _is_state_dict(obj: Any) -> bool:
    return (isinstance(obj, dict) and bool(obj) and all(isinstance(k, str) for k in obj)
            and all(isinstance(v, np.ndarray) for v in obj.values()))


def load_state_dict(path: Union[str, Path], key: Optional[str] = None) -> Dict[str, np.ndarray]:
    """The flat name -> array dict of a checkpoint.

    That is the file itself when it is one (`torch.save(model.state_dict())`), else its one entry
    that is (openai-whisper's `{"dims": ..., "model_state_dict": ...}`, Lightning's `state_dict`);
    `key` picks the entry where several are.
    """
    tree = load(path)
    if key is None and _is_state_dict(tree):
        return tree
    if not isinstance(tree, dict):
        raise CheckpointError(f"{path} holds a {type(tree).__name__}, not a dict of tensors")
    if key is not None:
        if not _is_state_dict(tree.get(key)):
            raise CheckpointError(f"{path}: entry {key!r} is not a dict of tensors; its entries are {list(tree)}")
        return tree[key]
    found = [k for k, v in tree.items() if _is_state_dict(v)]
    if len(found) != 1:
        what = "no entry" if not found else f"several entries ({', '.join(map(repr, found))})"
        raise CheckpointError(
            f"{path}: {what} of its top-level dict is a dict of tensors (entries: {', '.join(map(repr, tree))}); "
            "pass key= to choose one"
        )
    return tree[found[0]]
