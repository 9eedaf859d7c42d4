"""Writing files so that nothing is ever lost: ``atomic_write``.

Used by ``autodiff.save``, the dataset downloads, the graph pictures and the
notebook builder, so that every file the project writes is either the old one
or the complete new one, never half of it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", encoding: str | None = None):
    """Write to a temporary file beside ``path``, then rename it over ``path``.

    If the ``with`` block raises (a failed download, an interrupt, a full disk), the
    temporary file is removed and ``path`` is left as it was.  The new file gets the
    permissions a plain ``open`` would give it (``mkstemp`` makes them private).

    Example::

        with atomic_write("weights.npz") as file:
            np.savez(file, w=w)
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    handle, temp = tempfile.mkstemp(
        dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".part"
    )
    try:
        with os.fdopen(handle, mode, encoding=encoding) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp, 0o666 & ~_umask())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
