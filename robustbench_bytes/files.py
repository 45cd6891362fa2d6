"""File I/O shared by every reader and writer: atomic writes (readers never see a half-written file, a kill
leaves the old file or the new one), JSON read with one-line errors, sha256 of a file, and a lock between processes."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import sys
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


def read_bytes(path: Path, what: str = "file") -> bytes:
    """The file's bytes; BadInput naming it when it is missing, a directory or unreadable."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise BadInput(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a directory, expected a {what}") from None
    except OSError as e:
        raise BadInput(f"{path}: cannot read ({e.strerror})") from None


def read_json(path: Path | str, expected: str = "") -> Any:
    """A JSON file's value; BadInput naming the file when missing, unreadable, not valid UTF-8 or not JSON
    that parses whole (see parse_json). `expected`: what the file should hold, quoted in the error."""
    return parse_json(read_bytes(Path(path), "JSON file"), str(path), expected)


# a \uXXXX escape of a surrogate: the only way a JSON text can hold a lone one
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def parse_json(text: str | bytes, where: str, expected: str = "", line: int | None = None) -> Any:
    """The value of a JSON text, or BadInput naming `where` (the file), the place and `expected`; `line`: the
    line of the file that `text` is (a .jsonl record), counted in the place. The one parser of every JSON input: besides syntax errors it turns
    into BadInput what json.loads raises on input it parses only partly (a number of more digits than
    Python converts; arrays or objects nested deeper than its recursion limit) and a string holding a lone
    surrogate (\\ud800), which no UTF-8 output could hold."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BadInput(f"{_line_of(where, line)}: not valid UTF-8 at byte offset {e.start}"
                           f"{_expecting(expected)}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(f"{where}: not valid JSON at {_place(text, e.pos, line)} ({e.msg}){_expecting(expected)}") \
            from None
    except RecursionError:
        raise BadInput(f"{_line_of(where, line)}: arrays or objects nested too deep to read (deeper than about "
                       f"{sys.getrecursionlimit()} levels){_expecting(expected)}") from None
    except ValueError:  # int() refused a number of too many digits
        limit = sys.get_int_max_str_digits()
        long = re.search(r"\d{%d,}" % (limit + 1), text)
        at = f" at {_place(text, long.start(), line)}" if long else ""
        raise BadInput(f"{where}: a number{at} has more digits than can be read ({limit} at most)"
                       f"{_expecting(expected)}") from None
    if _SURROGATE_ESCAPE.search(text):
        _refuse_lone_surrogates(value, _line_of(where, line), expected)
    return value


def _place(text: str, pos: int, first_line: int | None) -> str:
    """'line L column C' of character offset pos of text, whose first line is the file's first_line."""
    line = text.count("\n", 0, pos) + (first_line or 1)
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"line {line} column {column}"


def _line_of(where: str, line: int | None) -> str:
    return where if line is None else f"{where}:{line}"


def _expecting(expected: str) -> str:
    return f"; expected {expected}" if expected else ""


def _refuse_lone_surrogates(value: Any, where: str, expected: str) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as e:
                raise BadInput(f"{where}: a string holds a lone surrogate ({item[e.start]!a}), which is not "
                               f"valid Unicode{_expecting(expected)}") from None


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


# /proc/PID/fd (and a thread's /proc/PID/task/TID/fd): the folder whose entries are a process's open files;
# /dev/stdout, /dev/stderr and /dev/fd/N lead there
_FD_FOLDER = re.compile(r"^/proc/(\d+)(?:/task/\d+)?/fd$")


def open_descriptor(path: Path | str) -> tuple[int, int] | None:
    """(process id, descriptor number) when `path`, through its symlinks, names an open file descriptor
    (/dev/stdout, /dev/fd/N, /proc/self/fd/N, ...), else None. Such a path is a stream: the file behind it
    (a terminal, a pipe, or the file a shell redirected into) must be written through, never replaced."""
    current = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on links followed
        folder, name = os.path.split(current)
        folder = os.path.realpath(folder)
        found = _FD_FOLDER.match(folder)
        if found and name.isdigit():
            return int(found.group(1)), int(name)
        current = os.path.join(folder, name)
        if not os.path.islink(current):
            return None
        current = os.path.normpath(os.path.join(folder, os.readlink(current)))
    return None


def write_target(path: Path | str) -> tuple[Path, bool]:
    """(the path to write, whether it can be replaced atomically). A symlink is followed: its target is
    written, the link stays. A regular file or a missing path is replaced atomically; an open descriptor
    (/dev/stdout, /dev/fd/N, /proc/self/fd/N, whatever is behind it: see open_descriptor), a device, FIFO or
    socket (/dev/null, a named pipe) is written through, never replaced; a directory is refused (BadInput)."""
    path = Path(path)
    try:
        st = os.stat(path)  # follows symlinks
    except FileNotFoundError:
        return (Path(os.path.realpath(path)) if path.is_symlink() else path), True
    if stat.S_ISDIR(st.st_mode):
        raise BadInput(f"{path}: is a directory; expected a file to write")
    if stat.S_ISREG(st.st_mode) and open_descriptor(path) is None:
        return Path(os.path.realpath(path)), True
    return path, False


def _write_through(source: Path, target: Path) -> None:
    """Copies `source` into a stream target: a descriptor of this process is written at its own position
    (a file appended to by the shell stays appended to, with what came before it kept); another stream is
    opened for appending (a device or FIFO ignores that; a regular file behind another process's descriptor
    is not cut)."""
    descriptor = open_descriptor(target)
    if descriptor is not None and descriptor[0] == os.getpid():
        for stream in (sys.stdout, sys.stderr):  # what Python still buffers goes first
            if stream is not None:
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
        with open(source, "rb") as src, open(os.dup(descriptor[1]), "wb", closefd=True) as dst:
            shutil.copyfileobj(src, dst)
        return
    with open(source, "rb") as src, open(target, "ab") as dst:
        shutil.copyfileobj(src, dst)


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yields a temporary path to write to. For a regular file or a missing path (see write_target) it lies
    beside the target (named .NAME.*.tmp) and on success is synced and renamed over it; for a stream (a
    descriptor, device or FIFO) its content is then written through to it (_write_through). On failure the
    temporary file is removed and the target is untouched. Missing parent folders of a new file are created."""
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
            _write_through(Path(tmp), target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if atomic:
        _fsync_dir(target.parent)
    else:
        Path(tmp).unlink(missing_ok=True)


# what this tool leaves in a folder it writes besides its outputs: the lock of run_lock and the temporaries
# of atomic_path that a kill can leave (.NAME.*.tmp)
def is_leftover(path: Path) -> bool:
    """Whether `path` is a lock or temporary file this tool leaves behind (never a user's file)."""
    name = path.name
    return path.is_file() and (name == ".lock" or (name.startswith(".") and name.endswith(".tmp")))


def check_output_dir(out: Path | str, ours: Callable[[Path], bool], what: str) -> None:
    """The one rule for a command that writes into a folder (run --out, report -o, train --out): the folder is
    missing, empty (but for this tool's leftovers, see is_leftover, also in empty subfolders), or one this
    tool wrote (`ours(out)`, e.g. a run directory). Anything else is someone's folder: BadInput, nothing
    written. `what`: the kind of folder `ours` accepts, for the message (e.g. "a run directory (no
    results.json)")."""
    out = Path(out)
    if not out.exists():
        if out.is_symlink():
            raise BadInput(f"{out}: a symlink to a missing folder; expected a folder to write into")
        return
    if not out.is_dir():
        raise BadInput(f"{out}: exists and is not a directory")
    if _only_leftovers(out) or ours(out):
        return
    raise BadInput(f"{out}: a folder that is not empty and not {what}; choose another output folder "
                   f"(a missing or empty one)")


def _only_leftovers(folder: Path) -> bool:
    folders = [folder]
    while folders:
        for entry in folders.pop().iterdir():
            if entry.is_dir() and not entry.is_symlink():
                folders.append(entry)
            elif not is_leftover(entry):
                return False
    return True


def write_bytes_atomic(path: Path | str, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: Path | str, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))
