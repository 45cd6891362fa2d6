"""`robustbench noise list` and `robustbench noise apply`: output, determinism and every bad input."""

import json
import os
import subprocess
import sys

import pytest

from robustbench_bytes import noise
from robustbench_bytes.cli import cli

TEXT = "In the beginning God created the heaven and the earth.\r\nΣίσυφος straße 日本語 😀\n\nlast line"


@pytest.fixture
def run(runner):
    def run(args, input=None):
        return runner.invoke(cli, ["noise", *args], input=input)

    return run


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(TEXT.encode("utf-8"))
    return path


def test_antspeak_from_stdin_through_the_console_script(run):
    exe = os.path.join(os.path.dirname(sys.executable), "robustbench")
    cmd = [exe] if os.path.exists(exe) else [sys.executable, "-m", "robustbench_bytes"]
    done = subprocess.run(cmd + ["noise", "apply", "--noise", "antspeak"], input=b"an owl\n",
                          capture_output=True, check=True)
    assert done.stdout == b" A N O W L \n"


def test_same_seed_same_bytes_other_seed_other_bytes(text_file, run):
    first = run(["apply", "--noise", "drop:p=0.3", "--seed", "1", str(text_file)])
    again = run(["apply", "--noise", "drop:p=0.3", "--seed", "1", str(text_file)])
    other = run(["apply", "--noise", "drop:p=0.3", "--seed", "2", str(text_file)])
    assert first.exit_code == again.exit_code == other.exit_code == 0
    assert first.stdout_bytes == again.stdout_bytes != other.stdout_bytes
    assert first.stdout_bytes.decode("utf-8") == noise.apply(TEXT, "drop:p=0.3", seed=1)


def test_p_zero_gives_the_input_bytes(text_file, run):
    result = run(["apply", "--noise", "drop:p=0", str(text_file)])
    assert result.exit_code == 0 and result.stdout_bytes == text_file.read_bytes()


def test_output_file_is_written_whole(text_file, tmp_path, run):
    out = tmp_path / "out.txt"
    result = run(["apply", "--noise", "repeat:p=0.2", "--seed", "3", str(text_file), "-o", str(out)])
    assert result.exit_code == 0 and result.stdout_bytes == b""
    assert out.read_bytes().decode("utf-8") == noise.apply(TEXT, "repeat:p=0.2", seed=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.txt"]  # no temporary left


def test_doc_index_selects_the_documents_stream(text_file, run):
    result = run(["apply", "--noise", "swap:p=0.3", "--doc-index", "5", str(text_file)])
    assert result.stdout_bytes.decode() == noise.apply(TEXT, "swap:p=0.3", doc_index=5)


def test_empty_input_gives_empty_output(run):
    for spec in ["antspeak", "drop:p=0.5", "insert:p=1"]:
        result = run(["apply", "--noise", spec], input=b"")
        assert result.exit_code == 0 and result.stdout_bytes == b""


def assert_bad_input(result, *fragments):
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("spec, fragments", [
    ("dorp:p=0.1", ["noise spec 'dorp:p=0.1': unknown noise 'dorp' (did you mean: drop?)"]),
    ("drop:q=0.1", ["'drop:q=0.1'", "unknown parameter 'q'"]),
    ("drop:p", ["'drop:p'", "malformed parameter"]),
    ("drop:p=1.5", ["'drop:p=1.5'", "outside [0, 1]"]),
    ("repeat:p=0.1,max=0", ["max", "below 1"]),
    ("paper", ["'paper' is a preset"]),
    ("", ["empty"]),
])
def test_bad_specs_exit_2_with_one_line(spec, fragments, text_file, run):
    assert_bad_input(run(["apply", "--noise", spec, str(text_file)]), *fragments)


def test_invalid_utf8_names_file_and_offset(tmp_path, run):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"abc\xffdef")
    assert_bad_input(run(["apply", "--noise", "drop:p=0.1", str(bad)]), str(bad), "byte offset 3")
    assert_bad_input(run(["apply", "--noise", "drop:p=0.1"], input=b"\xc3("), "<stdin>", "byte offset 0")
    replaced = run(["apply", "--noise", "drop:p=0", "--errors", "replace", str(bad)])
    assert replaced.exit_code == 0 and replaced.stdout_bytes.decode("utf-8") == "abc\ufffddef"


def test_missing_input_and_output_directory(tmp_path, run):
    missing = tmp_path / "nope.txt"
    assert_bad_input(run(["apply", "--noise", "drop:p=0.1", str(missing)]), str(missing), "no such file")
    assert_bad_input(run(["apply", "--noise", "drop:p=0.1", "-o", str(tmp_path / "no" / "out.txt")],
                         input=b"x"), "does not exist")


def test_negative_seed_is_bad_usage(run):
    result = run(["apply", "--noise", "drop:p=0.1", "--seed", "-1"], input=b"x")
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_list_shows_every_noise_and_preset(run):
    result = run(["list"])
    assert result.exit_code == 0
    for name, n in noise.NOISES.items():
        line = next(l for l in result.stdout.splitlines() if l.split()[:1] == [name])
        assert n.definition in line and n.signature() in line
    for name, specs in noise.PRESETS.items():
        line = next(l for l in result.stdout.splitlines() if l.split()[:1] == [name])
        assert ", ".join(specs) in line
    listed = json.loads(run(["list", "--json"]).stdout)
    assert [n["name"] for n in listed["noises"]] == list(noise.NOISES)
    assert listed["presets"] == noise.PRESETS


def test_output_file_gets_ordinary_permissions(text_file, tmp_path, run):
    out = tmp_path / "fresh.txt"
    assert run(["apply", "--noise", "drop:p=0.1", str(text_file), "-o", str(out)]).exit_code == 0
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
    out.chmod(0o640)
    assert run(["apply", "--noise", "drop:p=0.1", str(text_file), "-o", str(out)]).exit_code == 0
    assert out.stat().st_mode & 0o777 == 0o640
