"""nn.datasets: the IDX reader's checks, FashionMNIST/MNIST on synthetic files in
torchvision's layout (gz and raw), downloads from a local HTTP server, Digits."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import autodiff
from nn import datasets
from nn.data import DataLoader
from nn.datasets import (
    MNIST,
    DatasetNotFoundError,
    Digits,
    DownloadError,
    FashionMNIST,
    read_idx,
    write_idx,
)
from nn.transforms import ToTensor

FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def synthetic(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(
        np.uint8
    )


def write_split(raw: Path, train: bool, n: int, gz: bool, seed: int = 0):
    raw.mkdir(parents=True, exist_ok=True)
    images, labels = synthetic(n, seed)
    suffix = ".gz" if gz else ""
    write_idx(raw / (FILES[train][0] + suffix), images)
    write_idx(raw / (FILES[train][1] + suffix), labels)
    return images, labels


# -- the IDX reader -----------------------------------------------------------------------
@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    "dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64], ids=str
)
def test_idx_round_trip(tmp_path, gz, dtype):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    path = write_idx(tmp_path / ("a-idx3-ubyte" + (".gz" if gz else "")), array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, array)


@settings(max_examples=25)
@given(
    array=hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
    ),
    gz=st.booleans(),
)
def test_idx_round_trip_any_shape(tmp_path_factory, array, gz):
    folder = tmp_path_factory.mktemp("idx")
    back = read_idx(write_idx(folder / ("x.gz" if gz else "x"), array))
    assert back.shape == array.shape and back.dtype == array.dtype
    np.testing.assert_array_equal(back, array)


def test_idx_header_layout_is_mnists(tmp_path):
    path = write_idx(tmp_path / "labels", np.array([3, 1, 4], np.uint8))
    assert path.read_bytes() == bytes.fromhex("00000801 00000003 030104")


def bad_file(tmp_path, content: bytes, name="x-idx3-ubyte") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\x00", "fewer than the 4-byte magic number"),
        (b"PK\x03\x04" + bytes(20), "bad magic number 0x504b0304"),
        (bytes.fromhex("00000803 00000002 0000001c"), "truncated: its header needs 16 bytes"),
        (
            bytes.fromhex("00000803 00000002 00000002 00000002") + bytes(7),
            r"truncated: its header announces dimensions \(2, 2, 2\) \(8 bytes of data\), "
            "the file holds 7",
        ),
        (
            bytes.fromhex("00000801 00000002") + bytes(3),
            "longer than its header says",
        ),
    ],
    ids=["short", "magic", "header", "truncated", "extra"],
)
def test_idx_reader_errors_name_the_file(tmp_path, content, message):
    path = bad_file(tmp_path, content)
    with pytest.raises(RuntimeError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_idx_reader_checks_dimensions_dtype_and_gzip(tmp_path):
    labels = write_idx(tmp_path / "labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(RuntimeError, match=r"expected an IDX file of 3 dimension\(s\).*got 1"):
        read_idx(labels, expected_ndim=3)
    floats = write_idx(tmp_path / "f-idx1", np.zeros(4, np.float32))
    with pytest.raises(RuntimeError, match="expected values of type uint8, got >f4"):
        read_idx(floats, expected_dtype=np.uint8)
    whole = gzip.compress(bytes.fromhex("00000801 00000004") + bytes(4))
    cut = bad_file(tmp_path, whole[: len(whole) // 2], "cut.gz")
    with pytest.raises(RuntimeError, match="corrupt or truncated gzip") as info:
        read_idx(cut)
    assert str(cut) in str(info.value)
    with pytest.raises(RuntimeError, match="cannot read data file"):
        read_idx(tmp_path / "missing")


# -- FashionMNIST and MNIST on local files -------------------------------------------------
@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_fashion_mnist_reads_torchvision_layout(tmp_path, gz):
    raw = tmp_path / "FashionMNIST" / "raw"
    images, labels = write_split(raw, True, 12, gz, seed=1)
    test_images, test_labels = write_split(raw, False, 5, gz, seed=2)
    train = FashionMNIST(root=str(tmp_path), train=True)
    test = FashionMNIST(root=tmp_path, train=False, transform=ToTensor())
    assert len(train) == 12 and len(test) == 5
    assert train.data.dtype == np.uint8 and train.data.shape == (12, 28, 28)
    assert train.targets.dtype == np.int64 and train.targets.tolist() == labels.tolist()
    np.testing.assert_array_equal(train.data.numpy(), images)
    image, target = train[3]
    assert isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.shape == (28, 28)
    assert isinstance(target, int) and target == labels[3]
    x, y = test[-1]
    assert x.shape == (1, 28, 28) and x.dtype == np.float32
    np.testing.assert_allclose(x.numpy()[0], test_images[-1] / 255, rtol=1e-6)
    assert y == test_labels[-1]
    assert train.classes[9] == "Ankle boot" and train.class_to_idx["T-shirt/top"] == 0
    assert train.raw_folder == str(tmp_path / "FashionMNIST" / "raw")
    assert "Number of datapoints: 12" in repr(train)


def test_target_transform_and_loader_over_a_dataset(tmp_path):
    write_split(tmp_path / "MNIST" / "raw", False, 70, gz=True)
    ds = MNIST(tmp_path, train=False, transform=ToTensor(), target_transform=lambda t: t * 10)
    assert ds[0][1] == int(ds.targets[0].item()) * 10
    X, y = next(iter(DataLoader(ds, batch_size=64)))
    assert X.shape == (64, 1, 28, 28) and y.dtype == np.int64
    assert y.tolist() == (ds.targets.numpy()[:64] * 10).tolist()
    assert MNIST.classes[0] == "0 - zero"


def test_index_out_of_range_and_bad_index(tmp_path):
    write_split(tmp_path / "FashionMNIST" / "raw", False, 3, gz=False)
    ds = FashionMNIST(tmp_path, train=False)
    with pytest.raises(IndexError, match=r"FashionMNIST \(test\): index 3 is out of range .* 3"):
        ds[3]
    with pytest.raises(IndexError, match="index -4"):
        ds[-4]
    with pytest.raises(TypeError, match="index must be an integer, got str"):
        ds["0"]
    assert ds[np.int64(2)][1] == ds[-1][1] == ds[autodiff.tensor(2)][1]


FLOAT_KEYS = [1.0, -0.5, np.float32(1), np.float64(2.0)]


def test_float_index_is_an_index_error_as_in_torchvision(tmp_path):
    """torchvision's MNIST reads ``self.data[index]`` from a uint8 tensor, which refuses a
    float with IndexError; so do ours (also through a ConcatDataset and a loader)."""
    write_split(tmp_path / "FashionMNIST" / "raw", False, 3, gz=False)
    for ds in (FashionMNIST(tmp_path, train=False), Digits(train=False)):
        name = type(ds).__name__
        for key in [*FLOAT_KEYS, autodiff.tensor(1.0)]:
            with pytest.raises(IndexError, match=rf"{name} \(test\): only integers .*"):
                ds[key]
        with pytest.raises(IndexError, match="only integers"):
            (ds + ds)[len(ds) + 0.5]
        with pytest.raises(IndexError, match="only integers"):
            next(iter(DataLoader(ds, batch_size=2, sampler=[1.0, 0.0])))
        with pytest.raises(TypeError, match="index must be an integer, got bool"):
            ds[True]


def test_float_index_errors_are_those_of_a_torch_tensor(torch):
    """What torchvision's ``self.data[index]`` raises for the same keys."""
    data = torch.zeros(3, 28, 28, dtype=torch.uint8)
    for key in [*FLOAT_KEYS, torch.tensor(1.0)]:
        with pytest.raises(IndexError):
            data[key]


def test_missing_files_say_how_to_get_them(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="download=True") as info:
        FashionMNIST(tmp_path, train=True)
    assert "train-images-idx3-ubyte" in str(info.value)


def test_mismatched_images_and_labels(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    write_split(raw, True, 6, gz=False)
    write_idx(raw / "train-labels-idx1-ubyte", np.zeros(5, np.uint8))
    with pytest.raises(RuntimeError, match=r"holds 6 images but the labels file .* holds 5 labels"):
        FashionMNIST(tmp_path)
    write_idx(raw / "train-labels-idx1-ubyte", np.full(6, 10, np.uint8))
    with pytest.raises(RuntimeError, match="label 10, but there are only 10 classes"):
        FashionMNIST(tmp_path)
    # labels where the images should be
    write_idx(raw / "train-images-idx3-ubyte", np.zeros(6, np.uint8))
    with pytest.raises(RuntimeError, match="labels file in place of the images file"):
        FashionMNIST(tmp_path)


def test_unwritable_root_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(PermissionError, match=r"cannot write to the data folder .*a-file"):
        FashionMNIST(blocker / "data", download=True, mirrors=["http://127.0.0.1:9/"])


# -- downloads from a local server ---------------------------------------------------------
class Handler(http.server.BaseHTTPRequestHandler):
    """Routes: /good/<f> serves f; /wrong/<f> serves other bytes; /cut/<f> sends half and
    hangs up; /hang/<f> answers too late for t10k-images (404 for the rest); /trickle/<f>
    sends a byte every 50 ms (20 s at most); anything else is a 404."""

    files: dict[str, bytes] = {}
    log: list[str] = []

    def do_GET(self):
        type(self).log.append(self.path)
        _, route, name = self.path.split("/", 2)
        body = self.files.get(name)
        if route == "hang" and name.startswith("t10k-images"):  # too late, and wrong bytes
            time.sleep(3)
            route = "wrong"
        if route == "trickle" and body is not None:  # one byte at a time, for ever
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                for i in range(min(len(body), 400)):
                    self.wfile.write(body[i : i + 1])
                    self.wfile.flush()
                    time.sleep(0.05)
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        if body is None or route not in ("good", "wrong", "cut"):
            self.send_error(404)
            return
        if route == "wrong":
            body = body[:-1] + bytes([body[-1] ^ 1])
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            if route == "cut":
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the late mirror)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch, tmp_path_factory):
    """A local mirror with the four FashionMNIST files (synthetic) and their MD5s."""
    source = tmp_path_factory.mktemp("mirror")
    write_split(source, True, 8, gz=True, seed=3)
    write_split(source, False, 4, gz=True, seed=4)
    files = {p.name: p.read_bytes() for p in source.iterdir()}
    resources = [
        (name, hashlib.md5(files[name]).hexdigest())
        for name in (
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
        )
    ]
    monkeypatch.setattr(FashionMNIST, "resources", resources)
    monkeypatch.setattr(Handler, "files", files)
    monkeypatch.setattr(Handler, "log", [])
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def listing(root: Path) -> list[str]:
    folder = root / "FashionMNIST" / "raw"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_success_and_files_found_afterwards(server, tmp_path, capsys):
    ds = FashionMNIST(tmp_path, train=True, download=True, mirrors=[server + "/good"])
    assert len(ds) == 8 and len(FashionMNIST(tmp_path, train=False)) == 4
    assert listing(tmp_path) == sorted(name for name, _ in FashionMNIST.resources)
    assert len(Handler.log) == 4
    assert "Downloading " + server + "/good/train-images-idx3-ubyte.gz" in capsys.readouterr().err
    FashionMNIST(tmp_path, download=True, mirrors=[server + "/good"])
    assert len(Handler.log) == 4, "files on disk are not fetched again"


def test_mirror_list_from_the_environment(server, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTODIFF_FASHION_MNIST_MIRRORS", f"{server}/missing, {server}/good")
    ds = FashionMNIST(tmp_path, train=False, download=True)
    assert len(ds) == 4
    assert Handler.log[:2] == [
        "/missing/train-images-idx3-ubyte.gz",
        "/good/train-images-idx3-ubyte.gz",
    ]


def test_a_failing_mirror_falls_over_to_the_next(server, tmp_path, capsys):
    mirrors = [server + "/missing", server + "/cut", server + "/good"]
    ds = FashionMNIST(tmp_path, download=True, mirrors=mirrors)
    assert len(ds) == 8
    assert Handler.log[:3] == [
        f"/{r}/train-images-idx3-ubyte.gz" for r in ("missing", "cut", "good")
    ]
    err = capsys.readouterr().err
    assert "connection was cut" in err and "/missing/" not in err
    assert not [n for n in listing(tmp_path) if n.startswith(".")], "no temporary file left behind"


def test_md5_mismatch_leaves_no_file(server, tmp_path):
    with pytest.raises(DownloadError, match="MD5 mismatch") as info:
        FashionMNIST(tmp_path, download=True, mirrors=[server + "/wrong"])
    assert "train-images-idx3-ubyte.gz" in str(info.value)
    assert listing(tmp_path) == []


def test_cut_connection_leaves_no_partial_file(server, tmp_path):
    with pytest.raises(DownloadError, match=r"cut after .* of .* bytes"):
        FashionMNIST(tmp_path, download=True, mirrors=[server + "/cut"])
    assert listing(tmp_path) == []
    with pytest.raises(DatasetNotFoundError):
        FashionMNIST(tmp_path)
    # a later run with a working mirror completes the data set
    assert len(FashionMNIST(tmp_path, download=True, mirrors=[server + "/good"])) == 8


def test_a_mirror_that_does_not_answer_in_time_is_skipped(server, tmp_path, capsys):
    mirrors = [server + "/hang", server + "/good"]
    ds = FashionMNIST(tmp_path, train=False, download=True, mirrors=mirrors, timeout=1)
    assert len(ds) == 4
    # had the client waited, the late answer's wrong bytes would have been reported
    assert "MD5 mismatch" not in capsys.readouterr().err
    assert listing(tmp_path) == sorted(name for name, _ in FashionMNIST.resources)


def test_an_interrupted_download_leaves_no_file(server, tmp_path, monkeypatch):
    class Interrupting:
        def update(self, n):
            raise KeyboardInterrupt

        def close(self):
            pass

    monkeypatch.setattr(datasets, "_progress_bar", lambda total, desc: Interrupting())
    with pytest.raises(KeyboardInterrupt):
        FashionMNIST(tmp_path, download=True, mirrors=[server + "/good"])
    assert listing(tmp_path) == []


def test_download_url_without_a_checksum(server, tmp_path):
    path = datasets.download_url(
        server + "/good/t10k-labels-idx1-ubyte.gz", tmp_path / "labels.gz", progress=False
    )
    assert read_idx(path).shape == (4,)


def test_unreachable_mirrors_list_every_failure(tmp_path):
    with pytest.raises(DownloadError, match=r"from any mirror:\n  http://127.0.0.1:9/") as info:
        FashionMNIST(
            tmp_path, download=True, mirrors=["http://127.0.0.1:9/", "http://127.0.0.1:9/b"]
        )
    assert str(info.value).count("http://127.0.0.1:9/") == 2


def test_plain_progress_bar_without_tqdm(server, tmp_path, monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_tqdm(name, *args, **kwargs):
        if name == "tqdm":
            raise ImportError("no tqdm")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    FashionMNIST(tmp_path, download=True, mirrors=[server + "/good"])
    assert "100% |#########################|" in capsys.readouterr().err


# -- the bundled digits --------------------------------------------------------------------
def test_digits_split_and_api():
    train, test = Digits(train=True), Digits(train=False)
    assert len(train) == 1437 and len(test) == 360
    assert train.data.dtype == np.uint8 and train.data.shape == (1437, 8, 8)
    assert int(train.data.numpy().max()) == 16 and train.targets.dtype == np.int64
    counts = np.bincount(np.concatenate([train.targets.numpy(), test.targets.numpy()]))
    assert counts.tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    # train and test partition the file's rows
    images, labels = Digits._load()
    rows = lambda d: np.hstack([d.data.numpy().reshape(len(d), 64), d.targets.numpy()[:, None]])  # noqa: E731
    together = np.vstack([rows(train), rows(test)])
    full = np.hstack([images.reshape(-1, 64), labels[:, None]])
    np.testing.assert_array_equal(np.unique(together, axis=0), np.unique(full, axis=0))
    assert len(together) == len(full)
    np.testing.assert_array_equal(Digits(train=False).targets.numpy(), test.targets.numpy())
    image, label = Digits(train=False, transform=ToTensor())[0]
    assert image.shape == (1, 8, 8) and isinstance(label, int)
    assert (Path(datasets.__file__).parent / "resources" / "README.md").read_text().count("CC BY")


# -- bad files and slow mirrors (issue 12) -------------------------------------------------
def test_images_of_the_wrong_size_are_refused(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw / "train-images-idx3-ubyte", np.zeros((6, 8, 8), np.uint8))
    write_idx(raw / "train-labels-idx1-ubyte", np.zeros(6, np.uint8))
    with pytest.raises(RuntimeError, match=r"images of 8x8 pixels; FashionMNIST's are 28x28"):
        FashionMNIST(tmp_path)
    write_idx(raw / "train-images-idx3-ubyte", np.zeros((0, 28, 28), np.uint8))
    write_idx(raw / "train-labels-idx1-ubyte", np.zeros(0, np.uint8))
    with pytest.raises(RuntimeError, match="holds no images"):
        FashionMNIST(tmp_path)


def test_idx_gzip_is_read_header_first_and_stops_at_the_declared_size(tmp_path):
    import tracemalloc

    # 10 labels announced, 64 MiB of zeros behind them, and a cut end no reader should reach
    header = bytes.fromhex("00000801 0000000a") + bytes(10)
    compressor = gzip.compress(header + bytes(64 * 2**20), mtime=0)
    path = bad_file(tmp_path, compressor[:-16], "bomb-idx1-ubyte.gz")
    tracemalloc.start()
    try:
        with pytest.raises(RuntimeError, match="longer than its header says"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20, f"decompressed far past the header's size ({peak} bytes)"
    # a header that announces 10**9 images in a small file is refused before any allocation
    huge = gzip.compress(bytes.fromhex("00000803 3b9aca00 0000001c 0000001c") + bytes(1000))
    with pytest.raises(RuntimeError, match=r"decompression bomb.*max_expansion=None"):
        read_idx(bad_file(tmp_path, huge, "huge-idx3-ubyte.gz"))


def test_a_trickling_mirror_is_given_up_at_the_deadline(server, tmp_path, capsys, monkeypatch):
    mirrors = [server + "/trickle", server + "/good"]
    ds = FashionMNIST(tmp_path, train=False, download=True, mirrors=mirrors, deadline=0.5)
    assert len(ds) == 4
    assert "gave up after the deadline of 0.5 s" in capsys.readouterr().err
    assert listing(tmp_path) == sorted(name for name, _ in FashionMNIST.resources)
    monkeypatch.setenv("AUTODIFF_DOWNLOAD_DEADLINE", "0.3")  # the documented setting
    with pytest.raises(DownloadError, match=r"deadline of 0\.3 s"):
        FashionMNIST(tmp_path / "again", download=True, mirrors=[server + "/trickle"])
    assert not (tmp_path / "again").exists()
    monkeypatch.setenv("AUTODIFF_DOWNLOAD_DEADLINE", "soon")
    with pytest.raises(ValueError, match="AUTODIFF_DOWNLOAD_DEADLINE='soon'"):
        FashionMNIST(tmp_path / "again", download=True, mirrors=[server + "/good"])
    assert not (tmp_path / "again").exists()
    assert datasets.download_deadline(5) == 5
    monkeypatch.setenv("AUTODIFF_DOWNLOAD_DEADLINE", "none")
    assert datasets.download_deadline() is None


def run_cli(*argv, env=None):
    import os
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-m", "autodiff_cli", *map(str, argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **(env or {})},
    )


def test_the_cli_names_every_mirrors_failure_in_one_line(server, tmp_path):
    mirrors = f"{server}/missing {server}/wrong"
    child = run_cli(
        "train", "--dataset", "fashion-mnist", "--data-dir", tmp_path / "data",
        env={"AUTODIFF_FASHION_MNIST_MIRRORS": mirrors},
    )  # fmt: skip
    _, err = child.communicate(timeout=120)
    assert child.returncode == 2
    line = err.strip().splitlines()[-1]
    assert line.startswith("autodiff train: error: FashionMNIST is not available")
    assert "HTTP Error 404" in line and "MD5 mismatch" in line
    assert f"{server}/missing/" in line and f"{server}/wrong/" in line
    assert "Traceback" not in err
    assert not (tmp_path / "data").exists()


def wait_for_a_partial_download(tmp_path) -> Path:
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        parts = list(raw.glob(".*.part")) if raw.exists() else []
        if parts:
            return parts[0]
        time.sleep(0.01)
    pytest.fail("the download never started")


@pytest.mark.parametrize("signum", ["SIGTERM", "SIGKILL"])
def test_a_signal_mid_download_leaves_nothing_behind(server, tmp_path, signum):
    import signal

    env = {"AUTODIFF_FASHION_MNIST_MIRRORS": f"{server}/trickle"}
    child = run_cli("train", "--dataset", "fashion-mnist", "--data-dir", tmp_path / "data", env=env)
    try:
        part = wait_for_a_partial_download(tmp_path)
        child.send_signal(getattr(signal, signum))
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    if signum == "SIGTERM":  # cleaned up like Ctrl-C
        assert child.returncode == 143
        assert err.strip().splitlines()[-1] == "autodiff train: terminated"
        assert "Traceback" not in err
        assert not (tmp_path / "data").exists()
        return
    assert child.returncode == -signal.SIGKILL and part.exists()  # nobody could clean up
    # the next download of the same file removes what the killed one left
    ds = FashionMNIST(tmp_path / "data", download=True, mirrors=[server + "/good"])
    assert len(ds) == 8
    assert not list(part.parent.glob(".*.part"))
