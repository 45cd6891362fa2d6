"""Reliability, class 4: a legitimate text is never a failed cell. A derived metric past the largest float
(word perplexity of text with few spaces) is null with the reason, the cell stays ok, `score --json` is strict
JSON and the report says n/a; only a non-finite NLL fails a cell. An empty corpus is exit 2 up front."""

import json

import pytest

from support.run_fakes import make_mamba_checkpoint

from robustbench_bytes.cli import cli
from robustbench_bytes.results.schema import derived_metrics

FEW_SPACES = {
    "chinese": "天地玄黄宇宙洪荒日月盈昃辰宿列张寒来暑往秋收冬藏闰余成岁律吕调阳" * 40,
    "japanese": "いろはにほへとちりぬるをわかよたれそつねならむうゐのおくやまけふこえて" * 40,
    "code": "f=lambda:[y**2for(y)in(range(9))if(y%3)];" * 40,  # minified: no whitespace at all
    "urls": ",".join(f"https://example.org/path/{i}/index.html?q={i * 7}" for i in range(80)),
}


def strict_json(text):
    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_mamba_checkpoint(tmp_path_factory.mktemp("m") / "model")


@pytest.mark.parametrize("kind", sorted(FEW_SPACES))
def test_few_spaces_give_null_word_perplexity_not_a_failure(runner, model, tmp_path, kind):
    text = tmp_path / f"{kind}.txt"
    text.write_text(FEW_SPACES[kind], encoding="utf-8")
    result = runner.invoke(cli, ["score", "--quiet", "--json", "--model", str(model), "--corpus", str(text)])
    assert result.exit_code == 0, result.output
    r = strict_json(result.stdout)
    assert r["status"] == "ok" and r["nll"] > 0 and r["bits_per_byte"] > 0
    assert r["word_perplexity"] is None and "overflows" in r["undefined"]["word_perplexity"]


def test_a_run_keeps_such_a_cell_ok_and_the_report_says_why(runner, model, tmp_path):
    corpus = tmp_path / "zh.txt"
    corpus.write_text(FEW_SPACES["chinese"], encoding="utf-8")
    out = tmp_path / "run"
    result = runner.invoke(cli, ["run", "--quiet", "--model", str(model), "--corpus", str(corpus),
                                 "--noise", "drop:p=0.1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    results = strict_json((out / "results.json").read_text())
    assert [r["status"] for r in results] == ["ok", "ok"]
    assert "word_perplexity n/a" in result.output
    report = runner.invoke(cli, ["report", str(out), "-o", str(tmp_path / "rep"), "--no-plots"])
    assert report.exit_code == 0, report.output
    readme = (tmp_path / "rep" / "README.md").read_text()
    assert "n/a" in readme and "overflows" in readme


def test_derived_metrics_name_each_undefined_one():
    values, undefined = derived_metrics(1e5, 1000, 1000, 2)
    assert values["word_perplexity"] is None and set(undefined) == {"word_perplexity"}
    assert values["bits_per_byte"] == pytest.approx(1e5 / (1000 * 0.6931471805599453))


@pytest.mark.parametrize("files", [{}, {"a.txt": "", "b.txt": ""}])
def test_an_empty_corpus_is_exit_2_up_front(runner, model, tmp_path, files):
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    for command in (["score", "--quiet"], ["run", "--quiet", "--out", str(tmp_path / "run")]):
        result = runner.invoke(cli, [*command, "--model", str(model), "--corpus", str(folder)])
        assert result.exit_code == 2, result.output
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()
