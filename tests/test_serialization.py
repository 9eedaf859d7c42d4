"""``autodiff.save`` / ``autodiff.load``: npz whatever the extension, atomic writes,
structure round trips, and no unpickling ever."""

from __future__ import annotations

import io
import os
import pickle
import zipfile

import numpy as np
import pytest

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

    def broken_savez(file, **arrays):
        file.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
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
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(
        ours(autodiff.tensor(x)).data,
        theirs(torch.tensor(x)).detach().numpy(),
        rtol=1e-5,
        atol=1e-6,
    )
    torch.save(theirs.state_dict(), tmp_path / "torch.pth")
    with pytest.raises(RuntimeError, match="PyTorch"):
        autodiff.load(tmp_path / "torch.pth")
