"""nn.data and nn.transforms: batching, len, drop_last, seeded shuffling, collation,
the batched fast path against the per-sample path, random_split."""

from __future__ import annotations

import collections

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autodiff
from nn import datasets
from nn.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    default_collate,
    default_convert,
    random_split,
)
from nn.transforms import Compose, Lambda, Normalize, ToTensor, is_batchable


def slow_collate(batch):
    """The default collation, but not the default object: forces the per-sample path."""
    return default_collate(batch)


def rows_dataset(n: int) -> TensorDataset:
    return TensorDataset(
        autodiff.arange(n * 3, dtype=autodiff.float32).reshape(n, 3), autodiff.arange(n)
    )


def seen_labels(loader) -> list[int]:
    return [int(v) for _, y in loader for v in y.tolist()]


# -- batching and len ---------------------------------------------------------------------
@settings(max_examples=30)
@given(n=st.integers(1, 40), batch_size=st.integers(1, 12), drop_last=st.booleans())
def test_batches_cover_the_dataset_in_order(n, batch_size, drop_last):
    loader = DataLoader(rows_dataset(n), batch_size=batch_size, drop_last=drop_last)
    batches = list(loader)
    expected = n // batch_size if drop_last else -(-n // batch_size)
    assert len(loader) == len(batches) == expected
    labels = seen_labels(batches)
    kept = (n // batch_size) * batch_size if drop_last else n
    assert labels == list(range(kept))
    for X, y in batches[:-1] if not drop_last else batches:
        assert X.shape == (batch_size, 3) and y.shape == (batch_size,)
    assert loader.dataset is not None and len(loader.dataset) == n


def test_last_batch_is_short_without_drop_last():
    X, y = list(DataLoader(rows_dataset(10), batch_size=4))[-1]
    assert X.shape == (2, 3)
    assert y.tolist() == [8, 9]
    np.testing.assert_array_equal(X.numpy(), np.arange(24, 30, dtype=np.float32).reshape(2, 3))


def test_lecture_batch_shapes_and_dtypes():
    ds = TensorDataset(autodiff.zeros(130, 1, 28, 28), autodiff.zeros(130, dtype=autodiff.int64))
    loader = DataLoader(ds, batch_size=64)
    X, y = next(iter(loader))
    assert X.shape == (64, 1, 28, 28) and X.dtype == autodiff.float32
    assert y.shape == (64,) and y.dtype == autodiff.int64
    assert len(loader) == 3


def test_batch_size_none_yields_single_samples():
    loader = DataLoader(TensorDataset(np.arange(6.0).reshape(3, 2)), batch_size=None)
    samples = list(loader)
    assert len(loader) == 3 and len(samples) == 3
    assert samples[1][0].tolist() == [2.0, 3.0]


# -- shuffling ----------------------------------------------------------------------------
def test_shuffle_is_a_permutation_and_seeded_by_manual_seed():
    autodiff.manual_seed(123)
    loader = DataLoader(rows_dataset(50), batch_size=8, shuffle=True)
    first = seen_labels(loader)
    second = seen_labels(loader)
    assert sorted(first) == list(range(50)) and sorted(second) == list(range(50))
    assert first != list(range(50))
    assert first != second, "each epoch draws a new permutation"
    autodiff.manual_seed(123)
    loader = DataLoader(rows_dataset(50), batch_size=8, shuffle=True)
    assert seen_labels(loader) == first and seen_labels(loader) == second


def test_shuffle_with_a_generator_ignores_the_global_seed():
    def run(global_seed):
        autodiff.manual_seed(global_seed)
        gen = autodiff.Generator().manual_seed(7)
        return seen_labels(DataLoader(rows_dataset(30), batch_size=4, shuffle=True, generator=gen))

    assert run(1) == run(2)
    assert sorted(run(1)) == list(range(30))


def test_samplers_and_batch_sampler():
    ds = rows_dataset(10)
    picked = seen_labels(DataLoader(ds, batch_size=3, sampler=[9, 1, 4, 4]))
    assert picked == [9, 1, 4, 4]
    gen = autodiff.Generator().manual_seed(0)
    subset = seen_labels(DataLoader(ds, batch_size=2, sampler=SubsetRandomSampler([2, 5, 7], gen)))
    assert sorted(subset) == [2, 5, 7]
    batches = BatchSampler(SequentialSampler(range(7)), 3, drop_last=False)
    assert list(batches) == [[0, 1, 2], [3, 4, 5], [6]] and len(batches) == 3
    loader = DataLoader(ds, batch_sampler=[[0, 1], [5]])
    assert [y.tolist() for _, y in loader] == [[0, 1], [5]]


def key_recorder(base):
    """A map-style dataset class (on ``base``, ours or PyTorch's) that records each key it gets."""

    class Recorder(base):
        def __init__(self):
            self.seen = []

        def __len__(self):
            return 3

        def __getitem__(self, key):
            self.seen.append(repr(key))
            return {"a": 1.0, "b": 2.0, "c": 3.0}[key] if isinstance(key, str) else 0.0

    return Recorder


class BatchRecorder(key_recorder(Dataset)):
    def __getitems__(self, keys):
        self.seen.append(type(keys).__name__)
        return [self[key] for key in keys]


def test_sampled_keys_reach_the_dataset_as_they_are():
    """As PyTorch: strings, floats and bools from a sampler go to dataset[key] unchanged."""
    keyed = key_recorder(Dataset)()
    batches = [b.tolist() for b in DataLoader(keyed, batch_size=2, sampler=["c", "a", "b"])]
    assert batches == [[3.0, 1.0], [2.0]] and keyed.seen == ["'c'", "'a'", "'b'"]
    assert list(BatchSampler(["a", "b", "c"], 2, drop_last=False)) == [["a", "b"], ["c"]]
    assert list(BatchSampler(["a", "b", "c"], 2, drop_last=True)) == [["a", "b"]]
    floats = key_recorder(Dataset)()
    list(DataLoader(floats, batch_size=2, sampler=[0.5, True, np.float64(2)]))
    assert floats.seen == ["0.5", "True", "np.float64(2.0)"]
    gen = autodiff.Generator().manual_seed(0)
    assert sorted(SubsetRandomSampler(["a", "b", "c"], gen)) == ["a", "b", "c"]
    assert sorted(SubsetRandomSampler([0.5, 1.5], gen)) == [0.5, 1.5]
    shuffled = key_recorder(Dataset)()
    list(DataLoader(shuffled, batch_size=2, sampler=SubsetRandomSampler(["a", "b", "c"], gen)))
    assert sorted(shuffled.seen) == ["'a'", "'b'", "'c'"]
    subset = next(iter(DataLoader(Subset(key_recorder(Dataset)(), ["c", "a"]), batch_size=2)))
    assert subset.tolist() == [3.0, 1.0]
    batched = BatchRecorder()
    list(DataLoader(batched, batch_sampler=[("a", "b"), ["c"]]))
    assert batched.seen == ["tuple", "'a'", "'b'", "list", "'c'"]
    # a tensor dataset refuses float keys, as PyTorch's does, also through a Subset
    rows = rows_dataset(4)
    for options in ({"sampler": [0.0, 1.0]}, {"sampler": SubsetRandomSampler([1.0])}):
        with pytest.raises(IndexError, match="valid indices"):
            list(DataLoader(rows, batch_size=2, **options))
    with pytest.raises(IndexError, match="valid indices"):
        list(DataLoader(Subset(rows, [1.0, 2.0]), batch_size=2))


def test_integer_keys_of_any_sampler_take_the_fast_path():
    class Counted(TensorDataset):
        fetched = 0

        def _fetch_batch(self, indices):
            assert indices.dtype == np.int64
            Counted.fetched += 1
            return super()._fetch_batch(indices)

    data = Counted(autodiff.arange(5.0))
    gen = autodiff.Generator().manual_seed(0)
    loaders = [
        DataLoader(data, batch_size=2, sampler=[4, np.int64(1), 3]),
        DataLoader(data, batch_sampler=[np.array([4, 1]), (3,)]),
        DataLoader(data, batch_size=2, sampler=SubsetRandomSampler(range(1, 5, 3), gen)),
        DataLoader(Subset(data, np.array([4, 1, 3])), batch_size=2),
        DataLoader(Subset(data, autodiff.tensor([4, 1, 3])), batch_size=2),
    ]
    for loader in loaders:
        Counted.fetched = 0
        rows = sorted(v for (X,) in loader for v in X.tolist())
        assert rows == ([1.0, 4.0] if len(loader.sampler) == 2 else [1.0, 3.0, 4.0])
        assert Counted.fetched == len(loader)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shuffle": True, "sampler": [0, 1]}, "mutually exclusive with shuffle"),
        ({"batch_sampler": [[0]], "batch_size": 4}, "batch_sampler option is mutually exclusive"),
        ({"batch_size": 0}, "batch_size should be a positive integer"),
        ({"batch_size": None, "drop_last": True}, "disables auto-batching"),
        ({"num_workers": -1}, "num_workers option should be non-negative"),
        ({"prefetch_factor": 2}, "prefetch_factor option could only be specified"),
        ({"persistent_workers": True}, "persistent_workers option needs num_workers > 0"),
    ],
)
def test_bad_loader_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DataLoader(rows_dataset(4), **kwargs)


# -- collation ----------------------------------------------------------------------------
def test_default_collate_types():
    batch = default_collate([1.5, 2.5])
    assert batch.dtype == np.float64 and batch.tolist() == [1.5, 2.5]
    assert default_collate([1, 2]).dtype == np.int64
    assert default_collate([True, False]).dtype == np.bool_
    assert default_collate(["a", "b"]) == ["a", "b"]
    arrays = default_collate([np.zeros((2, 3), np.uint8), np.ones((2, 3), np.uint8)])
    assert isinstance(arrays, autodiff.Tensor) and arrays.shape == (2, 2, 3)
    assert arrays.dtype == np.uint8
    assert default_collate([np.float32(1), np.float32(2)]).dtype == np.float32
    x = default_collate([(autodiff.ones(2), 0), (autodiff.zeros(2), 1)])
    assert isinstance(x, list) and x[0].shape == (2, 2) and x[1].tolist() == [0, 1]
    d = default_collate([{"x": autodiff.ones(3), "y": 1}, {"x": autodiff.ones(3), "y": 2}])
    assert d["x"].shape == (2, 3) and d["y"].tolist() == [1, 2]
    Point = collections.namedtuple("Point", "a b")
    p = default_collate([Point(1, 2.0), Point(3, 4.0)])
    assert isinstance(p, Point) and p.a.tolist() == [1, 3] and p.b.dtype == np.float64


def test_default_collate_errors_name_the_shapes_and_types():
    with pytest.raises(RuntimeError, match=r"equal size.*\(3,\) at entry 0 and \(4,\) at entry 1"):
        default_collate([autodiff.zeros(3), autodiff.zeros(4)])
    with pytest.raises(TypeError, match="found object"):
        default_collate([object(), object()])
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([(1, 2), (1, 2, 3)])


def test_default_convert_turns_numpy_scalars_into_0d_tensors():
    for value in (np.float32(1.5), np.int64(3), np.bool_(True), np.float16(2), np.uint8(7)):
        converted = default_convert(value)
        assert isinstance(converted, autodiff.Tensor), value
        assert converted.shape == () and converted.dtype == value.dtype
        assert converted.item() == value.item()
    for kept in (1.5, 3, "a", np.str_("a"), np.array(["a", "b"]), np.ma.array([1, 2])):
        assert default_convert(kept) is kept
    Point = collections.namedtuple("Point", "x y")
    nested = default_convert({"p": Point(np.float64(0.5), [np.int32(1), 2])})
    assert nested["p"].x.dtype == np.float64 and nested["p"].x.shape == ()
    assert nested["p"].y[0].dtype == np.int32 and nested["p"].y[1] == 2
    with pytest.raises(TypeError):
        default_convert(np.datetime64("2020-01-01"))

    class Scalars(Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return np.float32(i), np.int64(i)

    x, y = next(iter(DataLoader(Scalars(), batch_size=None)))
    assert x.shape == y.shape == () and (x.dtype, y.dtype) == (np.float32, np.int64)


def test_default_collate_keeps_numpy_strings_and_refuses_dates():
    assert default_collate([np.str_("a"), np.str_("b")]) == ["a", "b"]
    assert default_collate([np.bytes_(b"a"), np.bytes_(b"b")]) == [b"a", b"b"]
    with pytest.raises(TypeError, match="found datetime64"):
        default_collate([np.datetime64("2020-01-01")] * 2)
    assert default_collate([np.bool_(True), np.bool_(False)]).dtype == np.bool_


class FrozenMapping(collections.abc.Mapping):
    """A read-only mapping made from a dict."""

    def __init__(self, data):
        self._data = dict(data)

    def __getitem__(self, key):
        return self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self):
        return len(self._data)


class KeywordMapping(FrozenMapping):
    """A read-only mapping that cannot be made from a dict: collation gives a dict."""

    def __init__(self, **data):
        super().__init__(data)


class TaggedList(list):
    """A list with an attribute, which a copy keeps."""

    tag = None


class Record(collections.abc.Sequence):
    """A read-only sequence made from a list."""

    def __init__(self, items):
        self._items = list(items)

    def __getitem__(self, i):
        return self._items[i]

    def __len__(self):
        return len(self._items)


def tagged(items, tag):
    out = TaggedList(items)
    out.tag = tag
    return out


def container_samples():
    """Samples in each kind of container, for collation (two of each) and conversion."""
    counts = collections.defaultdict(int, a=np.int64(1))
    return [
        [collections.OrderedDict(b=1, a=np.float32(2.0))] * 2,
        [counts, counts],
        [FrozenMapping({"x": 1.5}), FrozenMapping({"x": 2.5})],
        [KeywordMapping(x=np.arange(2)), KeywordMapping(x=np.arange(2))],
        [tagged([1, 2.0], "t"), tagged([3, 4.0], "u")],
        [Record([1, "a"]), Record([2, "b"])],
        [("a", 1), ("b", 2)],
        [["a", np.ones(2)], ["b", np.zeros(2)]],
        [range(2), range(2, 4)],
    ]


def test_collation_keeps_the_container_types():
    od = default_collate([collections.OrderedDict(b=1, a=2)] * 2)
    assert type(od) is collections.OrderedDict and list(od) == ["b", "a"]
    counts = default_collate([collections.defaultdict(int, a=1)] * 2)
    assert type(counts) is collections.defaultdict and counts["missing"] == 0
    assert counts["a"].tolist() == [1, 1]
    assert type(default_collate([FrozenMapping({"x": 1})] * 2)) is FrozenMapping
    assert type(default_collate([KeywordMapping(x=1)] * 2)) is dict
    batch = default_collate([tagged([1, 2.0], "t"), tagged([3, 4.0], "u")])
    assert type(batch) is TaggedList and batch.tag == "t" and batch[0].tolist() == [1, 3]
    assert type(default_collate([Record([1, 2])] * 2)) is Record
    assert default_collate([("a", 1), ("b", 2)])[0] == ("a", "b")  # strings: as zip gives them
    assert type(default_collate([(1, 2), (3, 4)])) is list

    od = default_convert(collections.OrderedDict(b=np.int64(1), a=np.ones(2)))
    assert type(od) is collections.OrderedDict and list(od) == ["b", "a"]
    assert isinstance(od["b"], autodiff.Tensor)
    converted = default_convert(tagged([np.float32(1)], "t"))
    assert type(converted) is TaggedList and converted.tag == "t"
    assert isinstance(converted[0], autodiff.Tensor)
    assert type(default_convert(Record([np.ones(1)]))) is Record
    assert type(default_convert(KeywordMapping(x=1))) is dict
    assert default_convert(range(3)) == [0, 1, 2]
    assert default_convert((np.int64(1), 2))[1] == 2


def test_collation_keeps_the_graph_of_tensors_that_require_grad():
    w = autodiff.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], requires_grad=True)
    (X,) = next(iter(DataLoader(TensorDataset(w), batch_size=3, shuffle=False)))
    upstream = np.random.default_rng(0).standard_normal((3, 2)).astype(np.float32)
    (X * autodiff.tensor(upstream)).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), upstream)


# -- the fast path ------------------------------------------------------------------------
@settings(max_examples=20)
@given(
    n=st.integers(1, 30),
    batch_size=st.integers(1, 9),
    drop_last=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_fast_path_gives_the_slow_path_numbers_for_tensor_datasets(n, batch_size, drop_last, seed):
    rng = np.random.default_rng(seed)
    ds = TensorDataset(rng.standard_normal((n, 2, 3)).astype(np.float32), rng.integers(0, 9, n))
    fast = DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=True,
        drop_last=drop_last,
        generator=autodiff.Generator().manual_seed(seed),
    )
    slow = DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=True,
        drop_last=drop_last,
        collate_fn=slow_collate,
        generator=autodiff.Generator().manual_seed(seed),
    )
    pairs = list(zip(fast, slow, strict=True))
    assert len(pairs) == len(fast)
    for (Xf, yf), (Xs, ys) in pairs:
        assert Xf.dtype == Xs.dtype and yf.dtype == ys.dtype
        np.testing.assert_array_equal(Xf.numpy(), Xs.numpy())
        np.testing.assert_array_equal(yf.numpy(), ys.numpy())


class CountingToTensor(ToTensor):
    """ToTensor that counts per-image calls and batch calls."""

    def __init__(self):
        self.calls = self.batches = 0

    def __call__(self, pic):
        self.calls += 1
        return super().__call__(pic)

    def batch(self, images):
        self.batches += 1
        return super().batch(images)


@pytest.mark.parametrize(
    "extra",
    [None, [], [Normalize((0.0,), (16 / 255,))], [Normalize((0.3,), (0.7,))]],
    ids=["raw", "ToTensor", "rescale", "normalize"],
)
def test_fast_path_on_image_datasets_equals_per_sample_numbers(extra):
    to_tensor = CountingToTensor()
    transform = None if extra is None else Compose([to_tensor, *extra])
    ds = datasets.Digits(train=False, transform=transform)
    gen_seed = 5
    fast = DataLoader(
        ds, batch_size=64, shuffle=True, generator=autodiff.Generator().manual_seed(gen_seed)
    )
    fast_batches = list(fast)
    if transform is not None:
        assert to_tensor.calls == 0 and to_tensor.batches == 6, "one batched call per batch"
    slow = DataLoader(
        ds,
        batch_size=64,
        shuffle=True,
        collate_fn=slow_collate,
        generator=autodiff.Generator().manual_seed(gen_seed),
    )
    slow_batches = list(slow)
    if transform is not None:
        assert to_tensor.calls == len(ds)
    assert len(fast_batches) == len(slow_batches) == 6
    for (Xf, yf), (Xs, ys) in zip(fast_batches, slow_batches):
        assert Xf.shape == Xs.shape and Xf.dtype == Xs.dtype
        np.testing.assert_array_equal(Xf.numpy(), Xs.numpy())
        np.testing.assert_array_equal(yf.numpy(), ys.numpy())
        assert yf.dtype == np.int64


def test_unbatchable_transform_takes_the_per_sample_path():
    to_tensor = CountingToTensor()
    ds = datasets.Digits(train=False, transform=Compose([to_tensor, Lambda(lambda x: x * 2)]))
    X, _ = next(iter(DataLoader(ds, batch_size=10)))
    assert to_tensor.calls == 10 and to_tensor.batches == 0
    expected = ds.data.numpy()[:10, None].astype(np.float32) / np.float32(255) * 2
    np.testing.assert_array_equal(X.numpy(), expected)


def test_subclasses_that_change_getitem_are_asked_sample_by_sample():
    class Flipped(datasets.Digits):
        def __getitem__(self, index):
            image, target = super().__getitem__(index)
            return image[:, ::-1], 9 - target

    class Doubled(TensorDataset):
        def __getitem__(self, index):
            return tuple(t[index] * 2 for t in self.tensors)

    ds = Flipped(train=False)
    X, y = next(iter(DataLoader(ds, batch_size=4)))
    assert y.tolist() == [9 - int(t) for t in ds.targets.tolist()[:4]]
    np.testing.assert_array_equal(X.numpy(), ds.data.numpy()[:4, :, ::-1])
    (X,) = next(iter(DataLoader(Doubled(autodiff.arange(4)), batch_size=4)))
    assert X.tolist() == [0, 2, 4, 6]
    _, y = next(iter(DataLoader(Subset(ds, [0, 1]), batch_size=2)))
    assert y.tolist() == [9 - int(t) for t in ds.targets.tolist()[:2]]


def test_subset_of_an_array_dataset_uses_the_fast_path():
    to_tensor = CountingToTensor()
    ds = datasets.Digits(train=False, transform=to_tensor)
    subset = Subset(ds, [5, 3, 1])
    X, y = next(iter(DataLoader(subset, batch_size=3)))
    assert to_tensor.calls == 0 and to_tensor.batches == 1
    assert y.tolist() == [int(ds.targets[i].item()) for i in (5, 3, 1)]
    np.testing.assert_array_equal(X.numpy()[1], ds[3][0].numpy())


# -- datasets and random_split ------------------------------------------------------------
def test_tensor_dataset_checks_sizes_and_indexes_rows():
    with pytest.raises(ValueError, match=r"size mismatch.*\(3, 2\), \(4,\)"):
        TensorDataset(autodiff.zeros(3, 2), autodiff.zeros(4))
    ds = rows_dataset(4)
    x, y = ds[2]
    assert x.tolist() == [6.0, 7.0, 8.0] and y.item() == 2


def test_concat_dataset_and_plus():
    ds = rows_dataset(3) + rows_dataset(2)
    assert isinstance(ds, ConcatDataset) and len(ds) == 5
    assert ds[3][1].item() == 0 and ds[-1][1].item() == 1
    with pytest.raises(IndexError, match="out of range"):
        ds[5]


# key -> (what the first and the second of two 3-sample datasets get), or the error
CONCAT_KEYS = {
    "2": (2, (["2"], [])),
    "3": (3, ([], ["0"])),
    "-1": (-1, ([], ["2"])),
    "-6": (-6, (["0"], [])),
    "np.int64(4)": (np.int64(4), ([], ["np.int64(1)"])),
    "True": (True, (["True"], [])),
    "1.5": (1.5, (["1.5"], [])),
    "3.5": (3.5, ([], ["0.5"])),
    "-0.5": (-0.5, ([], ["2.5"])),
    "np.float64(4.0)": (np.float64(4.0), ([], ["np.float64(1.0)"])),
    "6": (6, IndexError),
    "6.0": (6.0, IndexError),
    "-7": (-7, ValueError),
    "-6.5": (-6.5, ValueError),
    "'a'": ("a", TypeError),
}


def concat_outcome(base, concat, key):
    """What two 3-sample key recorders (on ``base``) concatenated by ``concat`` see when
    asked for ``key``: the keys each got, or the type of the error."""
    parts = [key_recorder(base)(), key_recorder(base)()]
    try:
        concat(parts)[key]
    except (IndexError, ValueError, TypeError) as error:
        return type(error)
    return tuple(part.seen for part in parts)


@pytest.mark.parametrize("name", CONCAT_KEYS)
def test_concat_dataset_passes_any_key_on_as_pytorch(name):
    """As PyTorch's ConcatDataset: a negative index past the start is a ValueError, and
    every other key, floats included, goes to the dataset that holds it, minus that
    dataset's start; that dataset decides what a float means."""
    key, expected = CONCAT_KEYS[name]
    assert concat_outcome(Dataset, ConcatDataset, key) == expected


@pytest.mark.parametrize("name", CONCAT_KEYS)
def test_concat_dataset_keys_match_pytorch(torch, name):
    key = CONCAT_KEYS[name][0]
    theirs = concat_outcome(torch.utils.data.Dataset, torch.utils.data.ConcatDataset, key)
    assert concat_outcome(Dataset, ConcatDataset, key) == theirs


def test_concat_dataset_errors_name_the_index_and_the_length():
    ds = rows_dataset(3) + rows_dataset(2)
    with pytest.raises(ValueError, match=r"should not exceed dataset length: got index -6 .* 5"):
        ds[-6]
    with pytest.raises(IndexError, match="index 5 is out of range for a dataset of 5 samples"):
        ds[5]
    with pytest.raises(TypeError, match="ConcatDataset: index must be a number, got str 'a'"):
        ds["a"]
    with pytest.raises(IndexError, match="only integers"):  # TensorDataset's own refusal
        ds[3.0]
    assert ds[autodiff.tensor(-1)][1].item() == 1


def test_concat_dataset_of_tensor_datasets_refuses_floats_as_pytorch(torch):
    from torch.utils.data import ConcatDataset as TorchConcat
    from torch.utils.data import TensorDataset as TorchTensorDataset

    theirs = TorchConcat([TorchTensorDataset(torch.arange(3)), TorchTensorDataset(torch.arange(2))])
    ours = rows_dataset(3) + rows_dataset(2)
    for key in (1.0, 3.5, -1.0):
        for dataset in (ours, theirs):
            with pytest.raises(IndexError):
                dataset[key]


@settings(max_examples=20)
@given(n=st.integers(10, 60), seed=st.integers(0, 1000))
def test_random_split_with_fractions_partitions_the_indices(n, seed):
    ds = rows_dataset(n)
    parts = random_split(ds, [0.5, 0.3, 0.2], generator=autodiff.Generator().manual_seed(seed))
    sizes = [len(p) for p in parts]
    assert sum(sizes) == n
    floors = [int(np.floor(n * f)) for f in (0.5, 0.3, 0.2)]
    assert all(s - f in (0, 1) for s, f in zip(sizes, floors))
    indices = [i for p in parts for i in p.indices]
    assert sorted(indices) == list(range(n))
    again = random_split(ds, [0.5, 0.3, 0.2], generator=autodiff.Generator().manual_seed(seed))
    assert [p.indices for p in again] == [p.indices for p in parts]


def test_random_split_lengths_and_errors():
    autodiff.manual_seed(0)
    train, test = random_split(rows_dataset(10), [7, 3])
    assert len(train) == 7 and len(test) == 3
    assert sorted(int(train[i][1].item()) for i in range(7)) == sorted(train.indices)
    with pytest.raises(ValueError, match=r"sum of input lengths \(9\) does not equal.*\(10\)"):
        random_split(rows_dataset(10), [6, 3])
    with pytest.raises(ValueError, match="non-negative integers"):
        random_split(rows_dataset(10), [12, -2])


def test_iterable_dataset_batches_a_stream():
    class Stream(IterableDataset):
        def __iter__(self):
            return iter(range(7))

    loader = DataLoader(Stream(), batch_size=3)
    assert [b.tolist() for b in loader] == [[0, 1, 2], [3, 4, 5], [6]]
    with pytest.raises(ValueError, match="shuffle"):
        DataLoader(Stream(), shuffle=True)
    with pytest.raises(TypeError):
        len(loader)


def test_getitems_protocol_fetches_a_batch_in_one_call():
    class Batched(Dataset):
        calls: list = []

        def __len__(self):
            return 5

        def __getitem__(self, i):
            raise AssertionError("__getitems__ should be used")

        def __getitems__(self, indices):
            self.calls.append(indices)
            return [(float(i), i) for i in indices]

    ds = Batched()
    batches = list(DataLoader(ds, batch_size=2))
    assert ds.calls == [[0, 1], [2, 3], [4]]
    assert batches[0][0].tolist() == [0.0, 1.0] and batches[2][1].tolist() == [4]


@pytest.mark.parametrize("value", [None, False])
def test_getitems_that_is_none_means_no_batch_method(value):
    """PyTorch's fetcher asks ``__getitems__`` only when the attribute is true; a dataset
    that sets it to None is read sample by sample."""

    class Plain(Dataset):
        __getitems__ = value

        def __len__(self):
            return 4

        def __getitem__(self, i):
            return float(i) * 2

    class Rows(TensorDataset):
        __getitems__ = value

    class Picked(Subset):
        __getitems__ = value

    for dataset in (Plain(), Rows(autodiff.arange(4.0) * 2), Picked(Plain(), [0, 1, 2, 3])):
        for collate_fn in (None, slow_collate):
            loader = DataLoader(dataset, batch_size=3, collate_fn=collate_fn)
            batches = [b[0] if isinstance(b, (list, tuple)) else b for b in loader]
            assert [b.tolist() for b in batches] == [[0.0, 2.0, 4.0], [6.0]]


@pytest.mark.parametrize("value", [None, False])
def test_getitems_that_is_none_means_no_batch_method_as_in_pytorch(torch, value):
    from torch.utils.data import DataLoader as TorchLoader
    from torch.utils.data import Dataset as TorchDataset

    def plain(base):
        class Plain(base):
            __getitems__ = value

            def __len__(self):
                return 4

            def __getitem__(self, i):
                return float(i) * 2

        return Plain()

    ours = [b.tolist() for b in DataLoader(plain(Dataset), batch_size=3)]
    theirs = [b.tolist() for b in TorchLoader(plain(TorchDataset), batch_size=3)]
    assert ours == theirs == [[0.0, 2.0, 4.0], [6.0]]


def test_getitems_of_an_image_dataset_subclass_reads_its_batches():
    """The fast path (one fancy index) does not go around a subclass's own __getitems__."""

    class Reversed(datasets.Digits):
        def __getitems__(self, indices):
            return [self[i] for i in reversed(indices)]

    ds = Reversed(train=False)
    _, labels = next(iter(DataLoader(ds, batch_size=3)))
    assert labels.tolist() == [ds[2][1], ds[1][1], ds[0][1]]
    _, labels = next(iter(DataLoader(Subset(ds, [5, 4]), batch_size=2)))
    assert labels.tolist() == [ds[4][1], ds[5][1]]


def test_an_empty_batch_is_an_index_error():
    """PyTorch's default_collate reads batch[0] first: an empty batch is an IndexError."""
    with pytest.raises(IndexError, match=r"default_collate: got an empty batch \(\[\]\)"):
        default_collate([])
    with pytest.raises(IndexError, match="empty batch"):
        next(iter(DataLoader(rows_dataset(3), batch_sampler=[[]])))


def test_an_empty_batch_is_an_index_error_as_in_pytorch(torch):
    from torch.utils.data import DataLoader as TorchLoader
    from torch.utils.data import TensorDataset as TorchTensorDataset
    from torch.utils.data import default_collate as torch_collate

    with pytest.raises(IndexError):
        torch_collate([])
    with pytest.raises(IndexError):
        next(iter(TorchLoader(TorchTensorDataset(torch.arange(3)), batch_sampler=[[]])))


def test_workers_are_accepted_and_batches_load_in_process():
    loader = DataLoader(rows_dataset(6), batch_size=4, num_workers=2, pin_memory=True)
    assert seen_labels(loader) == list(range(6))


def test_custom_map_dataset_with_python_samples():
    class Squares(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return {"x": np.full(2, i, np.float32), "y": i * i}

    batch = next(iter(DataLoader(Squares(), batch_size=5)))
    assert batch["x"].shape == (5, 2) and batch["y"].tolist() == [0, 1, 4, 9, 16]


# -- transforms ---------------------------------------------------------------------------
def test_to_tensor_layouts_and_scaling():
    gray = np.array([[0, 255], [51, 102]], np.uint8)
    t = ToTensor()(gray)
    assert t.shape == (1, 2, 2) and t.dtype == np.float32
    np.testing.assert_allclose(t.numpy()[0], gray / 255, rtol=1e-6)
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    t = ToTensor()(rgb)
    assert t.shape == (3, 2, 3)
    np.testing.assert_allclose(t.numpy(), rgb.transpose(2, 0, 1) / 255, rtol=1e-6)
    floats = np.full((2, 2), 7.0)
    assert ToTensor()(floats).dtype == np.float64 and ToTensor()(floats).numpy().max() == 7.0

    class PILLike:
        def __array__(self, dtype=None, copy=None):
            return gray

    np.testing.assert_array_equal(ToTensor()(PILLike()).numpy(), ToTensor()(gray).numpy())
    with pytest.raises(ValueError, match=r"ToTensor: expected an image of shape.*\(2, 2, 2, 2\)"):
        ToTensor()(np.zeros((2, 2, 2, 2), np.uint8))
    with pytest.raises(TypeError, match="ToTensor"):
        ToTensor()("not an image")


def test_normalize_per_channel_and_errors():
    x = autodiff.tensor(np.stack([np.full((2, 2), 1.0), np.full((2, 2), 3.0)]).astype(np.float32))
    y = Normalize((0.5, 1.0), (0.5, 2.0))(x)
    np.testing.assert_allclose(y.numpy()[0], 1.0)
    np.testing.assert_allclose(y.numpy()[1], 1.0)
    assert y.dtype == np.float32
    with pytest.raises(ValueError, match="mean has 3 values but the image of shape"):
        Normalize((0.1, 0.2, 0.3), (1.0,))(x)
    with pytest.raises(TypeError, match="float tensor, got dtype uint8"):
        Normalize((0.1,), (1.0,))(np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="division by zero"):
        Normalize((0.0,), (0.0,))


def test_normalize_inplace_changes_and_returns_the_tensor():
    x = autodiff.full((1, 2, 2), 3.0)
    y = Normalize((1.0,), (2.0,), inplace=True)(x)
    assert y is x and x.tolist() == [[[1.0, 1.0], [1.0, 1.0]]]
    z = autodiff.full((1, 2, 2), 3.0)
    assert Normalize((1.0,), (2.0,))(z) is not z and z.tolist()[0][0][0] == 3.0


def test_normalize_is_differentiable_for_tensors_that_require_grad():
    x = autodiff.ones(2, 3, 3, dtype=autodiff.float64, requires_grad=True)
    upstream = np.random.default_rng(1).standard_normal((2, 3, 3))
    (Normalize((0.1, 0.2), (0.5, 4.0))(x) * autodiff.tensor(upstream)).sum().backward()
    expected = upstream / np.array([0.5, 4.0]).reshape(2, 1, 1)
    np.testing.assert_allclose(x.grad.numpy(), expected)


@settings(max_examples=20)
@given(
    n=st.integers(1, 5),
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    channels=st.sampled_from([None, 1, 3]),
    seed=st.integers(0, 2**16),
)
def test_batched_transforms_equal_per_image(n, h, w, channels, seed):
    rng = np.random.default_rng(seed)
    shape = (n, h, w) if channels is None else (n, h, w, channels)
    images = rng.integers(0, 256, shape, dtype=np.uint8)
    c = channels or 1
    transform = Compose(
        [ToTensor(), Normalize(rng.uniform(0, 1, c).tolist(), rng.uniform(0.1, 2, c).tolist())]
    )
    assert transform.batchable
    batched = transform.batch(images)
    one_by_one = np.stack([transform(image).numpy() for image in images])
    assert batched.dtype == one_by_one.dtype == np.float32
    np.testing.assert_array_equal(batched, one_by_one)


def test_compose_and_lambda():
    t = Compose([ToTensor(), Lambda(lambda x: x + 1)])
    assert not t.batchable and not is_batchable(t) and is_batchable(None)
    assert t(np.zeros((1, 1), np.uint8)).item() == 1.0
    assert "ToTensor()" in repr(t)
    with pytest.raises(TypeError, match="callable"):
        Lambda(3)


# -- against PyTorch ----------------------------------------------------------------------
def test_default_collate_matches_pytorch(torch):
    from torch.utils.data import default_collate as torch_collate

    samples = [(np.arange(3, dtype=np.float32) * i, i, i / 2, {"k": np.int32(i)}) for i in range(4)]
    ours, theirs = default_collate(samples), torch_collate(samples)
    assert isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs)
    for mine, reference in zip(ours[:3], theirs[:3]):
        assert str(mine.dtype) == str(reference.dtype).removeprefix("torch.")
        np.testing.assert_array_equal(mine.numpy(), reference.numpy())
    assert str(ours[3]["k"].dtype) == str(theirs[3]["k"].dtype).removeprefix("torch.")


MIXED_NUMBERS = [[1, 2.5], [True, 2], [1, True], [True, 2.5], [True, False], [2.5, 1], [1.5, True]]


@pytest.mark.parametrize("batch", MIXED_NUMBERS, ids=str)
def test_default_collate_of_mixed_python_numbers_keeps_every_value(batch):
    """A batch that starts with an int takes its dtype from every element, as
    torch.tensor(batch) does: [1, 2.5] was cut to the int64 [1, 2]."""
    expected = {
        "[1, 2.5]": "float32",
        "[True, 2]": "int64",
        "[1, True]": "int64",
        "[True, 2.5]": "float32",
        "[True, False]": "bool",
        "[2.5, 1]": "float64",
        "[1.5, True]": "float64",
    }[str(batch)]
    ours = default_collate(batch)
    assert str(ours.dtype) == expected
    assert ours.tolist() == [type(ours.tolist()[0])(v) for v in batch]


@pytest.mark.parametrize("batch", MIXED_NUMBERS, ids=str)
def test_default_collate_of_mixed_python_numbers_matches_pytorch(torch, batch):
    from torch.utils.data import default_collate as torch_collate

    ours, theirs = default_collate(batch), torch_collate(batch)
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


NUMPY_FIRST_BATCHES = {  # batch -> the dtype of torch.as_tensor(batch), PyTorch's collation
    "int64, float": ([np.int64(1), 2.5], "float32"),
    "float32, float": ([np.float32(1), 2.5], "float32"),
    "float16, float": ([np.float16(1), 2.5], "float32"),
    "bool, float": ([np.bool_(True), 2.5], "float32"),
    "int64, float16": ([np.int64(3), np.float16(2)], "float16"),
    "float64, int": ([np.float64(1), 2], "float64"),
    "int32, int": ([np.int32(1), 2], "int64"),
    "uint8, int8": ([np.uint8(200), np.int8(-1)], "int16"),
    "uint8, bool": ([np.uint8(200), True], "uint8"),
    "complex64, float": ([np.complex64(1 + 2j), 2.5], "complex64"),
    "complex64, float64": ([np.complex64(1 + 2j), np.float64(2)], "complex128"),
    "int64, complex": ([np.int64(1), 2j], "complex64"),
    "int64, 0-d float64 array": ([np.int64(1), np.array(2.5)], "float64"),
    "int8, uint8, float": ([np.int8(-1), np.uint8(200), 0.5], "float32"),
    "int64 past float32's integers, float": ([np.int64(2**40 + 1), 0.5], "float32"),
}


@pytest.mark.parametrize("name", NUMPY_FIRST_BATCHES)
def test_default_collate_of_numpy_numbers_takes_pytorch_dtype(name):
    """A batch that starts with a NumPy number is torch.as_tensor(batch) in PyTorch: across
    kinds the higher kind's dtype wins as it is, so [np.int64(1), 2.5] is float32 (a Python
    float is float32 there), not the float64 of np.array(batch)."""
    batch, expected = NUMPY_FIRST_BATCHES[name]
    ours = default_collate(batch)
    assert str(ours.dtype) == expected
    np.testing.assert_array_equal(ours.numpy(), np.array(batch).astype(expected))


NUMPY_SCALARS = [np.bool_(True), np.uint8(200), np.int8(-3), np.int16(-300), np.int32(70000)]
NUMPY_SCALARS += [np.int64(2**40 + 1), np.uint16(60000), np.float16(1.5), np.float32(0.1)]
NUMPY_SCALARS += [np.float64(1e-300), np.complex64(1 - 2j), np.complex128(0.1 + 1e300j)]


@pytest.mark.filterwarnings("ignore:Creating a tensor from a list of numpy.ndarrays")
def test_default_collate_of_numpy_number_pairs_matches_pytorch(torch):
    """Every pair that starts with a NumPy number: PyTorch's dtype and values, or its
    exception where it refuses the pair (uint16 with another integer type, bool or
    complex: RuntimeError; a NumPy bool with an integer: TypeError)."""
    from torch.utils.data import default_collate as torch_collate

    compared = refused = 0
    for first in NUMPY_SCALARS:
        for second in [*NUMPY_SCALARS, True, 3, 0.1, 2j, np.array(0.25), np.array(-7, np.int32)]:
            batch = [first, second]
            try:
                theirs = torch_collate(batch)
            except (TypeError, RuntimeError) as error:
                with pytest.raises(type(error)):
                    default_collate(batch)
                refused += 1
                continue
            assert same_as_pytorch(default_collate(batch), theirs), batch
            compared += 1
    assert compared >= 180 and compared + refused == 216  # 185 and 31 with PyTorch 2.13


NUMPY_VALUES = [
    np.float32(1.5),
    np.float64(-2.25),
    np.float16(3),
    np.int64(3),
    np.int32(-4),
    np.uint8(200),
    np.bool_(True),
    np.complex64(1 + 2j),
    np.str_("a"),
    np.bytes_(b"a"),
    np.datetime64("2020-01-01"),
    np.array([1.0, 2.0], np.float32),
    np.array(["a"]),
    np.ma.array([1, 2]),
    1.5,
    "a",
]
NUMPY_IDS = [f"{i}-{type(v).__name__}" for i, v in enumerate(NUMPY_VALUES)]
CONTAINERS = (collections.abc.Mapping, collections.abc.Sequence)


def same_as_pytorch(ours, theirs) -> bool:
    """The same value and type, a tensor of PyTorch's dtype and shape where PyTorch has a tensor."""
    import torch

    if isinstance(theirs, torch.Tensor):
        return (
            isinstance(ours, autodiff.Tensor)
            and str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")
            and ours.shape == tuple(theirs.shape)
            and np.array_equal(ours.numpy(), theirs.numpy())
        )
    if isinstance(theirs, CONTAINERS) and not isinstance(theirs, (str, bytes)):
        if type(ours) is not type(theirs) or len(ours) != len(theirs):
            return False
        if getattr(ours, "tag", None) != getattr(theirs, "tag", None):
            return False  # a subclass's attributes are kept (TaggedList)
        if isinstance(theirs, collections.abc.Mapping):
            return list(ours) == list(theirs) and all(
                same_as_pytorch(ours[k], theirs[k]) for k in theirs
            )
        return all(same_as_pytorch(a, b) for a, b in zip(ours, theirs))
    return type(ours) is type(theirs) and ours is theirs


@pytest.mark.parametrize("value", NUMPY_VALUES, ids=NUMPY_IDS)
def test_default_convert_matches_pytorch(torch, value):
    from torch.utils.data import default_convert as torch_convert

    try:
        theirs = torch_convert(value)
    except TypeError:
        with pytest.raises(TypeError):
            default_convert(value)
        return
    assert same_as_pytorch(default_convert(value), theirs)
    assert same_as_pytorch(default_convert([value, (value,)]), torch_convert([value, (value,)]))


@pytest.mark.parametrize("value", NUMPY_VALUES, ids=NUMPY_IDS)
def test_default_collate_of_numpy_values_matches_pytorch(torch, value):
    from torch.utils.data import default_collate as torch_collate

    try:
        theirs = torch_collate([value, value])
    except TypeError:
        with pytest.raises(TypeError):
            default_collate([value, value])
        return
    ours = default_collate([value, value])
    if isinstance(theirs, list):  # strings: the batch as it is
        assert ours == theirs and [type(v) for v in ours] == [type(v) for v in theirs]
    else:
        assert same_as_pytorch(ours, theirs)


@pytest.mark.parametrize("pair", container_samples(), ids=lambda pair: type(pair[0]).__name__)
def test_collation_of_containers_matches_pytorch(torch, pair):
    from torch.utils.data import default_collate as torch_collate
    from torch.utils.data import default_convert as torch_convert

    assert same_as_pytorch(default_collate(pair), torch_collate(pair))
    assert same_as_pytorch(default_convert(pair[0]), torch_convert(pair[0]))
    assert same_as_pytorch(default_convert(pair), torch_convert(pair))


@pytest.mark.parametrize(
    "options",
    [
        {"sampler": ["a", "b", "c"], "batch_size": 2},
        {"sampler": ["a", "b", "c"], "batch_size": 2, "drop_last": True},
        {"sampler": [0.5, 1.5, 2], "batch_size": 2},
        {"sampler": np.array([0.5, 1.5]), "batch_size": 2},
        {"sampler": [True, 0, np.int64(1)], "batch_size": 3},
        {"sampler": ["a", 1.0], "batch_size": None},
        {"batch_sampler": [("a", "b"), ["c"]]},
        {"batch_sampler": [np.array([2, 0]), [1.0]]},
    ],
)
def test_sampled_keys_reach_the_dataset_as_in_pytorch(torch, options):
    ours, theirs = key_recorder(Dataset)(), key_recorder(torch.utils.data.Dataset)()
    batches = [getattr(b, "tolist", lambda b=b: b)() for b in DataLoader(ours, **options)]
    expected = [
        getattr(b, "tolist", lambda b=b: b)()
        for b in torch.utils.data.DataLoader(theirs, **options)
    ]
    assert batches == expected
    assert ours.seen == theirs.seen


def test_sampled_float_keys_are_refused_by_tensor_datasets_as_in_pytorch(torch):
    from torch.utils.data import DataLoader as TorchLoader
    from torch.utils.data import TensorDataset as TorchTensorDataset

    for loader, dataset in (
        (DataLoader, rows_dataset(3)),
        (TorchLoader, TorchTensorDataset(torch.arange(3))),
    ):
        for batch_size in (2, None):
            with pytest.raises(IndexError):
                next(iter(loader(dataset, batch_size=batch_size, sampler=[1.0, 0.0])))


@settings(max_examples=15)
@given(n=st.integers(1, 30), batch_size=st.integers(1, 8), drop_last=st.booleans())
def test_batches_and_len_match_pytorch(n, batch_size, drop_last):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader as TorchLoader
    from torch.utils.data import TensorDataset as TorchTensorDataset

    ours = DataLoader(rows_dataset(n), batch_size=batch_size, drop_last=drop_last)
    theirs = TorchLoader(
        TorchTensorDataset(torch.arange(n * 3.0).reshape(n, 3), torch.arange(n)),
        batch_size=batch_size,
        drop_last=drop_last,
    )
    assert len(ours) == len(theirs)
    for (X, y), (TX, Ty) in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(X.numpy(), TX.numpy())
        np.testing.assert_array_equal(y.numpy(), Ty.numpy())


@settings(max_examples=15)
@given(
    n=st.integers(10, 200),
    fractions=st.sampled_from([[0.8, 0.2], [0.5, 0.3, 0.2], [0.1] * 10, [0.7, 0.15, 0.15]]),
)
def test_random_split_sizes_match_pytorch(n, fractions):
    torch = pytest.importorskip("torch")

    ours = [len(s) for s in random_split(rows_dataset(n), fractions)]
    theirs = [len(s) for s in torch.utils.data.random_split(range(n), fractions)]
    assert ours == theirs


def test_a_sampler_subclass_with_its_own_iter_decides_the_order():
    """The batching fast path reads our samplers' index arrays, but not past an override."""
    from nn.data import BatchSampler, DataLoader, SequentialSampler, TensorDataset

    class Reversed(SequentialSampler):
        def __iter__(self):
            return iter(range(len(self.data_source) - 1, -1, -1))

    assert list(BatchSampler(Reversed(range(5)), 2, False)) == [[4, 3], [2, 1], [0]]
    data = TensorDataset(autodiff.tensor(np.arange(5.0)))
    loader = DataLoader(data, batch_size=2, sampler=Reversed(data))
    assert [batch[0].tolist() for batch in loader] == [[4.0, 3.0], [2.0, 1.0], [0.0]]


def test_a_batch_sampler_subclass_with_its_own_iter_decides_the_batches():
    from nn.data import BatchSampler, DataLoader, SequentialSampler, TensorDataset

    class BackwardsInEachBatch(BatchSampler):
        def __iter__(self):
            for batch in super().__iter__():
                yield batch[::-1]

    data = TensorDataset(autodiff.tensor(np.arange(5.0)))
    sampler = BackwardsInEachBatch(SequentialSampler(data), 3, False)
    loader = DataLoader(data, batch_sampler=sampler)
    assert [batch[0].tolist() for batch in loader] == [[2.0, 1.0, 0.0], [4.0, 3.0]]


def test_getitems_of_a_dataset_subclass_is_used_for_batches_also_through_a_subset():
    """PyTorch's batch protocol: a dataset's ``__getitems__`` reads whole batches."""
    from nn.data import DataLoader, Subset, TensorDataset

    class Doubled(TensorDataset):
        def __getitems__(self, indices):
            return [(self.tensors[0][i] * 2,) for i in indices]

    data = Doubled(autodiff.tensor(np.arange(4.0)))
    assert next(iter(DataLoader(data, batch_size=4)))[0].tolist() == [0.0, 2.0, 4.0, 6.0]
    subset = Subset(data, [3, 1])
    assert next(iter(DataLoader(subset, batch_size=2)))[0].tolist() == [6.0, 2.0]
