"""File I/O shared by every reader and writer: atomic writes (readers never see a half-written file, a kill
leaves the old file or the new one), JSON read with one-line errors, sha256 of a file, and a lock between processes."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from robustbench_bytes.errors import BadInput


def sha256_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextmanager
def exclusive_lock(path: Path | str, busy: Callable[[], Exception] | None = None) -> Iterator[None]:
    """Holds an exclusive lock on the file `path` (made, with its folder, if missing); the lock dies with the
    process (kill -9 included). While another process holds it: wait, or with `busy`, raise busy() at once."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (fcntl.LOCK_NB if busy else 0))
        except BlockingIOError:
            raise busy() from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_json(path: Path | str) -> Any:
    """A JSON file's value; BadInput naming the file (and line and column) when missing, unreadable or
    not valid UTF-8 JSON."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except UnicodeDecodeError as e:
        raise BadInput(f"{path}: not valid UTF-8 at byte offset {e.start}") from None
    except OSError as e:
        raise BadInput(f"{path}: cannot read ({e.strerror})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(f"{path}: not valid JSON at line {e.lineno} column {e.colno} ({e.msg})") from None


def _plain_mode(path: Path) -> int:
    """The mode a plain open(path, 'w') would give: the existing file's, else 0o666 less the umask
    (mkstemp creates 0o600)."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_target(path: Path | str) -> tuple[Path, bool]:
    """(the path to write, whether it can be replaced atomically). A symlink is followed: its target is
    written, the link stays. A regular file or a missing path is replaced atomically; a device, FIFO or
    socket (/dev/null, /dev/stdout, a named pipe) is written through, never replaced; a directory is
    refused (BadInput)."""
    path = Path(path)
    try:
        st = os.stat(path)  # follows symlinks
    except FileNotFoundError:
        return (Path(os.path.realpath(path)) if path.is_symlink() else path), True
    if stat.S_ISDIR(st.st_mode):
        raise BadInput(f"{path}: is a directory; expected a file to write")
    if stat.S_ISREG(st.st_mode):
        return Path(os.path.realpath(path)), True
    return path, False


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yields a temporary path to write to. For a regular file or a missing path (see write_target) it lies
    beside the target (named .NAME.*.tmp) and on success is synced and renamed over it; for a device or
    FIFO its content is then written through to it. On failure the temporary file is removed and the
    target is untouched. Missing parent folders of a new file are created."""
    target, atomic = write_target(path)
    if atomic:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    else:
        fd, tmp = tempfile.mkstemp(prefix=".robustbench-", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        if atomic:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.chmod(tmp, _plain_mode(target))
            os.replace(tmp, target)
        else:
            with open(tmp, "rb") as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if atomic:
        _fsync_dir(target.parent)
    else:
        Path(tmp).unlink(missing_ok=True)


def write_bytes_atomic(path: Path | str, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: Path | str, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))
