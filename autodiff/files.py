"""Writing files so that nothing is ever lost: ``atomic_write``.

Used by ``autodiff.save``, the dataset downloads, the graph pictures and the
notebook builder, so that every file the project writes is either the old one
or the complete new one, never half of it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import threading
import time

__all__ = ["atomic_write", "check_expansion", "new_folders"]

# Errors of the disk rather than of a path: they carry no file name, so the user's
# path is added to them.  Network errors raised inside the block are left alone.
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS}
# Temporary files written before they carried their writer's process id; one left for
# longer than this was abandoned by a killed process.
_LEGACY_STALE_SECONDS = 3600
# check_expansion: the default ratio, and the size below which anything is allowed
DEFAULT_MAX_EXPANSION = 100.0
EXPANSION_FLOOR = 64 * 2**20


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _pid_is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, but belongs to someone else
        return True
    return True


def _remove_stale_temporaries(directory: str, name: str) -> None:
    """Remove ``.NAME.<pid>-xxxxxxxx.part`` files whose writer no longer runs.

    A process killed with SIGKILL (or a power cut) cannot clean up after itself; the
    next write to the same target does it.  Temporaries of live writers are kept.
    """
    if os.name != "posix":  # os.kill(pid, 0) would not be a harmless probe there
        return
    ours = re.compile(rf"\.{re.escape(name)}\.(\d+)-[a-z0-9_]{{8}}\.part")
    legacy = re.compile(rf"\.{re.escape(name)}\.[a-z0-9_]{{8}}\.part")
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    now = time.time()
    for entry in entries:
        match = ours.fullmatch(entry.name)
        try:
            if match:
                stale = not _pid_is_alive(int(match.group(1)))
            elif legacy.fullmatch(entry.name):
                stale = now - entry.stat(follow_symlinks=False).st_mtime > _LEGACY_STALE_SECONDS
            else:
                continue
            if stale and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
        except OSError:  # removed meanwhile, or not ours to remove
            continue


_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


class _SigtermRaises:
    """While writing, SIGTERM unwinds like Ctrl-C does (so the temporary file is removed)
    and then exits with status 143, as the default action would.  Only in the main
    thread, and only when nobody installed their own SIGTERM handler.

    ``with guard.held():`` holds a SIGTERM back until the block ends: the temporary
    file is created inside it, so that an exit never leaves a file whose name was not
    yet known to the code that removes it.
    """

    def __init__(self):
        self._holding = False
        self._pending = None
        self._previous = None

    def _terminate(self, signum, frame):
        if self._holding:
            self._pending = signum
            return
        raise SystemExit(128 + signum)

    def __enter__(self):
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        ):
            self._previous = signal.signal(signal.SIGTERM, self._terminate)
        return self

    def __exit__(self, *exc_info):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
        return False

    @contextlib.contextmanager
    def held(self):
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
        if self._pending is not None:
            raise SystemExit(128 + self._pending)


def _naming(error: OSError, path: str, name: str) -> OSError:
    """``error`` about the temporary file, retold about ``path`` (the name the user gave)."""
    if type(error).__module__ != "builtins" or error.errno is None:
        return error
    if error.filename is None:
        if error.errno not in _DISK_ERRNOS:
            return error
    else:
        temp = os.path.basename(os.fspath(error.filename))
        if not (temp.startswith(f".{name}.") and temp.endswith(".part")):
            return error
    return OSError(error.errno, error.strerror, path)


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", encoding: str | None = None):
    """Write to a temporary file beside ``path``, then rename it over ``path``.

    If the ``with`` block raises (a failed download, an interrupt, SIGTERM, a full
    disk), the temporary file is removed and ``path`` is left as it was; temporary
    files of writers that were killed outright (SIGKILL) are removed by the next
    write to the same ``path``.  A symlink is written through (its target is
    replaced, the link stays); an existing file keeps its permissions, a new one
    gets those a plain ``open`` would give it.  Errors name ``path``, not the
    temporary file.

    Example::

        with atomic_write("weights.npz") as file:
            np.savez(file, w=w)
    """
    path = os.fspath(path)
    target = os.path.realpath(path)  # through symlinks: the link stays a link
    directory, name = os.path.split(target)
    try:
        mode_bits = os.stat(target).st_mode & 0o7777
    except OSError:
        mode_bits = 0o666 & ~_umask()
    _remove_stale_temporaries(directory, name)
    try:
        with _SigtermRaises() as sigterm:
            temp = None
            try:
                with sigterm.held():
                    # the name is known before the file exists: a KeyboardInterrupt or
                    # the CLI's SIGTERM exception right after creating it (mkstemp's
                    # return) would otherwise leave a file nobody knows to remove
                    for _ in range(100):
                        temp = os.path.join(
                            directory, f".{name}.{os.getpid()}-{os.urandom(4).hex()}.part"
                        )
                        try:
                            handle = os.open(temp, _NEW_FILE_FLAGS, 0o600)
                            break
                        except FileExistsError:  # another writer's: not ours to remove
                            temp = None
                    else:
                        raise FileExistsError(errno.EEXIST, "no free temporary name", directory)
                with os.fdopen(handle, mode, encoding=encoding) as file:
                    yield file
                    file.flush()
                    os.fsync(file.fileno())
                os.chmod(temp, mode_bits)
                os.replace(temp, target)
            except BaseException:
                if temp is not None:
                    with contextlib.suppress(OSError):
                        os.unlink(temp)
                raise
    except OSError as error:
        renamed = _naming(error, path, name)
        if renamed is error:
            raise
        raise renamed from None


@contextlib.contextmanager
def new_folders(folder):
    """Make ``folder`` and its missing parents; if the ``with`` block then raises, remove
    the ones made here that are still empty, so a failed command leaves no empty folders.

    Example::

        with new_folders("data/MNIST/raw"), atomic_write("data/MNIST/raw/x.gz") as f:
            ...
    """
    folder = os.path.abspath(os.fspath(folder))
    made = []
    while not os.path.lexists(folder):
        made.append(folder)  # deepest first
        folder = os.path.dirname(folder)
    if made:
        os.makedirs(made[0], exist_ok=True)
    try:
        yield
    except BaseException:
        for path in made:
            try:
                os.rmdir(path)
            except OSError:
                break  # not empty (files that did arrive), or not ours to remove
        raise


def check_expansion(what: str, stored: int, declared: int, max_expansion, allow: str) -> None:
    """Refuse data that declares far more bytes than the file holds (a decompression bomb).

    ``declared`` bytes are allowed up to ``max_expansion`` times ``stored`` (the
    file's size), and always up to 64 MiB; ``max_expansion=None`` allows anything.
    ``allow`` tells the user how to allow it.  Weights and images compress at most a
    few times; zeros compress a thousandfold.
    """
    if max_expansion is None or declared <= max(EXPANSION_FLOOR, max_expansion * stored):
        return
    raise RuntimeError(
        f"{what} declares {declared / 2**20:.0f} MiB of data in a file of "
        f"{stored / 2**20:.1f} MiB ({declared / max(stored, 1):.0f} times larger; the limit is "
        f"{max_expansion:g} times): refused as a likely decompression bomb. If you trust the "
        f"file, {allow}"
    )
