"""Reliability, class 1: writing output never replaces what is not a regular file, and never half-writes.

Regular files and missing paths are replaced atomically; a symlink's target is replaced and the link kept;
devices and FIFOs are written through; a directory, an impossible path or a failing write is one line
and exit 2, with the user's file untouched."""

import errno
import os
import stat
import subprocess
import sys
import threading

import pytest

from robustbench_bytes import files
from support.cli_assertions import assert_one_line_error
from robustbench_bytes.cli import cli


def apply(runner, output, text="an owl\n"):
    return runner.invoke(cli, ["noise", "apply", "--noise", "antspeak", "-o", str(output)], input=text)


def test_dev_null_stays_a_device(runner):
    result = apply(runner, "/dev/null")
    assert result.exit_code == 0, result.output
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_fifo_is_written_through_and_stays_a_fifo(runner, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    result = apply(runner, fifo)
    reader.join(timeout=10)
    assert result.exit_code == 0, result.output
    assert got == [" A N O W L \n"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_symlink_keeps_its_link_and_its_target_gets_the_text(runner, tmp_path):
    target = tmp_path / "real.txt"
    target.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    assert apply(runner, link).exit_code == 0
    assert link.is_symlink() and target.read_text() == " A N O W L \n"
    dangling = tmp_path / "dangling.txt"
    dangling.symlink_to(tmp_path / "not-yet.txt")
    assert apply(runner, dangling).exit_code == 0
    assert dangling.is_symlink() and (tmp_path / "not-yet.txt").read_text() == " A N O W L \n"


def test_an_existing_directory_is_refused(runner, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep.txt").write_text("mine")
    assert_one_line_error(apply(runner, tmp_path / "d"), "is a directory")
    assert (tmp_path / "d" / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("path,needle", [("/proc/version", "/proc"), ("/nonexistent-dir/x.txt", "does not exist")])
def test_impossible_paths_are_one_line(runner, path, needle):
    assert_one_line_error(apply(runner, path), needle)


def test_a_failing_write_leaves_the_old_file_and_no_temporary(runner, tmp_path, monkeypatch):
    out = tmp_path / "out.txt"
    out.write_text("precious")

    def full_disk(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(files.os, "replace", full_disk)
    assert_one_line_error(apply(runner, out), "No space left on device", str(out))
    assert out.read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_an_exception_inside_the_writer_keeps_the_original(tmp_path):
    out = tmp_path / "x.json"
    out.write_text("old")
    with pytest.raises(RuntimeError):
        with files.atomic_path(out) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert out.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_report_into_a_file_path_is_refused(runner, tmp_path):
    from support.run_fakes import write_fake_run

    write_fake_run(tmp_path / "run", {"clean": {"m": 2.0}})
    (tmp_path / "taken").write_text("mine")
    result = runner.invoke(cli, ["report", str(tmp_path / "run"), "-o", str(tmp_path / "taken")])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert (tmp_path / "taken").read_text() == "mine"


def test_closed_stdout_is_assert_one_line_error(tmp_path):
    text = tmp_path / "in.txt"
    text.write_text("an owl\n" * 1000)
    proc = subprocess.run(f"{sys.executable} -m robustbench_bytes noise apply --noise antspeak {text} >&-",
                          shell=True, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in proc.stderr, proc.stderr
