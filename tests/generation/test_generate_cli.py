"""`robustbench generate` through click's CliRunner: the printed continuation, the --json object, speculative
output equal to plain greedy output, Ctrl-C (what was generated, exit 130), and bad input (one line, exit 2)."""

import json

import pytest

from robustbench_bytes import generation as gen
from robustbench_bytes.cli import cli
from robustbench_bytes.models import checkpoint
from support.tiny_decoders import BPE, tiny_bpe, tiny_byte_mamba, tiny_subword_mamba

from click.testing import CliRunner


@pytest.fixture(scope="module")
def byte_dir(tmp_path_factory):
    model = tiny_byte_mamba()
    folder = tmp_path_factory.mktemp("byte")
    checkpoint.save_pretrained(model.module, folder, model.module.config.to_dict())
    return str(folder)


@pytest.fixture(scope="module")
def subword_dir(tmp_path_factory):
    tiny_bpe()
    model = tiny_subword_mamba()
    folder = tmp_path_factory.mktemp("subword")
    checkpoint.save_pretrained(model.module, folder, model.module.config.to_dict(), tokenizer_json=BPE["json"])
    return str(folder)


def run(*args):
    return CliRunner().invoke(cli, ["generate", *args])


def test_prints_the_continuation_and_json_with_the_contract_fields(byte_dir, subword_dir):
    plain = run("--model", byte_dir, "--prompt", "In the", "--max-bytes", "30", "--json")
    assert plain.exit_code == 0, plain.output
    record = json.loads(plain.stdout)
    assert {"text", "bytes", "seconds", "bytes_per_second"} <= set(record) and record["bytes"] == 30
    assert "drafts" not in record
    text = run("--model", byte_dir, "--prompt", "In the", "--max-bytes", "30", "-q")
    assert text.exit_code == 0 and text.stdout == record["text"] + "\n"
    spec = run("--model", byte_dir, "--draft", subword_dir, "--prompt", "In the", "--max-bytes", "30", "--json")
    assert spec.exit_code == 0, spec.output
    s = json.loads(spec.stdout)
    assert {"drafts", "accepted_bytes_per_draft", "acceptance_rate"} <= set(s)
    assert s["text"] == record["text"] and s["bytes"] == 30  # greedy, beta 1: the same bytes


def test_prompt_file(byte_dir, tmp_path):
    path = tmp_path / "prompt.txt"
    path.write_text("In the", encoding="utf-8")
    a = run("--model", byte_dir, "--prompt-file", str(path), "--max-bytes", "12", "--json")
    b = run("--model", byte_dir, "--prompt", "In the", "--max-bytes", "12", "--json")
    assert a.exit_code == 0 and json.loads(a.stdout)["text"] == json.loads(b.stdout)["text"]


def test_ctrl_c_prints_what_was_generated_and_exits_130(byte_dir, monkeypatch):
    def interrupted(model, prompt, on_bytes=None, **kwargs):
        on_bytes(b"so far")
        raise gen.GenerationInterrupted(gen.Generation(b"so far", 0.5, interrupted=True))

    monkeypatch.setattr(gen, "generate", interrupted)
    out = run("--model", byte_dir, "--prompt", "x", "-q")
    assert out.exit_code == 130 and out.stdout.startswith("so far")
    out = run("--model", byte_dir, "--prompt", "x", "--json")
    assert out.exit_code == 130
    record = json.loads(out.stdout)
    assert record["text"] == "so far" and record["interrupted"] is True


@pytest.mark.parametrize("args, names", [
    (["--draft", "BYTE"], "--draft"),
    (["--model", "SUB", "--draft", "SUB"], "--model"),
    (["--max-bytes", "-1"], "--max-bytes"),
    (["--temperature", "-0.5"], "--temperature"),
    (["--top-k", "0"], "--top-k"),
    (["--beta", "0.5"], "--beta"),
    (["--draft-tokens", "0"], "--draft-tokens"),
    (["--prompt-file", "/no/such/file"], "--prompt"),
    (["--prompt-file", "MISSING"], "--prompt-file"),
    (["--prompt-file", "NOT_UTF8"], "--prompt-file"),
    ([], "--prompt"),
])
def test_bad_input_is_one_line_and_exit_2(byte_dir, subword_dir, tmp_path, args, names):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"caf\xe9")
    swap = {"BYTE": byte_dir, "SUB": subword_dir, "MISSING": str(tmp_path / "missing.txt"), "NOT_UTF8": str(bad)}
    args = [swap.get(a, a) for a in args]
    base = [] if "--model" in args else ["--model", byte_dir]
    prompt = [] if args == [] or "--prompt-file" in args and args[args.index("--prompt-file") + 1] != "/no/such/file" \
        else ["--prompt", "x"]
    out = run(*base, *prompt, *args)
    assert out.exit_code == 2, out.output
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and names in lines[0], out.stderr
    assert "Traceback" not in out.output


def test_policy_and_threads_reach_the_decoder(byte_dir, subword_dir):
    base = ["generate", "--model", str(byte_dir), "--draft", str(subword_dir), "--prompt", "the owl", "--max-bytes",
            "12", "--json", "--quiet", "--threads", "1"]
    runs = {p: CliRunner().invoke(cli, base + ["--policy", p]) for p in ("word", "redraft")}
    for policy, result in runs.items():
        assert result.exit_code == 0, result.output
        got = json.loads(result.output)
        assert got["policy"] == policy and got["threads"] == 1
    assert json.loads(runs["word"].output)["text"] == json.loads(runs["redraft"].output)["text"]  # both exact
    bad = CliRunner().invoke(cli, base + ["--policy", "guess"])
    assert bad.exit_code == 2 and "--policy" in bad.output


@pytest.mark.parametrize("temperature", ["0", "0.7"])
def test_a_model_with_nan_weights_generates_nothing_and_says_so(tmp_path, temperature):
    import math

    from support.run_fakes import make_mamba_checkpoint

    model = make_mamba_checkpoint(tmp_path / "nan", head_scale=math.nan)
    result = CliRunner().invoke(cli, ["generate", "--model", str(model), "--prompt", "an owl", "--max-bytes", "8",
                                      "--temperature", temperature, "--json", "--quiet"])
    assert result.exit_code == 1, result.output
    assert "hold NaN or infinity; nothing can be generated" in result.output
    assert len(result.output.strip().splitlines()) == 1
