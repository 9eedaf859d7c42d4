"""Image datasets with torchvision's names: ``FashionMNIST``, ``MNIST``, and the bundled ``Digits``.

``FashionMNIST(root, train=True, transform=None, target_transform=None,
download=False)`` reads torchvision's folder layout,
``root/FashionMNIST/raw/train-images-idx3-ubyte`` (or ``.gz``) and the three other
files, so files that torchvision downloaded are found as they are.
``download=True`` fetches each missing file from a list of mirrors, checks its
MD5, and writes it atomically (a temporary file renamed into place, so an
interrupted download never leaves a file that a later run would trust).

    >>> from nn import datasets
    >>> from nn.transforms import ToTensor
    >>> train = datasets.FashionMNIST("data", train=True, download=True, transform=ToTensor())
    >>> image, label = train[0]          # float32 (1, 28, 28) in [0, 1], an int
    >>> train.classes[label]
    'Ankle boot'

``Digits`` is a real data set shipped inside the package (UCI handwritten digits,
1,797 images of 8x8 pixels, values 0..16; CC BY 4.0, see ``nn/resources/README.md``),
so training works with no network at all.

The mirrors can be replaced with the ``mirrors=`` argument or the environment
variables ``AUTODIFF_FASHION_MNIST_MIRRORS`` / ``AUTODIFF_MNIST_MIRRORS``
(URLs separated by commas or spaces); tests serve files from 127.0.0.1 this way.
Each file's download has an overall deadline (``deadline=`` or
``AUTODIFF_DOWNLOAD_DEADLINE``, in seconds, ``none`` for no limit; default 600),
besides ``timeout=`` for each wait on the server; a mirror that misses it is
reported and the next one is tried.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from autodiff import Tensor, constant
from autodiff.files import DEFAULT_MAX_EXPANSION, atomic_write, check_expansion, new_folders

from .data import Dataset, _batch_method, _check_index
from .transforms import is_batchable

__all__ = [
    "MNIST",
    "DatasetNotFoundError",
    "Digits",
    "DownloadError",
    "FashionMNIST",
    "download_deadline",
    "download_url",
    "read_idx",
    "write_idx",
]

RESOURCES = Path(__file__).with_name("resources")

# The IDX format: two zero bytes, a type code, the number of dimensions, then one
# big-endian uint32 per dimension, then the values (big-endian) in C order.
_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class DatasetNotFoundError(RuntimeError):
    """A dataset's files are not on disk (and were not downloaded)."""


class DownloadError(RuntimeError):
    """No mirror delivered a file with the expected checksum."""


def _read_bytes(path: Path) -> bytes:
    """The file's contents, decompressed when it is gzip (by its magic bytes, not its name)."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise RuntimeError(f"cannot read data file {path}: {error.strerror or error}") from None
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise RuntimeError(
            f"data file {path} is a corrupt or truncated gzip file ({error}); delete it and "
            "download it again"
        ) from None


def read_idx(
    path,
    expected_ndim: int | None = None,
    expected_dtype=None,
    *,
    max_expansion: float | None = DEFAULT_MAX_EXPANSION,
) -> np.ndarray:
    """Read an IDX file (MNIST's format; gzip-compressed or not) into a NumPy array.

    Checks the magic number (two zero bytes, a known type code, the number of
    dimensions), optionally that number of dimensions and the dtype, and that the
    file holds exactly ``prod(dims)`` values; every error names the file.  The
    header is read first and decompression stops at the size it declares, so a
    small gzip file that expands to gigabytes costs nothing; a header declaring
    more than ``max_expansion`` times the file's size (above 64 MiB) is refused
    (``max_expansion=None`` allows it).

        >>> read_idx("data/FashionMNIST/raw/t10k-labels-idx1-ubyte.gz").shape
        (10000,)
    """
    path = Path(path)
    try:
        file = open(path, "rb")  # noqa: SIM115 (closed below, with the gzip stream)
    except OSError as error:
        raise RuntimeError(f"cannot read data file {path}: {error.strerror or error}") from None
    with file:
        compressed = file.read(2) == b"\x1f\x8b"
        file.seek(0)
        stream = gzip.GzipFile(fileobj=file, mode="rb") if compressed else file
        try:
            return _read_idx_stream(stream, path, expected_ndim, expected_dtype, max_expansion)
        except (OSError, EOFError, zlib.error) as error:
            if not compressed:
                raise RuntimeError(f"cannot read data file {path}: {error}") from None
            raise RuntimeError(
                f"data file {path} is a corrupt or truncated gzip file ({error}); delete it and "
                "download it again"
            ) from None


def _read_exactly(stream, size: int) -> bytes:
    chunks, got = [], 0
    while got < size:
        chunk = stream.read(size - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _read_idx_stream(stream, path: Path, expected_ndim, expected_dtype, max_expansion):
    magic_bytes = _read_exactly(stream, 4)
    if len(magic_bytes) < 4:
        raise RuntimeError(
            f"data file {path} is not an IDX file: it holds {len(magic_bytes)} bytes, fewer "
            "than the 4-byte magic number"
        )
    zero1, zero2, type_code, ndim = magic_bytes
    magic = int.from_bytes(magic_bytes, "big")
    if zero1 or zero2 or type_code not in _IDX_TYPES:
        raise RuntimeError(
            f"data file {path} is not an IDX file: bad magic number 0x{magic:08x} (expected "
            "0x00000801 for labels or 0x00000803 for images)"
        )
    if expected_ndim is not None and ndim != expected_ndim:
        raise RuntimeError(
            f"data file {path}: expected an IDX file of {expected_ndim} dimension(s) (magic "
            f"0x0000080{expected_ndim}), got {ndim} dimension(s) (magic 0x{magic:08x}); is it "
            "the labels file in place of the images file, or the other way round?"
        )
    dtype = _IDX_TYPES[type_code]
    if expected_dtype is not None and dtype != np.dtype(expected_dtype):
        raise RuntimeError(
            f"data file {path}: expected values of type {np.dtype(expected_dtype)}, got {dtype}"
        )
    header = 4 + 4 * ndim
    sizes = _read_exactly(stream, 4 * ndim)
    if len(sizes) < 4 * ndim:
        raise RuntimeError(
            f"data file {path} is truncated: its header needs {header} bytes for {ndim} "
            f"dimensions, the file holds {4 + len(sizes)}"
        )
    dims = tuple(int.from_bytes(sizes[4 * i : 4 * i + 4], "big") for i in range(ndim))
    expected = math.prod(dims) * dtype.itemsize
    check_expansion(
        f"data file {path}",
        path.stat().st_size,
        expected,
        max_expansion,
        "read it with read_idx(path, max_expansion=None)",
    )
    array = np.empty(math.prod(dims), dtype=dtype)
    view = memoryview(array.view(np.uint8))
    filled = 0
    while filled < expected:
        got = stream.readinto(view[filled:])
        if not got:
            raise RuntimeError(
                f"data file {path} is truncated: its header announces dimensions {dims} "
                f"({expected} bytes of data), the file holds {filled} bytes of data; delete it "
                "and download it again"
            )
        filled += got
    if stream.read(1):
        raise RuntimeError(
            f"data file {path} is longer than its header says: its header announces dimensions "
            f"{dims} ({expected} bytes of data), the file holds more; delete it and download it "
            "again"
        )
    return array.reshape(dims).astype(dtype.newbyteorder("="), copy=False)


def write_idx(path, array) -> Path:
    """Write ``array`` as an IDX file (gzip-compressed when ``path`` ends in ``.gz``), atomically.

    The inverse of ``read_idx``: ``read_idx(write_idx("x-idx3-ubyte", a))`` equals ``a``.
    Useful to package your own images in MNIST's format.
    """
    path = Path(path)
    array = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in _IDX_TYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(
            f"write_idx: IDX files hold uint8, int8, int16, int32, float32 or float64 values, "
            f"got dtype {array.dtype}"
        )
    big_endian = array.astype(_IDX_TYPES[code], copy=False)
    header = bytes([0, 0, code, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    content = header + big_endian.tobytes()
    if path.suffix == ".gz":
        content = gzip.compress(content, mtime=0)
    with atomic_write(path) as out:
        out.write(content)
    return path


# -- downloading ----------------------------------------------------------------------------
class _PlainBar:
    """A progress bar for when tqdm is not installed: one line, redrawn in place."""

    def __init__(self, total, desc, file=None):
        self.total, self.desc, self.n = total, desc, 0
        self.file = file or sys.stderr
        self._last = -1

    def update(self, n):
        self.n += n
        if self.total:
            percent = int(100 * self.n / self.total)
            if percent != self._last:
                self._last = percent
                filled = percent // 4
                self.file.write(
                    f"\r{self.desc}: {percent:3d}% |{'#' * filled}{'.' * (25 - filled)}| "
                    f"{self.n}/{self.total} B"
                )
                self.file.flush()
        else:
            self.file.write(f"\r{self.desc}: {self.n} B")
            self.file.flush()

    def close(self):
        self.file.write("\n")
        self.file.flush()


def _progress_bar(total, desc):
    try:
        from tqdm import tqdm
    except ImportError:
        return _PlainBar(total, desc)
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, leave=False)


DEFAULT_DEADLINE = 600.0
DEADLINE_ENV = "AUTODIFF_DOWNLOAD_DEADLINE"


def download_deadline(deadline: float | None = None) -> float | None:
    """Seconds one file's download may take in all: ``deadline`` if given
    (``float("inf")``: no limit), else the ``AUTODIFF_DOWNLOAD_DEADLINE`` environment
    variable (``none`` for no limit), else 600.  None means no limit."""
    if deadline is None:
        text = os.environ.get(DEADLINE_ENV, "").strip()
        if not text:
            return DEFAULT_DEADLINE
        if text.lower() in ("none", "inf", "infinity"):
            return None
        try:
            deadline = float(text)
        except ValueError:
            raise ValueError(
                f"{DEADLINE_ENV}={text!r} is not a number of seconds (or 'none')"
            ) from None
    if deadline == math.inf:
        return None
    if not (math.isfinite(deadline) and deadline > 0):
        raise ValueError(
            f"the download deadline must be a positive number of seconds, got {deadline}"
        )
    return deadline


def download_url(
    url: str,
    path,
    md5: str | None = None,
    timeout: float = 30,
    progress: bool = True,
    deadline: float | None = None,
) -> Path:
    """Download ``url`` to ``path`` atomically, checking the MD5 if given.

    The bytes go to a temporary file next to ``path``; only a complete file whose
    length matches the server's ``Content-Length`` and whose MD5 matches ``md5`` is
    renamed to ``path``.  Anything else raises ``DownloadError`` and leaves no file.
    ``timeout`` bounds each wait for the server (connecting, each read);
    ``deadline`` bounds the whole file (default from ``download_deadline``: 600 s,
    or ``AUTODIFF_DOWNLOAD_DEADLINE``), so a mirror that trickles a byte at a time
    is given up in the end.
    """
    path = Path(path)
    deadline = download_deadline(deadline)
    start = time.monotonic()
    digest = hashlib.md5()
    received = 0
    request = urllib.request.Request(url, headers={"User-Agent": "autodiff-datasets/0.1"})
    with atomic_write(path) as out:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            if progress:
                print(f"Downloading {url}", file=sys.stderr, flush=True)
            length = r.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            bar = _progress_bar(total, path.name) if progress else None
            read = getattr(r, "read1", r.read)  # what has arrived, so the deadline is seen
            try:
                while chunk := read(1 << 16):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
                    if deadline is not None and time.monotonic() - start > deadline:
                        raise DownloadError(
                            f"{url}: gave up after the deadline of {deadline:g} s with {received}"
                            f"{f' of {total}' if total is not None else ''} bytes (set "
                            f"{DEADLINE_ENV} to allow longer)"
                        )
            finally:
                if bar is not None:
                    bar.close()
        if total is not None and received != total:
            raise DownloadError(f"{url}: the connection was cut after {received} of {total} bytes")
        if md5 is not None and digest.hexdigest() != md5:
            raise DownloadError(
                f"{url}: MD5 mismatch: got {digest.hexdigest()}, expected {md5} ({received} bytes)"
            )
    return path


def _mirrors_from(argument, env_var: str, default: list[str]) -> list[str]:
    if argument is not None:
        mirrors = [argument] if isinstance(argument, str) else list(argument)
    elif os.environ.get(env_var, "").strip():
        mirrors = os.environ[env_var].replace(",", " ").split()
    else:
        mirrors = list(default)
    return [m if m.endswith("/") else m + "/" for m in mirrors]


# -- the datasets ---------------------------------------------------------------------------
class _ArrayImages(Dataset):
    """A dataset of uint8 images held in one array, with torchvision's transform API."""

    data: Tensor
    targets: Tensor
    classes: list[str]

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.classes)}

    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, index):
        """``(image, target)``: the image is a uint8 (H, W) array passed through ``transform``."""
        index = _check_index(index, len(self), f"{type(self).__name__} ({self._split})")
        image = self.data.data[index].copy()  # the caller may change it; the data set stays
        target = int(self.targets.data[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def _fetch_batch(self, indices):
        """The fast path: one fancy index, then the transform on the whole batch."""
        if not is_batchable(self.transform) or self.target_transform is not None:
            return None
        if type(self).__getitem__ is not _ArrayImages.__getitem__ or _batch_method(self):
            return None  # a subclass that changes how samples are read is asked itself
        images = self.data.data[indices]
        if self.transform is not None:
            images = self.transform.batch(images)
        targets = self.targets.data[indices]
        return [constant(images), constant(targets)]

    @property
    def _split(self) -> str:
        return "train" if self.train else "test"

    def __repr__(self) -> str:
        lines = [
            f"Dataset {type(self).__name__}",
            f"    Number of datapoints: {len(self)}",
        ]
        if getattr(self, "root", None) is not None:
            lines.append(f"    Root location: {self.root}")
        lines.append(f"    Split: {'Train' if self.train else 'Test'}")
        if self.transform is not None:
            lines.append(f"    Transform: {self.transform!r}")
        if self.target_transform is not None:
            lines.append(f"    Target transform: {self.target_transform!r}")
        return "\n".join(lines)


class MNIST(_ArrayImages):
    """MNIST handwritten digits (60,000 training and 10,000 test images, 28x28, uint8).

    ``MNIST(root, train=True, transform=None, target_transform=None, download=False)``
    as in torchvision: files in ``root/MNIST/raw/``; ``.data`` is a uint8 tensor
    ``(N, 28, 28)``, ``.targets`` an int64 tensor ``(N,)``, ``ds[i]`` is
    ``(transform(image), target)`` with ``image`` a uint8 ``(28, 28)`` NumPy array
    (no PIL).  Keyword-only extras: ``mirrors`` (URLs tried in order; default from
    ``AUTODIFF_MNIST_MIRRORS`` or torchvision's list), ``timeout`` (seconds to wait for a
    server's answer) and ``deadline`` (seconds one file's download may take in all;
    default ``AUTODIFF_DOWNLOAD_DEADLINE`` or 600, see ``download_url``).
    """

    mirrors = [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ]
    mirrors_env = "AUTODIFF_MNIST_MIRRORS"
    image_shape = (28, 28)
    resources = [
        ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    ]
    classes = [
        "0 - zero",
        "1 - one",
        "2 - two",
        "3 - three",
        "4 - four",
        "5 - five",
        "6 - six",
        "7 - seven",
        "8 - eight",
        "9 - nine",
    ]

    def __init__(
        self,
        root,
        train: bool = True,
        transform=None,
        target_transform=None,
        download: bool = False,
        *,
        mirrors=None,
        timeout: float = 30,
        deadline: float | None = None,
    ):
        if isinstance(root, str):
            root = os.path.expanduser(root)
        self.root = root
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        self.timeout = timeout
        self.deadline = deadline
        self._mirrors = _mirrors_from(mirrors, self.mirrors_env, type(self).mirrors)
        if download:
            self.download()
        images_path = self._find(f"{'train' if train else 't10k'}-images-idx3-ubyte")
        labels_path = self._find(f"{'train' if train else 't10k'}-labels-idx1-ubyte")
        images = read_idx(images_path, expected_ndim=3, expected_dtype=np.uint8)
        labels = read_idx(labels_path, expected_ndim=1, expected_dtype=np.uint8)
        if images.shape[1:] != self.image_shape:
            raise RuntimeError(
                f"{type(self).__name__}: the images file {images_path} holds images of "
                f"{images.shape[1]}x{images.shape[2]} pixels; {type(self).__name__}'s are "
                f"{self.image_shape[0]}x{self.image_shape[1]}"
            )
        if len(images) == 0:
            raise RuntimeError(
                f"{type(self).__name__}: the images file {images_path} holds no images"
            )
        if len(images) != len(labels):
            raise RuntimeError(
                f"{type(self).__name__}: the images file {images_path} holds {len(images)} "
                f"images but the labels file {labels_path} holds {len(labels)} labels"
            )
        if len(labels) and labels.max() >= len(self.classes):
            raise RuntimeError(
                f"{type(self).__name__}: the labels file {labels_path} holds label "
                f"{int(labels.max())}, but there are only {len(self.classes)} classes"
            )
        self.data = constant(images)
        self.targets = constant(labels.astype(np.int64))

    @property
    def raw_folder(self) -> str:
        return os.path.join(self.root, type(self).__name__, "raw")

    def _find(self, stem: str) -> Path:
        """``stem`` or ``stem.gz`` in the raw folder, whichever is there (uncompressed first)."""
        folder = Path(self.raw_folder)
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
        raise DatasetNotFoundError(
            f"{type(self).__name__}: dataset not found: no {stem} or {stem}.gz in {folder}. "
            "You can use download=True to download it"
        )

    def _check_exists(self) -> bool:
        folder = Path(self.raw_folder)
        return all(
            (folder / name).is_file() or (folder / name.removesuffix(".gz")).is_file()
            for name, _ in self.resources
        )

    def download(self) -> None:
        """Fetch every missing file of the data set (all four, as torchvision does).

        Mirrors are tried in order; one that does not answer is skipped quietly, one
        whose transfer fails (cut, MD5 mismatch) is reported on stderr.  When no mirror
        delivers a file, ``DownloadError`` lists every mirror's failure.
        """
        if self._check_exists():
            return
        folder = Path(self.raw_folder)
        deadline = download_deadline(self.deadline)  # a bad setting fails before any request
        try:
            with new_folders(folder):  # a failed download leaves no empty folders behind
                self._download_into(folder, deadline)
        except (FileExistsError, NotADirectoryError) as error:  # a file on the way
            raise self._unwritable(folder, error) from None

    def _unwritable(self, folder: Path, error: OSError) -> PermissionError:
        return PermissionError(
            f"{type(self).__name__}: cannot write to the data folder {folder} "
            f"({error.strerror or error}); pass a root folder you can write to"
        )

    def _download_into(self, folder: Path, deadline) -> None:
        try:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
                pass
        except OSError as error:
            raise self._unwritable(folder, error) from None
        for filename, md5 in self.resources:
            if (folder / filename).is_file() or (folder / filename.removesuffix(".gz")).is_file():
                continue
            failures = []
            for mirror in self._mirrors:
                url = mirror + filename
                try:
                    download_url(
                        url,
                        folder / filename,
                        md5=md5,
                        timeout=self.timeout,
                        deadline=math.inf if deadline is None else deadline,
                    )
                    break
                except DownloadError as error:  # the transfer started, then failed
                    failures.append(str(error))
                    print(f"Failed to download (trying the next mirror): {error}", file=sys.stderr)
                except urllib.error.HTTPError as error:  # an answer, but not the file
                    failures.append(f"{url}: {error}")  # HTTP Error 404: Not Found
                except (urllib.error.URLError, OSError, ValueError) as error:  # no answer
                    failures.append(f"{url}: {getattr(error, 'reason', None) or error}")
            else:
                raise DownloadError(
                    f"{type(self).__name__}: could not download {filename} from any mirror:\n  "
                    + "\n  ".join(failures)
                )


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: 60,000 training and 10,000 test images of clothes, 28x28 uint8.

    The same API as ``MNIST`` (torchvision's): files in ``root/FashionMNIST/raw/``,
    ``.classes`` are the ten article names.  Mirrors: Zalando's S3 website, then the
    GitHub repository's ``data/fashion/`` (override with ``mirrors=`` or
    ``AUTODIFF_FASHION_MNIST_MIRRORS``).
    """

    mirrors = [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ]
    mirrors_env = "AUTODIFF_FASHION_MNIST_MIRRORS"
    resources = [
        ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    ]
    classes = [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ]


class Digits(_ArrayImages):
    """The bundled UCI handwritten digits: 1,797 images of 8x8 pixels, values 0..16 (uint8).

    ``Digits(root=None, train=True, transform=None, target_transform=None,
    download=False)``: the same API as ``MNIST`` (``root`` and ``download`` are
    accepted and unused: the data ships inside the package).  A fixed split, the
    same on every machine: a permutation seeded with 0, the first 1,437 images for
    training, the last 360 for testing.  ``ToTensor`` maps the 0..16 values to
    [0, 16/255]; ``Normalize((0.0,), (16 / 255,))`` after it rescales them to [0, 1].

    Source: E. Alpaydin and C. Kaynak (1998), UCI Machine Learning Repository,
    CC BY 4.0 (``nn/resources/README.md``).
    """

    classes = MNIST.classes
    n_test = 360
    split_seed = 0
    _cache: tuple[np.ndarray, np.ndarray] | None = None

    def __init__(
        self, root=None, train: bool = True, transform=None, target_transform=None, download=False
    ):
        self.root = root
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        images, labels = self._load()
        order = np.random.default_rng(self.split_seed).permutation(len(labels))
        chosen = order[: -self.n_test] if train else order[-self.n_test :]
        self.data = constant(images[chosen])
        self.targets = constant(labels[chosen])

    @classmethod
    def _load(cls) -> tuple[np.ndarray, np.ndarray]:
        if cls._cache is None:
            path = RESOURCES / "digits.csv.gz"
            try:
                table = np.loadtxt(_read_bytes(path).decode("ascii").splitlines(), delimiter=",")
            except ValueError as error:
                raise RuntimeError(
                    f"Digits: the bundled file {path} is corrupt ({error})"
                ) from None
            if table.ndim != 2 or table.shape[1] != 65:
                raise RuntimeError(
                    f"Digits: the bundled file {path} should have 65 columns (64 pixels and a "
                    f"label), got shape {table.shape}"
                )
            images = table[:, :64].astype(np.uint8).reshape(-1, 8, 8)
            labels = table[:, 64].astype(np.int64)
            Digits._cache = (images, labels)
        return Digits._cache
