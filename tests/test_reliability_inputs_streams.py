"""Reliability: what the process is started with. An output path that names an open descriptor (/dev/stdout,
/dev/fd/N, /proc/self/fd/N) is written through as a stream, never renamed over the file behind it; a closed
standard input and file or folder names that are not UTF-8 are one line and exit 2."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.cli_assertions import assert_one_line_error
from robustbench_bytes import files
from robustbench_bytes.cli import cli

CLI = f"{sys.executable} -m robustbench_bytes"


def shell(command: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, shell=True, cwd=cwd, capture_output=True, timeout=120,
                          executable="/bin/bash")


def assert_one_line_exit_2(proc: subprocess.CompletedProcess, needle: str):
    lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("Error: ") and needle in lines[0], proc.stderr


@pytest.mark.parametrize("target,redirect", [("/dev/stdout", ">>"), ("/dev/fd/3", "3>>"),
                                             ("/proc/self/fd/2", "2>>")])
def test_a_descriptor_appended_to_a_file_keeps_the_file_and_what_it_held(tmp_path, target, redirect):
    (tmp_path / "in.txt").write_text("an owl\n")
    log = tmp_path / "log.txt"
    log.write_text("earlier line\n")
    inode = log.stat().st_ino
    proc = shell(f"{CLI} noise apply --noise antspeak -o {target} in.txt {redirect} log.txt", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert log.read_text() == "earlier line\n A N O W L \n"
    assert log.stat().st_ino == inode  # the same file, written through, not a new one renamed over it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "log.txt"]


def test_a_symlink_to_a_descriptor_is_a_stream_too(tmp_path):
    link = tmp_path / "out"
    link.symlink_to("/dev/stdout")
    assert files.open_descriptor(link) == (os.getpid(), 1)
    assert files.open_descriptor("/dev/fd/0") == (os.getpid(), 0)
    (tmp_path / "plain.txt").write_text("x")
    assert files.open_descriptor(tmp_path / "plain.txt") is None
    assert files.open_descriptor(tmp_path / "missing.txt") is None
    assert files.write_target(link) == (link, False)


@pytest.mark.parametrize("command", ["noise apply --noise antspeak", "generate -m no-such-model --prompt-file -"])
def test_closed_standard_input_is_one_line(tmp_path, command):
    assert_one_line_exit_2(shell(f"{CLI} {command} 0<&-", tmp_path), "standard input is closed")


def test_empty_standard_input_is_an_empty_document(tmp_path):
    proc = shell(f"{CLI} noise apply --noise antspeak < /dev/null", tmp_path)
    assert proc.returncode == 0 and proc.stdout == b"", proc.stderr


def test_an_output_name_that_is_not_utf8_is_one_line_and_writes_nothing(tmp_path):
    (tmp_path / "in.txt").write_text("an owl\n")
    proc = shell(f"{CLI} noise apply --noise antspeak -o $'\\xff.txt' in.txt", tmp_path)
    assert_one_line_exit_2(proc, "\\xff.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]


def test_a_lone_surrogate_argument_is_one_line(runner, tmp_path):
    out = tmp_path / "report-\ud800"
    result = runner.invoke(cli, ["noise", "apply", "--noise", "antspeak", "-o", str(out)], input="an owl\n")
    assert_one_line_error(result, "not valid UTF-8", "\\ud800")
    assert list(tmp_path.iterdir()) == []


def test_a_corpus_folder_holding_a_file_name_that_is_not_utf8(runner, tiny_mamba, tiny_corpus):
    bad = os.path.join(os.fsencode(tiny_corpus), b"\xff.txt")
    with open(bad, "w") as f:
        f.write("a document\n")
    result = runner.invoke(cli, ["score", "--quiet", "--model", str(tiny_mamba), "--corpus", str(tiny_corpus)])
    assert_one_line_error(result, "\\xff.txt", "not valid UTF-8")
