"""Reliability of `robustbench generate`: every size and number option has a documented range (click.IntRange,
commands.common.FiniteFloatRange, which also refuses NaN); out of it is one line and exit 2 before a model is
loaded. Sampling at a temperature so small that logits / T overflow is the greedy choice, not a traceback."""

import pytest
import torch

from support.cli_assertions import assert_one_line_error
from robustbench_bytes.cli import cli
from robustbench_bytes.generation.sampling import choose


@pytest.mark.parametrize("option,value", [
    ("--temperature", "nan"), ("--temperature", "-1"), ("--temperature", "inf"), ("--temperature", "1e308"),
    ("--temperature", "-inf"), ("--seed", "-1"), ("--seed", str(2**64 + 1)), ("--draft-tokens", "1000000"),
    ("--draft-tokens", "0"), ("--max-bytes", str(10**12)), ("--max-bytes", "-1"), ("--top-k", "0"),
    ("--top-k", str(10**12)), ("--beta", "nan"), ("--beta", "0.5"), ("--beta", "inf"),
])
def test_options_out_of_range_are_one_line(runner, option, value):
    result = runner.invoke(cli, ["generate", "-m", "no-such-model", "-p", "hi", option, value])
    assert_one_line_error(result, option)


def test_the_edges_of_the_ranges_generate(runner, tiny_mamba):
    result = runner.invoke(cli, ["generate", "-m", str(tiny_mamba), "-p", "hi", "--quiet", "--max-bytes", "4",
                                 "--temperature", "1000", "--seed", str(2**63 - 2), "--top-k", str(2**24),
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert '"bytes": 4' in result.output or '"bytes":4' in result.output.replace(" ", ""), result.output


@pytest.mark.parametrize("temperature", [1e-300, 5e-324, 1e-45])
def test_a_vanishing_temperature_is_the_greedy_choice(temperature):
    logits = torch.tensor([1.0, 3.0, 2.5, -torch.inf])
    for seed in range(5):
        assert choose(logits, temperature, None, torch.Generator().manual_seed(seed)) == 1
        assert choose(logits, temperature, 2, torch.Generator().manual_seed(seed)) == 1
