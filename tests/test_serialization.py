"""``autodiff.save`` / ``autodiff.load``: npz whatever the extension, atomic writes,
structure round trips, and no unpickling ever."""

from __future__ import annotations

import io
import os
import pickle
import zipfile

import numpy as np
import pytest
from _helpers import assert_same_outputs_as_pytorch
from hypothesis import given, settings
from hypothesis import strategies as st

import autodiff
import nn


def lecture_model():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10))


def test_state_dict_round_trip_through_a_pth_file(tmp_path):
    model = lecture_model()
    path = tmp_path / "model.pth"
    autodiff.save(model.state_dict(), path)
    assert zipfile.is_zipfile(path)  # an .npz archive, whatever the extension
    with np.load(path, allow_pickle=False) as archive:  # readable by plain NumPy, by name
        np.testing.assert_array_equal(archive["1.weight"], model[1].weight.data)
    loaded = autodiff.load(path, weights_only=True)
    assert list(loaded) == list(model.state_dict())
    assert all(isinstance(v, autodiff.Tensor) for v in loaded.values())
    fresh = lecture_model()
    fresh.load_state_dict(loaded)
    x = autodiff.rand(2, 1, 28, 28)
    np.testing.assert_array_equal(fresh(x).data, model(x).data)
    assert loaded["1.weight"].dtype == np.float32


def test_nested_structures_numbers_and_int_keys_round_trip(tmp_path):
    obj = {
        "epoch": 3,
        "lr": 0.1,
        "best": float("inf"),
        "name": "run-1",
        "flags": [True, None, (1, 2.5)],
        "model": {"w": autodiff.tensor([[1.0, 2.0]]), "b": np.arange(3, dtype=np.int64)},
        "state": {0: {"step": 2.0, "exp_avg": autodiff.zeros(2, dtype=autodiff.float64)}},
        "param": nn.Parameter(autodiff.ones(2)),
    }
    path = tmp_path / "checkpoint.anything"
    autodiff.save(obj, path)
    back = autodiff.load(path)
    assert back["epoch"] == 3 and back["lr"] == 0.1 and back["best"] == float("inf")
    assert back["name"] == "run-1" and back["flags"] == [True, None, (1, 2.5)]
    assert isinstance(back["model"]["w"], autodiff.Tensor)
    np.testing.assert_array_equal(back["model"]["w"].data, [[1.0, 2.0]])
    assert isinstance(back["model"]["b"], np.ndarray) and back["model"]["b"].dtype == np.int64
    assert list(back["state"]) == [0] and back["state"][0]["step"] == 2.0
    assert back["state"][0]["exp_avg"].dtype == np.float64
    assert back["param"].requires_grad


def test_optimizer_state_dict_round_trips(tmp_path):
    model = lecture_model()
    opt = nn.optim.Adam(model.parameters(), lr=0.01)
    model(autodiff.rand(4, 1, 28, 28)).sum().backward()
    opt.step()
    autodiff.save(opt.state_dict(), tmp_path / "opt.pt")
    back = autodiff.load(tmp_path / "opt.pt")
    sd = opt.state_dict()
    assert back["param_groups"] == sd["param_groups"]
    for key, state in sd["state"].items():
        for field, value in state.items():
            got = back["state"][key][field]
            np.testing.assert_array_equal(getattr(got, "data", got), getattr(value, "data", value))
    fresh = nn.optim.Adam(model.parameters(), lr=0.5)
    fresh.load_state_dict(back)
    assert fresh.param_groups[0]["lr"] == 0.01 and fresh.param_groups[0]["betas"] == (0.9, 0.999)


def test_file_objects_work(tmp_path):
    buffer = io.BytesIO()
    autodiff.save({"a": autodiff.ones(2)}, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(autodiff.load(buffer)["a"].data, [1.0, 1.0])


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path, monkeypatch):
    path = tmp_path / "model.pth"
    autodiff.save({"a": autodiff.ones(2)}, path)
    before = path.read_bytes()

    def broken_write_array(file, array, **kwargs):
        file.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np.lib.format, "write_array", broken_write_array)
    with pytest.raises(OSError, match="disk full"):
        autodiff.save({"a": autodiff.zeros(2)}, path)
    assert path.read_bytes() == before  # the old file is intact
    assert os.listdir(tmp_path) == ["model.pth"]  # and no temporary file is left


def test_unsavable_objects_get_a_clear_error(tmp_path):
    with pytest.raises(TypeError, match=r"cannot save a Sequential.*state dict instead"):
        autodiff.save(lecture_model(), tmp_path / "m.pth")
    with pytest.raises(TypeError, match=r"\['x'\] has dtype object"):
        autodiff.save({"x": np.array([object()])}, tmp_path / "m.pth")
    assert not (tmp_path / "m.pth").exists()


def test_load_never_unpickles(tmp_path):
    class Boom:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    pickled = tmp_path / "evil.pth"
    pickled.write_bytes(pickle.dumps({"w": Boom()}))
    with pytest.raises(RuntimeError, match=r"never unpickles|not a file written by autodiff\.save"):
        autodiff.load(pickled, weights_only=False)
    objects = tmp_path / "objects.npz"
    np.savez(objects, w=np.array([{"a": 1}], dtype=object))
    with pytest.raises(RuntimeError, match="Python objects"):
        autodiff.load(objects)
    assert not (tmp_path / "pwned").exists()


def test_plain_npz_loads_as_a_dict_of_tensors(tmp_path):
    path = tmp_path / "weights.npz"
    np.savez(path, **{"0.weight": np.ones((2, 3), np.float32), "0.bias": np.zeros(2, np.float32)})
    loaded = autodiff.load(path)
    model = nn.Sequential(nn.Linear(3, 2))
    model.load_state_dict(loaded)
    np.testing.assert_array_equal(model[0].weight.data, 1.0)


def test_map_location_cpu_is_accepted_and_gpus_are_not(tmp_path):
    autodiff.save({"a": autodiff.ones(1)}, tmp_path / "a.pt")
    assert autodiff.load(tmp_path / "a.pt", map_location="cpu")["a"].item() == 1.0
    with pytest.raises(RuntimeError, match="CPU only"):
        autodiff.load(tmp_path / "a.pt", map_location="cuda:0")


@pytest.mark.torch
def test_weights_move_from_pytorch_through_npz(torch, tmp_path):
    theirs = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(784, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10)
    )
    np.savez(tmp_path / "from_torch.npz", **{k: v.numpy() for k, v in theirs.state_dict().items()})
    ours = lecture_model()
    ours.load_state_dict(autodiff.load(tmp_path / "from_torch.npz"))
    assert_same_outputs_as_pytorch(ours, theirs, seed=0)
    torch.save(theirs.state_dict(), tmp_path / "torch.pth")
    with pytest.raises(RuntimeError, match="PyTorch"):
        autodiff.load(tmp_path / "torch.pth")


# -- numpy.load sees exactly the keys; keys never collide ----------------------------------
def test_a_state_dict_opens_in_numpy_as_exactly_its_keys(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    path = tmp_path / "model.pth"
    autodiff.save(model.state_dict(), path)
    with np.load(path, allow_pickle=False) as archive:
        assert archive.files == list(model.state_dict())
        assert archive["1.num_batches_tracked"].dtype == np.int64
    nested = {"model": model.state_dict(), "epoch": 3}
    autodiff.save(nested, tmp_path / "checkpoint.pth")  # not flat: the structure rides along
    assert autodiff.load(tmp_path / "checkpoint.pth")["epoch"] == 3


@pytest.mark.parametrize(
    "keys",
    [["x", "x.npy"], ["x.npy", "x"], ["file", "allow_pickle", "args"], ["a\x00b", "a"], ["", "."]],
    ids=["npy-suffix", "npy-suffix-first", "savez-keywords", "nul", "empty"],
)
def test_member_names_never_collide(tmp_path, keys):
    values = {key: autodiff.tensor([float(i)]) for i, key in enumerate(keys)}
    autodiff.save(values, tmp_path / "m.pth")
    back = autodiff.load(tmp_path / "m.pth")
    assert list(back) == keys
    for key in keys:
        np.testing.assert_array_equal(back[key].data, values[key].data)


@settings(max_examples=40, deadline=None)
@given(keys=st.lists(st.text(max_size=6), min_size=1, max_size=4, unique=True))
def test_any_keys_round_trip(tmp_path_factory, keys):
    path = tmp_path_factory.mktemp("keys") / "m.pth"
    values = {key: autodiff.full((2,), float(i)) for i, key in enumerate(keys)}
    autodiff.save(values, path)
    back = autodiff.load(path)
    assert list(back) == keys
    assert [float(v.data[0]) for v in back.values()] == list(range(len(keys)))


# -- files that cannot be read: one error naming the file and the cause ---------------------
def saved_model(tmp_path) -> bytes:
    autodiff.save(lecture_model().state_dict(), tmp_path / "good.pth")
    return (tmp_path / "good.pth").read_bytes()


def load_error(path, **kwargs) -> str:
    with pytest.raises(RuntimeError) as info:
        autodiff.load(path, **kwargs)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    return message.replace(str(path), "FILE")


def test_truncated_empty_and_corrupt_archives(tmp_path):
    good = saved_model(tmp_path)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good[: len(good) // 2])
    assert "truncated: not a complete zip archive" in load_error(cut)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    assert "is empty (0 bytes)" in load_error(empty)
    flipped = bytearray(good)
    flipped[len(good) // 3] ^= 0xFF  # inside the first weight's data
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(bytes(flipped))
    assert "Bad CRC-32" in load_error(corrupt)
    with pytest.raises(IsADirectoryError):
        autodiff.load(tmp_path)


def test_bare_npy_and_string_arrays(tmp_path):
    np.save(tmp_path / "one.npy", np.arange(3.0))
    np.testing.assert_array_equal(autodiff.load(tmp_path / "one.npy").data, [0.0, 1.0, 2.0])
    np.save(tmp_path / "words.npy", np.array(["a", "bc"]))
    assert "dtype <U2 (text)" in load_error(tmp_path / "words.npy")
    np.savez(tmp_path / "strings.npz", w=np.array(["a"]), b=np.zeros(2))
    message = load_error(tmp_path / "strings.npz")
    assert "member w.npy" in message and "(text)" in message
    with open(tmp_path / "half.npy", "wb") as file:
        np.lib.format.write_array(file, np.zeros(1000))
    data = (tmp_path / "half.npy").read_bytes()
    (tmp_path / "half.npy").write_bytes(data[:-100])
    assert "truncated" in load_error(tmp_path / "half.npy")


def write_members(path, members: dict) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for member, array in members.items():
            with zf.open(member, "w") as file:
                np.lib.format.write_array(file, np.asarray(array))


@pytest.mark.parametrize(
    "structure",
    [
        "not json",
        '{"format": "autodiff.save/1", "structure": {"tensor": "missing"}}',
        '{"format": "autodiff.save/1", "structure": {"dict": [["a"]]}}',
        '{"format": "autodiff.save/1", "structure": {"what": 1}}',
        '{"format": "autodiff.save/1", "structure": {"list": 3}}',
        "[1, 2]",
    ],
    ids=["text", "missing-array", "short-item", "unknown-node", "not-a-list", "not-an-object"],
)
def test_a_malformed_structure_entry(tmp_path, structure):
    path = tmp_path / "odd.pth"
    write_members(path, {"__autodiff_structure__.npy": np.array(structure), "a.npy": np.ones(2)})
    assert "malformed structure entry" in load_error(path)


def test_pickle_is_named_only_for_pickles(tmp_path):
    (tmp_path / "p.pth").write_bytes(pickle.dumps({"w": [1.0, 2.0]}))
    assert "pickled Python objects" in load_error(tmp_path / "p.pth")
    (tmp_path / "random.pth").write_bytes(np.random.default_rng(0).bytes(4096))
    (tmp_path / "text.pth").write_text("epoch,loss\n1,0.5\n")
    for name in ("random.pth", "text.pth"):
        message = load_error(tmp_path / name)
        assert "pickle" not in message and "not a file written by autodiff.save" in message
    assert "root:" in load_error("/etc/passwd")
    assert "not a regular file" in load_error("/dev/zero")


def test_declared_sizes_out_of_proportion_are_refused_before_allocating(tmp_path):
    # a header that announces 10**12 values in a file of a few bytes: no MemoryError
    path = tmp_path / "huge.pth"
    with zipfile.ZipFile(path, "w") as zf:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)}
        )
        zf.writestr("w.npy", header.getvalue() + bytes(16))
    assert "truncated: its header declares shape (1000000000000,)" in load_error(path)
    # a compressed archive that expands a thousandfold: refused unless allowed
    bomb = tmp_path / "bomb.npz"
    np.savez_compressed(bomb, w=np.zeros(9 * 2**20))  # 72 MiB of zeros in ~70 KiB
    message = load_error(bomb)
    assert "decompression bomb" in message and "max_expansion=None" in message
    assert autodiff.load(bomb, max_expansion=None)["w"].shape == (9 * 2**20,)


# -- load_state_dict: all or nothing --------------------------------------------------------
def test_load_state_dict_checks_every_value_before_the_first_copy():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    before = {k: v.data.copy() for k, v in model.state_dict().items()}
    state = {k: np.full(v.shape, 7, v.data.dtype) for k, v in model.state_dict().items()}
    state["1.num_batches_tracked"] = np.array("many")  # last key, an int buffer
    with pytest.raises(RuntimeError, match=r"1\.num_batches_tracked.*<U4") as info:
        model.load_state_dict(state)
    assert "0.weight" not in str(info.value)
    for key, value in model.state_dict().items():  # nothing was overwritten
        np.testing.assert_array_equal(value.data, before[key])
    state["1.num_batches_tracked"] = np.array(3.0)  # numbers into numbers: fine
    state["0.bias"] = np.ones(4, np.complex64)
    with pytest.raises(RuntimeError, match=r"0\.bias.*complex"):
        model.load_state_dict(state)
    state["0.bias"] = ["not", "numbers", "at", "all"]
    with pytest.raises(TypeError, match=r"'0\.bias'"):
        model.load_state_dict(state)
    state["0.bias"] = np.ones(4)
    model.load_state_dict(state)
    assert model[1].num_batches_tracked.item() == 3 and model[0].weight.data[0, 0] == 7


# -- PyTorch, both ways, without pickle (issue 16) ------------------------------------------
@pytest.mark.torch
def test_state_dict_round_trip_with_pytorch_through_numpy(torch, tmp_path):
    """Train here, load into the same class written with torch (via numpy.load, strict),
    continue training there, come back through numpy.savez: the same function each time."""

    def ours_model():
        return nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
            nn.Linear(4 * 8 * 8, 10),
        )  # fmt: skip

    def theirs_model():
        return torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
            torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, 10),
        )  # fmt: skip

    rng = np.random.default_rng(0)
    X = rng.random((16, 1, 8, 8), dtype=np.float32)
    y = rng.integers(0, 10, 16)
    ours = ours_model()
    optimizer = nn.optim.SGD(ours.parameters(), lr=0.1)
    for _ in range(3):
        nn.CrossEntropyLoss()(ours(autodiff.tensor(X)), autodiff.tensor(y)).backward()
        optimizer.step()
        optimizer.zero_grad()
    autodiff.save(ours.state_dict(), tmp_path / "model.pth")

    theirs = theirs_model()
    with np.load(tmp_path / "model.pth", allow_pickle=False) as archive:
        assert archive.files == list(theirs.state_dict())  # exactly the keys, nothing more
        theirs.load_state_dict({k: torch.from_numpy(v) for k, v in archive.items()})
    ours.eval()
    theirs.eval()
    with torch.no_grad():
        np.testing.assert_allclose(
            theirs(torch.from_numpy(X)).numpy(),
            ours(autodiff.tensor(X)).detach().numpy(),
            atol=1e-5,
        )
    assert int(theirs[1].num_batches_tracked) == 3

    theirs.train()
    torch_optimizer = torch.optim.SGD(theirs.parameters(), lr=0.1)
    for _ in range(2):
        loss = torch.nn.CrossEntropyLoss()(theirs(torch.from_numpy(X)), torch.from_numpy(y))
        loss.backward()
        torch_optimizer.step()
        torch_optimizer.zero_grad()
    back = {k: v.detach().numpy() for k, v in theirs.state_dict().items()}
    np.savez(tmp_path / "from_torch.npz", **back)
    ours.load_state_dict(autodiff.load(tmp_path / "from_torch.npz"))
    theirs.eval()
    with torch.no_grad():
        np.testing.assert_allclose(
            ours(autodiff.tensor(X)).detach().numpy(),
            theirs(torch.from_numpy(X)).numpy(),
            atol=1e-5,
        )
    assert ours[1].num_batches_tracked.item() == 5
