"""``autodiff.save`` and ``autodiff.load``: state dicts as NumPy ``.npz`` files, never pickle.

``save`` writes a (nested) dict, list or tuple of tensors, arrays, numbers,
strings and None to NumPy's ``.npz`` format whatever the file's extension (so
``model.pth`` is an ``.npz`` archive), atomically (``autodiff.files.atomic_write``),
so a crash never leaves half a file.  A state dict (a flat dict of tensors) is
stored as exactly its keys, so ``numpy.load("model.pth")`` lists the weights by name
and nothing else; any other object gets one more entry, its structure (dicts,
lists, integer keys, numbers) as JSON text.

``load`` never unpickles: a file that holds Python objects is rejected with a
clear error, never executed; so is a file that is empty, truncated, corrupt, or
declares far more data than it holds.

Example::

    autodiff.save(model.state_dict(), "model.pth")
    model.load_state_dict(autodiff.load("model.pth", weights_only=True))
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import os
import stat
import zipfile
import zlib

import numpy as np

from .files import DEFAULT_MAX_EXPANSION, atomic_write, check_expansion
from .tensor import Tensor

__all__ = ["load", "save"]

_STRUCTURE_KEY = "__autodiff_structure__"
_FORMAT = "autodiff.save/1"
_KINDS = {"U": "text", "S": "bytes", "V": "raw records", "M": "dates", "m": "time spans"}
_PYTORCH_CHECKPOINT = (
    "load: {name} is a PyTorch checkpoint (a pickle inside a zip); autodiff.load never "
    "unpickles. Convert it once with PyTorch: numpy.savez(out, **{{k: v.numpy() for k, v in "
    "torch.load(path).items()}}), then autodiff.load(out)."
)


def _encode(obj, path: str, arrays: dict, where: str):
    """Turn ``obj`` into a JSON-able description; arrays go into ``arrays``."""
    if isinstance(obj, Tensor):
        key = _array_key(path, arrays)
        arrays[key] = obj.data
        return {"tensor": key, "requires_grad": bool(obj.requires_grad)}
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biufc":
            raise TypeError(
                f"save: the array at {where} has dtype {obj.dtype}; only numeric arrays can be "
                "saved (no Python objects)"
            )
        key = _array_key(path, arrays)
        arrays[key] = obj
        return {"array": key}
    if isinstance(obj, np.generic):
        obj = obj.item()
    if obj is None or isinstance(obj, (bool, int, str)):
        return {"value": obj}
    if isinstance(obj, float):
        if obj != obj or obj in (float("inf"), float("-inf")):
            return {"float": repr(obj)}
        return {"value": obj}
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(f"save: dict keys must be strings or ints, got {k!r} at {where}")
            child = f"{path}.{k}" if path else str(k)
            items.append(
                [
                    k if isinstance(k, str) else {"int": k},
                    _encode(v, child, arrays, f"{where}[{k!r}]"),
                ]
            )
        return {"dict": items}
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {
            kind: [
                _encode(v, f"{path}.{i}" if path else str(i), arrays, f"{where}[{i}]")
                for i, v in enumerate(obj)
            ]
        }
    hint = ""
    if hasattr(obj, "state_dict"):
        hint = " (save its state dict instead: autodiff.save(obj.state_dict(), f))"
    raise TypeError(
        f"save: cannot save a {type(obj).__name__} at {where}{hint}; autodiff.save writes "
        "dicts, lists and tuples of tensors, NumPy arrays, numbers, strings and None"
    )


def _array_key(path: str, arrays: dict) -> str:
    """A member name for the array at ``path``: unique, and one a zip archive keeps as is."""
    key = _storable(path or "value")
    if key == _STRUCTURE_KEY or key in arrays:
        i = 1
        while f"{key}~{i}" in arrays:
            i += 1
        key = f"{key}~{i}"
    return key


def _storable(key: str) -> str:
    # zip cuts a member name at NUL and stores names as UTF-8 (no lone surrogates)
    key = key.replace("\x00", "?")
    return key.encode("utf-8", "replace").decode("utf-8")


def _is_flat_state_dict(obj) -> bool:
    """A dict of plain tensors under keys NumPy lists as they are: saved with no structure.

    ``numpy.load`` then shows exactly the keys (``torch_model.load_state_dict`` of
    them works); anything else (nesting, numbers, arrays, ``requires_grad``, keys a
    zip archive would change) needs the structure entry to come back as saved.
    """
    if not isinstance(obj, dict) or not obj:
        return False
    for key, value in obj.items():
        if not isinstance(key, str) or key == _STRUCTURE_KEY or _storable(key) != key:
            return False
        if not isinstance(value, Tensor) or value.requires_grad:
            return False
        if key.endswith(".npy") and key[:-4] in obj:  # NumPy's names would collide
            return False
    return True


def _write_npz(file, arrays: dict) -> None:
    """NumPy's ``.npz`` layout (one ``KEY.npy`` member per array, stored), without
    ``numpy.savez``'s keyword arguments, so that no key ("file", "allow_pickle") is special."""
    zf = zipfile.ZipFile(file, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True)
    try:
        for key, array in arrays.items():
            with zf.open(key + ".npy", mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
    except BaseException:
        # An interruption (Ctrl-C, SIGTERM) inside zf.open leaves zipfile believing a
        # member is being written, and its close() would raise a ValueError in place
        # of the interruption (and again when collected).  The file is being given
        # up: forget that member, close what can be closed, and re-raise.
        zf._writing = False
        with contextlib.suppress(Exception):
            zf.close()
        raise
    zf.close()


def _decode(node, arrays):
    if "tensor" in node:
        tensor = Tensor(arrays[node["tensor"]])
        if node.get("requires_grad"):
            tensor.requires_grad_(True)
        return tensor
    if "array" in node:
        return arrays[node["array"]]
    if "value" in node:
        return node["value"]
    if "float" in node:
        return float(node["float"])
    if "dict" in node:
        return {
            (k["int"] if isinstance(k, dict) else k): _decode(v, arrays) for k, v in node["dict"]
        }
    if "list" in node:
        return [_decode(v, arrays) for v in node["list"]]
    if "tuple" in node:
        return tuple(_decode(v, arrays) for v in node["tuple"])
    raise ValueError(f"load: unknown entry {node!r} in the file's structure")


def save(
    obj, f, pickle_module=None, pickle_protocol=None, _use_new_zipfile_serialization=True
) -> None:
    """Write ``obj`` (a state dict, or nested dicts/lists of tensors, arrays and numbers)
    to ``f`` (a path or a binary file object) in NumPy's ``.npz`` format.

    A state dict (a flat dict of tensors) is stored as exactly its keys, so
    ``numpy.load(f)`` lists them and nothing else; any other object also gets a
    structure entry.  A path is written atomically (see ``autodiff.files.atomic_write``).
    ``pickle_module`` and ``pickle_protocol`` are accepted for PyTorch compatibility
    and ignored (nothing is pickled).
    """
    if _is_flat_state_dict(obj):
        arrays = {key: value.data for key, value in obj.items()}
    else:
        arrays = {}
        structure = _encode(obj, "", arrays, "the top level")
        meta = json.dumps({"format": _FORMAT, "structure": structure})
        arrays[_STRUCTURE_KEY] = np.array(meta)
    if hasattr(f, "write"):
        _write_npz(f, arrays)
        return
    with atomic_write(f) as out:
        _write_npz(out, arrays)


def load(
    f,
    map_location=None,
    pickle_module=None,
    *,
    weights_only=True,
    mmap=None,
    max_expansion: float | None = DEFAULT_MAX_EXPANSION,
    **pickle_load_args,
):
    """Read what ``save`` wrote; tensors come back as Tensors, the structure as saved.

    Never unpickles, whatever ``weights_only`` says: a file holding Python
    objects (a pickle, a PyTorch checkpoint, or an ``.npz`` with object arrays)
    raises an error.  A plain ``.npz`` from ``numpy.savez`` loads as a dict of
    tensors, which is how weights come over from PyTorch::

        numpy.savez("weights.npz", **{k: v.numpy() for k, v in torch_model.state_dict().items()})
        model.load_state_dict(autodiff.load("weights.npz"))

    A file that cannot be read raises ``RuntimeError`` naming the file and the
    cause (empty, truncated, corrupt, a pickle, not an archive, strings in place of
    numbers); nothing is allocated before the sizes are checked.  An archive whose
    arrays would be more than ``max_expansion`` times larger than the file (and
    more than 64 MiB) is refused as a likely decompression bomb: pass
    ``max_expansion=None`` for a file you trust.  ``map_location`` may be None or
    "cpu" (the only device).
    """
    if (
        map_location is not None
        and str(map_location).split(":")[0] != "cpu"
        and not callable(map_location)
        and not isinstance(map_location, dict)
    ):
        raise RuntimeError(
            f"load: autodiff computes on the CPU only; got map_location={map_location!r}"
        )
    if hasattr(f, "read"):
        name = getattr(f, "name", "<file object>")
        data = f.read()
        return _load_from(io.BytesIO(data), len(data), str(name), max_expansion)
    name = os.fspath(f)
    info = os.stat(name)  # FileNotFoundError, PermissionError name the path themselves
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(errno.EISDIR, "Is a directory", name)
    if not stat.S_ISREG(info.st_mode):
        raise RuntimeError(f"load: {name} is not a regular file (a device, pipe or socket)")
    with open(name, "rb") as file:
        return _load_from(file, info.st_size, str(name), max_expansion)


def _load_from(file, size: int, name: str, max_expansion):
    head = file.read(16)
    file.seek(0)
    if size == 0:
        raise RuntimeError(f"load: {name} is empty (0 bytes)")
    if head.startswith(np.lib.format.MAGIC_PREFIX):  # a bare .npy file: one tensor
        return Tensor(_read_npy(file, size, name))
    if head[:2] == b"PK":
        return _load_archive(file, size, name, max_expansion)
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:  # PROTO opcode
        raise RuntimeError(
            f"load: {name} holds pickled Python objects (a PyTorch checkpoint of the old "
            "format, or pickle.dump), which autodiff.load never unpickles, for safety. Save "
            "only tensors, arrays and numbers (a PyTorch checkpoint can be converted with "
            "numpy.savez, see autodiff.load's docstring)."
        )
    raise RuntimeError(
        f"load: {name} is not a file written by autodiff.save or numpy.savez (an .npz "
        f"archive): it starts with {head!r}"
    )


def _load_archive(file, size: int, name: str, max_expansion):
    try:
        archive = zipfile.ZipFile(file)
    except zipfile.BadZipFile:
        file.seek(0)
        if file.read(4) == b"PK\x03\x04":
            raise RuntimeError(
                f"load: {name} is truncated: not a complete zip archive (its central "
                "directory, at the end, is missing); save it again"
            ) from None
        raise RuntimeError(f"load: {name} is not a valid zip archive") from None
    with archive:
        members = archive.infolist()
        names = [info.filename for info in members]
        if any(n.endswith("data.pkl") for n in names):
            raise RuntimeError(_PYTORCH_CHECKPOINT.format(name=name))
        if not all(n.endswith(".npy") for n in names):
            raise RuntimeError(
                f"load: {name} is a zip archive but not an .npz written by autodiff.save or "
                f"numpy.savez (members: {names[:5]})"
            )
        check_expansion(
            f"load: {name}",
            size,
            sum(info.file_size for info in members),
            max_expansion,
            "load it with autodiff.load(path, max_expansion=None)",
        )
        arrays = {}
        for info in members:
            key = info.filename[: -len(".npy")]
            where = f"{name} (member {info.filename})"
            try:
                with archive.open(info) as member:
                    arrays[key] = _read_npy(
                        member,
                        info.file_size,
                        where,
                        _STRUCTURE_KEY if key == _STRUCTURE_KEY else None,
                    )
            except zipfile.BadZipFile as error:
                raise RuntimeError(f"load: {where} is corrupt: {error}") from None
            except (EOFError, zlib.error) as error:
                raise RuntimeError(f"load: {where} is truncated or corrupt ({error})") from None
            except NotImplementedError as error:  # an unknown compression method
                raise RuntimeError(f"load: {where} cannot be read: {error}") from None
    if _STRUCTURE_KEY not in arrays:  # a state dict, or a plain .npz written by numpy
        return {key: Tensor(value) for key, value in arrays.items()}
    try:
        meta = json.loads(str(arrays.pop(_STRUCTURE_KEY)))
        version = meta.get("format")
    except (ValueError, AttributeError) as error:
        raise RuntimeError(f"load: {name} has a malformed structure entry ({error})") from None
    if version != _FORMAT:
        raise RuntimeError(f"load: {name} was written by an unknown format {version!r}")
    try:
        return _decode(meta["structure"], arrays)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        raise RuntimeError(
            f"load: {name} has a malformed structure entry ({type(error).__name__}: {error})"
        ) from None


def _read_npy(file, stored: int, where: str, structure=None) -> np.ndarray:
    """One ``.npy`` stream of ``stored`` bytes: header first, then exactly the declared data."""
    try:
        version = np.lib.format.read_magic(file)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(file)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(file)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
        header = file.tell()
    except (ValueError, EOFError, SyntaxError) as error:
        raise RuntimeError(f"load: {where} is not a valid .npy array ({error})") from None
    if dtype.hasobject:
        raise RuntimeError(
            f"load: {where} holds Python objects (an object array), which autodiff.load never "
            "unpickles, for safety. Save only tensors, arrays and numbers."
        )
    if structure is None and dtype.kind not in "biufc":
        raise RuntimeError(
            f"load: {where} holds an array of dtype {dtype} ({_KINDS.get(dtype.kind, 'not numbers')}); "
            "tensors hold numbers only"
        )
    if structure is not None and (dtype.kind != "U" or shape != ()):
        raise RuntimeError(f"load: {where}: the structure entry is not a text (dtype {dtype})")
    declared = math.prod(shape) * dtype.itemsize
    if declared != stored - header:
        what = "truncated" if declared > stored - header else "corrupt"
        raise RuntimeError(
            f"load: {where} is {what}: its header declares shape {shape} of {dtype} "
            f"({declared} bytes), it holds {stored - header} bytes"
        )
    array = np.empty(shape, dtype=dtype, order="F" if fortran_order else "C")
    view = memoryview(array.reshape(-1, order="A").view(np.uint8)) if array.size else None
    filled = 0
    while view is not None and filled < declared:
        got = file.readinto(view[filled:])
        if not got:
            raise RuntimeError(
                f"load: {where} is truncated: {filled} of its {declared} bytes of data"
            )
        filled += got
    return array
