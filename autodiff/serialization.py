"""``autodiff.save`` and ``autodiff.load``: state dicts as NumPy ``.npz`` files, never pickle.

``save`` writes a (nested) dict, list or tuple of tensors, arrays, numbers,
strings and None to NumPy's ``.npz`` format whatever the file's extension (so
``model.pth`` is an ``.npz`` archive), through a temporary file in the same
directory renamed over the target, so a crash never leaves half a file.  Each
array is stored under its key path (``"linear_relu_stack.0.weight"``), so
``numpy.load("model.pth")`` lists the weights by name; the structure (dicts,
lists, integer keys, numbers) is kept as a JSON text entry.

``load`` reads with ``allow_pickle=False``: a file that holds Python objects is
rejected with a clear error, never executed.

Example::

    autodiff.save(model.state_dict(), "model.pth")
    model.load_state_dict(autodiff.load("model.pth", weights_only=True))
"""

from __future__ import annotations

import io
import json
import os

import numpy as np

from .files import atomic_write
from .tensor import Tensor

__all__ = ["load", "save"]

_STRUCTURE_KEY = "__autodiff_structure__"
_FORMAT = "autodiff.save/1"
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
    key = path or "value"
    if key == _STRUCTURE_KEY or key in arrays:
        i = 1
        while f"{key}~{i}" in arrays:
            i += 1
        key = f"{key}~{i}"
    return key


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

    A path is written atomically: a temporary file in the same directory is
    renamed over it.  ``pickle_module`` and ``pickle_protocol`` are accepted for
    PyTorch compatibility and ignored (nothing is pickled).
    """
    arrays: dict = {}
    structure = _encode(obj, "", arrays, "the top level")
    meta = json.dumps({"format": _FORMAT, "structure": structure})
    arrays[_STRUCTURE_KEY] = np.array(meta)
    if hasattr(f, "write"):
        np.savez(f, **arrays)
        return
    with atomic_write(f) as out:
        np.savez(out, **arrays)


def load(
    f, map_location=None, pickle_module=None, *, weights_only=True, mmap=None, **pickle_load_args
):
    """Read what ``save`` wrote; tensors come back as Tensors, the structure as saved.

    Never unpickles, whatever ``weights_only`` says: a file holding Python
    objects (a pickle, a PyTorch checkpoint, or an ``.npz`` with object arrays)
    raises an error.  A plain ``.npz`` from ``numpy.savez`` loads as a dict of
    tensors, which is how weights come over from PyTorch::

        numpy.savez("weights.npz", **{k: v.numpy() for k, v in torch_model.state_dict().items()})
        model.load_state_dict(autodiff.load("weights.npz"))
    ``map_location`` may be None or "cpu" (the only device).
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
    name = f if not hasattr(f, "read") else getattr(f, "name", "<file object>")
    data = f.read() if hasattr(f, "read") else None
    source = io.BytesIO(data) if data is not None else os.fspath(f)
    try:
        archive = np.load(source, allow_pickle=False)
    except ValueError as error:
        raise _not_ours(name, error) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):  # a bare .npy file
        if archive.dtype.kind not in "biufc":
            raise RuntimeError(f"load: {name} holds an array of dtype {archive.dtype}, not numbers")
        return Tensor(archive)
    with archive:
        members = archive.zip.namelist()
        if any(member.endswith("data.pkl") for member in members):
            raise RuntimeError(_PYTORCH_CHECKPOINT.format(name=name))
        if not all(member.endswith(".npy") for member in members):
            raise RuntimeError(
                f"load: {name} is a zip archive but not an .npz written by autodiff.save or "
                f"numpy.savez (members: {members[:5]})"
            )
        try:
            arrays = {key: archive[key] for key in archive.files}
        except ValueError as error:
            raise RuntimeError(
                f"load: {name} holds Python objects (object arrays), which autodiff.load never "
                f"unpickles, for safety ({error}). Save only tensors, arrays and numbers."
            ) from None
    if _STRUCTURE_KEY not in arrays:  # a plain .npz written by numpy: a dict of tensors
        return {key: Tensor(value) for key, value in arrays.items()}
    meta = json.loads(str(arrays.pop(_STRUCTURE_KEY)))
    if meta.get("format") != _FORMAT:
        raise RuntimeError(f"load: {name} was written by an unknown format {meta.get('format')!r}")
    return _decode(meta["structure"], arrays)


def _not_ours(name, error):
    message = str(error)
    if "pickle" in message.lower():
        return RuntimeError(
            f"load: {name} holds pickled Python objects, which autodiff.load never unpickles "
            "for safety. Save only tensors, arrays and numbers (a PyTorch "
            "checkpoint can be converted with numpy.savez, see autodiff.load's docstring)."
        )
    return RuntimeError(
        f"load: {name} is not a file written by autodiff.save (an .npz archive): {message}"
    )
