"""Datasets and batching, as ``torch.utils.data``: ``Dataset``, ``TensorDataset``, ``DataLoader``.

A ``Dataset`` answers ``len(ds)`` and ``ds[i]`` (one sample, e.g. ``(image, label)``).
A ``DataLoader`` draws indices from a sampler (in order, or shuffled with a seeded
generator), groups them into batches and collates each batch's samples into
tensors (``default_collate`` stacks tensors and arrays along a new first
dimension and turns numbers into 1-d tensors).

    >>> ds = TensorDataset(autodiff.arange(10.0).reshape(5, 2), autodiff.arange(5))
    >>> loader = DataLoader(ds, batch_size=2, shuffle=True)
    >>> len(loader)                                   # ceil(5 / 2) batches
    3
    >>> X, y = next(iter(loader))
    >>> X.shape, y.shape
    ((2, 2), (2,))

Fast path: when the collate function is the default and the dataset is backed by
arrays (``TensorDataset``, ``Subset`` of one, and the image datasets of
``nn.datasets`` whose transform is batchable), a batch is gathered with one fancy
index ``array[indices]`` and transformed in one vectorised call instead of one
Python call per sample; the numbers are the same as on the per-sample path. Only
integer indices take it: as in PyTorch, whatever else a sampler yields (strings for a
dataset keyed by name, floats) goes to ``dataset[key]`` as it is.
"""

from __future__ import annotations

import bisect
import collections.abc
import copy
import itertools
import math
import warnings
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

import autodiff
from autodiff import Tensor, constant
from autodiff.random import Generator, numpy_rng

__all__ = [
    "BatchSampler",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "IterableDataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "Subset",
    "SubsetRandomSampler",
    "TensorDataset",
    "default_collate",
    "default_convert",
    "random_split",
]


# -- datasets -------------------------------------------------------------------------------
class Dataset:
    """A map-style dataset: subclasses define ``__getitem__(index)`` and ``__len__()``.

    ``ds1 + ds2`` concatenates two datasets.
    """

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__(index)")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])

    # The fast path: subclasses backed by arrays return an already collated batch for an
    # int64 index array, or None when they cannot (the DataLoader then goes sample by sample).
    def _fetch_batch(self, indices: np.ndarray):
        return None


def _batch_method(dataset):
    """The dataset's ``__getitems__`` (PyTorch's batch protocol) or None, read as PyTorch's
    fetcher reads it: an attribute that is None (or otherwise false) means none."""
    getitems = getattr(dataset, "__getitems__", None)
    return getitems if getitems else None


class IterableDataset(Dataset):
    """A dataset that is a stream: subclasses define ``__iter__`` (no indexing, no shuffling)."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__()")

    def __add__(self, other):
        raise TypeError("IterableDataset: concatenation with + is not supported")


class TensorDataset(Dataset):
    """Samples are the rows of tensors that share their first dimension.

    ``TensorDataset(X, y)[i] == (X[i], y[i])``.
    """

    def __init__(self, *tensors: Tensor):
        if not tensors:
            raise ValueError("TensorDataset: expected at least one tensor")
        tensors = tuple(t if isinstance(t, Tensor) else autodiff.as_tensor(t) for t in tensors)
        sizes = [t.shape[0] if t.ndim else None for t in tensors]
        if any(s is None for s in sizes) or len(set(sizes)) != 1:
            shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
            raise ValueError(
                f"TensorDataset: size mismatch between tensors: all tensors must have the same "
                f"size in the first dimension, got shapes {shapes}"
            )
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(tensor[index] for tensor in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def _fetch_batch(self, indices):
        if any(t.requires_grad for t in self.tensors) and autodiff.is_grad_enabled():
            return None  # the per-sample path keeps the graph to the tensors
        if type(self).__getitem__ is not TensorDataset.__getitem__ or _batch_method(self):
            return None  # a subclass that changes how samples are read is asked itself
        return [constant(t.data[indices]) for t in self.tensors]


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset: Dataset, indices: Sequence[int]):
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, index):
        if isinstance(index, list):
            return self.dataset[[self.indices[i] for i in index]]
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitems__(self, indices):
        """Samples at ``indices``, through the dataset's own ``__getitems__`` if it has one (as PyTorch)."""
        getitems = getattr(self.dataset, "__getitems__", None)
        if callable(getitems):
            return getitems([self.indices[i] for i in indices])
        return [self.dataset[self.indices[i]] for i in indices]

    def _fetch_batch(self, indices):
        fetch = getattr(self.dataset, "_fetch_batch", None)
        if fetch is None or type(self).__getitem__ is not Subset.__getitem__:
            return None
        getitems = _batch_method(self)
        if getitems is not None and getattr(getitems, "__func__", None) is not Subset.__getitems__:
            return None  # a subclass's own __getitems__ reads its batches
        if isinstance(self.indices, (np.ndarray, Tensor)):
            keys = np.asarray(self.indices)[indices]
        else:  # this batch's keys only, not the whole list each time
            keys = [self.indices[i] for i in indices.tolist()]
        keys = _integer_indices(keys)
        return None if keys is None else fetch(keys)


class ConcatDataset(Dataset):
    """The samples of several datasets one after the other."""

    def __init__(self, datasets: Iterable[Dataset]):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset: does not support IterableDataset")
        self.cumulative_sizes = list(np.cumsum([len(d) for d in self.datasets]).tolist())

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index):
        """The sample at ``index`` of the concatenation, as PyTorch finds it: a negative
        index counts from the end (``ValueError`` past the start, as PyTorch), and the
        index goes on to the dataset that holds it minus that dataset's start, whatever
        its type (a float key is that dataset's to accept or refuse)."""
        size = len(self)
        try:
            negative = index < 0
        except TypeError:
            raise TypeError(
                f"ConcatDataset: index must be a number, got {type(index).__name__} {index!r}"
            ) from None
        if negative:
            if -index > size:
                raise ValueError(
                    "ConcatDataset: absolute value of index should not exceed dataset length: "
                    f"got index {index} for a dataset of {size} samples"
                )
            index = size + index
        which = bisect.bisect_right(self.cumulative_sizes, index)
        if which == len(self.datasets):
            raise IndexError(
                f"ConcatDataset: index {index} is out of range for a dataset of {size} samples"
            )
        return self.datasets[which][index - self.cumulative_sizes[which - 1] if which else index]


def _check_index(index, size: int, owner: str) -> int:
    """A Python int in ``[0, size)`` from an int, NumPy integer or 0-d tensor (negatives wrap).

    As indexing the tensor that holds a torchvision dataset's images: a float (or a
    float tensor) raises ``IndexError``, another type (a string, a bool) ``TypeError``.
    """
    if isinstance(index, Tensor):
        if index.dtype.kind in "fc":
            raise IndexError(
                f"{owner}: only integers are valid indices, got a tensor of dtype {index.dtype} "
                f"and shape {index.shape}"
            )
        if index.numel() != 1 or index.dtype.kind not in "iu":
            raise TypeError(
                f"{owner}: index must be an integer, got a tensor of dtype {index.dtype} and "
                f"shape {index.shape}"
            )
        index = index.item()
    if isinstance(index, (float, complex, np.inexact)):
        raise IndexError(
            f"{owner}: only integers are valid indices, got {type(index).__name__} {index!r}"
        )
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise TypeError(f"{owner}: index must be an integer, got {type(index).__name__}")
    index = int(index)
    if not -size <= index < size:
        raise IndexError(f"{owner}: index {index} is out of range for a dataset of {size} samples")
    return index % size


def _integer_indices(keys):
    """``keys`` as a 1-d int64 array when they are all integers (a list, tuple, range,
    array or tensor of them), for the fast path's one fancy index; None otherwise.

    Other keys (strings, floats, bools, ...) are not converted: as in PyTorch, each goes
    to ``dataset[key]`` as the sampler gave it, and the dataset decides what it means.
    """
    if isinstance(keys, Tensor):
        keys = keys.data
    if isinstance(keys, range):
        return np.arange(keys.start, keys.stop, keys.step, dtype=np.int64)
    if isinstance(keys, np.ndarray):
        integers = keys.ndim == 1 and keys.dtype.kind in "iu"
    else:
        integers = isinstance(keys, (list, tuple)) and all(
            type(key) is int or isinstance(key, np.integer) for key in keys
        )
    if not integers:
        return None
    try:
        return np.asarray(keys, dtype=np.int64)
    except OverflowError:  # past int64: the dataset's own error
        return None


# -- samplers --------------------------------------------------------------------------------
class Sampler:
    """Yields dataset indices; ``DataLoader`` groups them into batches."""

    def __init__(self, data_source=None):
        pass

    def __iter__(self) -> Iterator[int]:
        raise NotImplementedError


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)

    def _index_array(self):
        return np.arange(len(self.data_source), dtype=np.int64)


def _epoch_rng(generator) -> np.random.Generator:
    """The NumPy generator for one epoch: ``generator``'s, or a fresh one seeded from
    autodiff's global generator (so ``autodiff.manual_seed`` fixes every shuffle)."""
    if generator is not None:
        return numpy_rng(generator)
    seed = int(numpy_rng(None).integers(0, 2**63 - 1))
    return np.random.default_rng(seed)


class RandomSampler(Sampler):
    """A random permutation of the indices each epoch (or ``num_samples`` draws with replacement).

    Seeded by ``generator`` (an ``autodiff.Generator``) or by ``autodiff.manual_seed``.
    """

    def __init__(self, data_source, replacement: bool = False, num_samples=None, generator=None):
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if not isinstance(replacement, bool):
            raise TypeError(f"RandomSampler: replacement should be a boolean, got {replacement!r}")
        if not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ValueError(
                f"RandomSampler: num_samples should be a positive integer, got {self.num_samples!r}"
            )

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def _index_array(self) -> np.ndarray:
        rng = _epoch_rng(self.generator)
        n = len(self.data_source)
        if self.replacement:
            return rng.integers(0, n, size=self.num_samples, dtype=np.int64)
        reps = -(-self.num_samples // n)
        return np.concatenate([rng.permutation(n) for _ in range(reps)])[: self.num_samples]

    def __iter__(self):
        return iter(self._index_array().tolist())

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices in a random order each epoch, each as it was given (as in
    PyTorch, keys that are not integers, such as strings, go to ``dataset[key]``)."""

    def __init__(self, indices: Sequence[int], generator=None):
        self.indices = indices
        self.generator = generator

    def _index_array(self):
        indices = _integer_indices(self.indices)
        if indices is None:
            return None  # not integers: __iter__ yields them as they are
        return indices[_epoch_rng(self.generator).permutation(len(indices))]

    def __iter__(self):
        order = _epoch_rng(self.generator).permutation(len(self.indices))
        return (self.indices[i] for i in order.tolist())

    def __len__(self) -> int:
        return len(self.indices)


def _index_array_of(sampler):
    """The sampler's epoch of indices as one int64 array, when it is one of ours over
    integers (None otherwise): a subclass with its own ``__iter__`` decides the order
    itself."""
    index_array = getattr(sampler, "_index_array", None)
    if index_array is None:
        return None
    iterates = next(cls for cls in type(sampler).__mro__ if "__iter__" in cls.__dict__)
    return index_array() if "_index_array" in iterates.__dict__ else None


class BatchSampler(Sampler):
    """Groups the indices of ``sampler`` into lists of ``batch_size`` (the last may be short)."""

    def __init__(self, sampler, batch_size: int, drop_last: bool):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(
                f"BatchSampler: batch_size should be a positive integer value, got {batch_size!r}"
            )
        if not isinstance(drop_last, bool):
            raise ValueError(
                f"BatchSampler: drop_last should be a boolean value, got {drop_last!r}"
            )
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def _index_batches(self) -> Iterator[np.ndarray | list]:
        """Batches as int64 arrays when the sampler is one of ours over integers (one array
        op instead of a Python list per batch); otherwise lists of whatever the sampler
        yields, unchanged, as PyTorch's BatchSampler makes them."""
        indices = _index_array_of(self.sampler)
        if indices is None:
            keys = iter(self.sampler)
            while batch := list(itertools.islice(keys, self.batch_size)):
                if self.drop_last and len(batch) < self.batch_size:
                    return
                yield batch
            return
        stop = len(indices)
        if self.drop_last:
            stop -= stop % self.batch_size
        for start in range(0, stop, self.batch_size):
            yield indices[start : start + self.batch_size]

    def __iter__(self):
        for batch in self._index_batches():
            yield batch.tolist() if isinstance(batch, np.ndarray) else batch

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


# -- collation ------------------------------------------------------------------------------
def _stack_tensors(tensors: list, op: str) -> Tensor:
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        first = tensors[0].shape
        bad = next(i for i, t in enumerate(tensors) if t.shape != first)
        raise RuntimeError(
            f"{op}: stack expects each tensor to be equal size, but got {first} at entry 0 "
            f"and {tensors[bad].shape} at entry {bad} (pass a collate_fn to batch samples of "
            "different shapes)"
        )
    if autodiff.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return autodiff.stack(tensors)
    return constant(np.stack([t.data for t in tensors]))


def default_collate(batch: list):
    """Put a list of samples together into a batch, as PyTorch's ``default_collate``.

    - tensors -> one tensor stacked along a new first dimension;
    - NumPy arrays -> a stacked tensor (dtype kept); a batch that starts with a NumPy
      number or bool -> ``torch.as_tensor(batch)``'s dtype, promoted over the elements as
      PyTorch does (``[np.int64(1), 2.5]`` -> float32, ``[np.int8(1), np.uint8(2)]`` ->
      int16, ``[np.float32(1), np.float64(2)]`` -> float64);
    - Python floats -> a float64 tensor; a batch that starts with an int or a bool ->
      ``autodiff.tensor(batch)`` (int64, bool, or float32 when a float follows);
    - strings and bytes (NumPy's too) -> the batch as it is (strings in the same field
      of tuples or lists come back as a tuple, as in PyTorch);
    - mappings -> a mapping of the same type (an ``OrderedDict`` stays one) of collated
      values per key; tuples -> a list of collated fields; namedtuples, lists and other
      sequences keep their type (see ``_like``).

    ``default_collate([(x0, 0), (x1, 1)]) == [stack([x0, x1]), tensor([0, 1])]``
    """
    if not batch:  # PyTorch's IndexError, from reading batch[0]
        raise IndexError(
            f"default_collate: got an empty batch ({batch!r}); expected at least one sample"
        )
    elem = batch[0]
    if isinstance(elem, Tensor):
        return _stack_tensors(batch, "default_collate")
    if isinstance(elem, np.ndarray):
        if elem.dtype.kind in "OUSV":
            raise TypeError(
                f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or "
                f"lists; found a numpy array of dtype {elem.dtype}"
            )
        return _stack_tensors([autodiff.as_tensor(a) for a in batch], "default_collate")
    if isinstance(elem, (np.bool_, np.number)):  # (NumPy strings are strings, below)
        # torch.as_tensor(batch): [np.int64(1), 2.5] is float32 there, not NumPy's float64
        return autodiff.as_tensor(batch)  # TypeError for timedelta64, as PyTorch
    if isinstance(elem, int):  # bools too: the dtype comes from every element, as
        # torch.tensor(batch) in PyTorch ([1, 2.5] -> float32, [True, 2] -> int64)
        return autodiff.tensor(batch)
    if isinstance(elem, float):
        return constant(np.array(batch, dtype=np.float64))
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        return _like(
            elem, {key: default_collate([sample[key] for sample in batch]) for key in elem}
        )
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(default_collate(field) for field in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if any(len(sample) != size for sample in batch):
            raise RuntimeError(
                "default_collate: each element in list of batch should be of equal size"
            )
        fields = [default_collate(field) for field in zip(*batch)]
        return fields if isinstance(elem, tuple) else _like(elem, fields)
    raise TypeError(
        f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
        f"found {type(elem).__name__}"
    )


def default_convert(data):
    """Convert NumPy arrays and scalars in a sample to tensors (used when ``batch_size=None``).

    As PyTorch's ``default_convert``: a NumPy array becomes a tensor of its dtype and a
    NumPy scalar a 0-d one (``np.float32(1.5)`` -> ``tensor(1.5)``, float32); arrays of
    strings or objects, NumPy strings, Python numbers and tensors stay as they are;
    containers are converted element by element, tuples into lists, and mappings,
    namedtuples, lists and other sequences keep their type (see ``_like``).

        >>> default_convert({"x": np.ones(2), "y": np.int64(3)})
        {'x': tensor([1., 1.], dtype=float64), 'y': tensor(3)}
    """
    if isinstance(data, Tensor):
        return data
    # NumPy's own types, told apart by their module as PyTorch does (a masked array,
    # from numpy.ma, stays as it is); NumPy strings are strings
    if type(data).__module__ == "numpy" and not isinstance(data, str):
        if isinstance(data, np.ndarray) and data.dtype.kind in "OUSV":
            return data
        return autodiff.as_tensor(data)
    if isinstance(data, collections.abc.Mapping):
        return _like(data, {key: default_convert(value) for key, value in data.items()})
    if isinstance(data, tuple) and hasattr(data, "_fields"):  # namedtuple
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        return _like(data, [default_convert(d) for d in data])
    return data


def _like(container, values):
    """``values`` (a dict or a list) in a container of ``container``'s type, as PyTorch's
    collation keeps it: a mutable mapping or sequence is copied and refilled (so an
    ``OrderedDict``, a ``defaultdict`` or a list subclass keeps its type and attributes),
    another type is called with the dict or list, and a type that allows neither (a
    ``TypeError``, e.g. ``range``) gives the dict or list itself."""
    try:
        if isinstance(container, collections.abc.MutableMapping):
            clone = copy.copy(container)
            clone.update(values)
            return clone
        if isinstance(container, collections.abc.MutableSequence):
            clone = copy.copy(container)
            for i, value in enumerate(values):
                clone[i] = value
            return clone
        return type(container)(values)
    except TypeError:
        return values


# -- the loader -----------------------------------------------------------------------------
class DataLoader:
    """Iterate over a dataset in batches: ``for X, y in DataLoader(ds, batch_size=64): ...``.

    Arguments as in PyTorch: ``batch_size`` (``None`` yields single samples),
    ``shuffle`` (a new seeded permutation each epoch), ``sampler`` / ``batch_sampler``
    (custom index order), ``collate_fn`` (``default_collate``), ``drop_last`` (drop a
    short last batch), ``generator`` (an ``autodiff.Generator`` for the shuffling).
    ``num_workers``, ``pin_memory``, ``timeout``, ``prefetch_factor`` and
    ``persistent_workers`` are accepted and ignored: batches are loaded in the
    main process (NumPy needs no worker processes for in-memory data).

    ``len(loader)`` is the number of batches: ``ceil(len(dataset) / batch_size)``, or
    ``floor`` with ``drop_last=True``.
    """

    def __init__(
        self,
        dataset,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler=None,
        batch_sampler=None,
        num_workers: int = 0,
        collate_fn=None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn=None,
        multiprocessing_context=None,
        generator: Generator | None = None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        in_order: bool = True,
    ):
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(
                "DataLoader: num_workers option should be non-negative; use num_workers=0 to "
                f"disable multiprocessing (got {num_workers!r})"
            )
        if timeout < 0:
            raise ValueError("DataLoader: timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError(
                "DataLoader: prefetch_factor option could only be specified in multiprocessing; "
                "let num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor "
                "to None"
            )
        if num_workers == 0 and persistent_workers:
            raise ValueError("DataLoader: persistent_workers option needs num_workers > 0")
        self.dataset = dataset
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers
        self.generator = generator
        self._iterable = isinstance(dataset, IterableDataset)

        if self._iterable:
            if shuffle not in (None, False):
                raise ValueError(
                    f"DataLoader with IterableDataset: expected unspecified shuffle option, but "
                    f"got shuffle={shuffle}"
                )
            if sampler is not None or batch_sampler is not None:
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified sampler and "
                    "batch_sampler options"
                )
        else:
            if sampler is not None and shuffle:
                raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
            if batch_sampler is not None:
                if batch_size != 1 or shuffle or sampler is not None or drop_last:
                    raise ValueError(
                        "DataLoader: batch_sampler option is mutually exclusive with batch_size, "
                        "shuffle, sampler, and drop_last"
                    )
                batch_size = None
                drop_last = False
            elif batch_size is None and drop_last:
                raise ValueError(
                    "DataLoader: batch_size=None option disables auto-batching and is mutually "
                    "exclusive with drop_last"
                )
            if sampler is None:
                sampler = (
                    RandomSampler(dataset, generator=generator)
                    if shuffle
                    else SequentialSampler(dataset)
                )
            if batch_size is not None and batch_sampler is None:
                batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0
        ):
            raise ValueError(
                f"DataLoader: batch_size should be a positive integer value or None, got "
                f"{batch_size!r}"
            )

        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self._auto_collation = batch_sampler is not None or (self._iterable and batch_size)
        self._default_collate = collate_fn is None or collate_fn is default_collate
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn

    def __len__(self) -> int:
        if self._iterable:
            n = len(self.dataset)  # TypeError when the stream has no length, as in PyTorch
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        return len(self.sampler)

    def __iter__(self):
        if self._iterable:
            return self._iter_stream()
        if self.batch_sampler is None:
            return (self.collate_fn(self.dataset[i]) for i in self.sampler)
        return self._iter_batches()

    def _iter_batches(self):
        fetch = getattr(self.dataset, "_fetch_batch", None) if self._default_collate else None
        # ours (not a subclass's own __iter__) gives int64 arrays for our samplers; any
        # other batch goes to the dataset as it was yielded, keys unchanged, as in PyTorch
        ours = type(self.batch_sampler).__iter__ is BatchSampler.__iter__
        batches = self.batch_sampler._index_batches() if ours else iter(self.batch_sampler)
        getitems = _batch_method(self.dataset)  # PyTorch's batch protocol
        for keys in batches:
            batch = None
            if fetch is not None:  # the fast path, for integer keys only
                indices = keys if ours and isinstance(keys, np.ndarray) else _integer_indices(keys)
                if indices is not None and len(indices):
                    batch = fetch(indices)
            if batch is None:
                if ours and isinstance(keys, np.ndarray):
                    keys = keys.tolist()  # as PyTorch's BatchSampler: a list of ints
                if getitems is not None:
                    samples = getitems(keys)
                else:
                    samples = [self.dataset[key] for key in keys]
                batch = self.collate_fn(samples)
            yield batch

    def _iter_stream(self):
        if not self._auto_collation:
            for sample in self.dataset:
                yield self.collate_fn(sample)
            return
        pending = []
        for sample in self.dataset:
            pending.append(sample)
            if len(pending) == self.batch_size:
                yield self.collate_fn(pending)
                pending = []
        if pending and not self.drop_last:
            yield self.collate_fn(pending)

    def __repr__(self) -> str:
        return (
            f"DataLoader(dataset={type(self.dataset).__name__} of {len(self.dataset)}, "
            f"batch_size={self.batch_size}, drop_last={self.drop_last})"
        )


def random_split(dataset, lengths: Sequence, generator: Generator | None = None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random subsets of the given lengths.

    ``lengths`` are counts that sum to ``len(dataset)``, or fractions that sum to 1
    (each gets ``floor(fraction * n)`` and the remainder is dealt out one by one,
    round-robin, as PyTorch does).  ``random_split(ds, [0.8, 0.2],
    generator=autodiff.Generator().manual_seed(42))``.
    """
    n = len(dataset)
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        if any(not 0 <= frac <= 1 for frac in lengths):
            raise ValueError(f"random_split: fractions must be between 0 and 1, got {lengths}")
        counts = [math.floor(n * frac) for frac in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        for i, count in enumerate(counts):
            if count == 0:
                warnings.warn(
                    f"random_split: length of split at index {i} is 0; this might result in an "
                    "empty dataset",
                    stacklevel=2,
                )
        lengths = counts
    if any(isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < 0 for x in lengths):
        raise ValueError(
            f"random_split: lengths must be non-negative integers or fractions summing to 1, "
            f"got {lengths}"
        )
    if sum(lengths) != n:
        raise ValueError(
            f"random_split: sum of input lengths ({sum(lengths)}) does not equal the length of "
            f"the input dataset ({n})"
        )
    permutation = numpy_rng(generator).permutation(n).tolist()
    subsets, offset = [], 0
    for length in lengths:
        subsets.append(Subset(dataset, permutation[offset : offset + length]))
        offset += length
    return subsets
