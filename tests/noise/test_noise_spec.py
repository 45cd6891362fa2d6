"""The SPEC grammar: canonical strings, presets, the stable hash, and every kind of bad spec."""

import subprocess
import sys

import pytest

from robustbench_bytes import noise
from robustbench_bytes.noise import NoiseSpecError


@pytest.mark.parametrize("spec, expected", [
    ("drop:p=0.05", "drop:p=0.05"),
    ("drop:p=.050", "drop:p=0.05"),
    ("drop:p=5e-2", "drop:p=0.05"),
    ("drop : p = 0.05 ", "drop:p=0.05"),
    ("drop:p=1", "drop:p=1.0"),
    ("repeat:p=0.1", "repeat:p=0.1,max=3"),
    ("repeat:max=4,p=0.2", "repeat:p=0.2,max=4"),
    ("uppercase", "uppercase:p=1.0"),
    ("antspeak", "antspeak"),
    ("random_case", "random_case"),
    ("whitespace:p_ins=0.1", "whitespace:p_del=0.0,p_ins=0.1"),
    ("drop:p=0.1+uppercase", "drop:p=0.1+uppercase:p=1.0"),
    ("uppercase + drop:p=0.1", "uppercase:p=1.0+drop:p=0.1"),
    ("clean", "clean"),
    ("clean+clean", "clean"),
    ("clean+drop:p=0.1", "drop:p=0.1"),
])
def test_canonical(spec, expected):
    assert noise.canonical(spec) == expected


def test_canonical_is_a_fixed_point():
    for name, specs in noise.PRESETS.items():
        for spec in specs:
            assert noise.canonical(spec) == spec, f"preset {name} holds non-canonical {spec}"
    for spec in ["drop:p=0.3", "repeat:p=0.2,max=4", "whitespace:p_del=0.1,p_ins=0.05", "swap:p=0.05+antspeak"]:
        assert noise.canonical(noise.canonical(spec)) == noise.canonical(spec)


def test_every_noise_has_a_definition_and_valid_defaults():
    for name, n in noise.NOISES.items():
        assert n.name == name and n.definition
        example = name + "".join(f":{p.name}=0.5" if i == 0 else f",{p.name}=0.5"
                                 for i, p in enumerate(q for q in n.params if q.required))
        assert noise.canonical(example).split(":")[0] == name


def test_expand():
    assert noise.expand("paper") == noise.PRESETS["paper"]
    assert len(noise.expand("paper")) == 10
    assert noise.expand("byt5") == ["drop:p=0.1", "repeat:p=0.2,max=3", "antspeak", "uppercase:p=1.0",
                                    "random_case"]
    assert noise.expand("blt") == ["antspeak", "drop:p=0.1", "random_case", "repeat:p=0.2,max=4",
                                   "uppercase:p=1.0"]
    assert noise.expand("drop:p=.3") == ["drop:p=0.3"]
    assert noise.expand("clean") == ["clean"]
    assert noise.is_preset("paper") and not noise.is_preset("drop:p=0.1") and not noise.is_preset("clean")


def test_paper_preset_matches_the_robustness_table():
    specs = set(noise.PRESETS["paper"])
    for name in ("drop", "uppercase", "swap"):
        assert {f"{name}:p=0.05", f"{name}:p=0.3"} <= specs
    assert {"repeat:p=0.05,max=3", "repeat:p=0.3,max=3", "antspeak", "random_case"} <= specs


@pytest.mark.parametrize("spec, fault", [
    ("dorp:p=0.1", "unknown noise 'dorp' (did you mean: drop?)"),
    ("uppercas", "did you mean: uppercase"),
    ("zzzz", "unknown noise 'zzzz' (known noises:"),
    ("drop", "drop needs parameter p"),
    ("drop:q=0.1", "unknown parameter 'q' (expected: p)"),
    ("uppercase+drop:q=0.1", "unknown parameter 'q' of drop (expected: p)"),
    ("antspeak:p=0.1", "unknown parameter 'p' (expected: no parameters)"),
    ("drop:p", "malformed parameter 'p' (expected k=v)"),
    ("drop:p=", "malformed parameter 'p='"),
    ("drop:", "nothing after ':'"),
    ("drop:p=0.1,p=0.2", "parameter p given twice"),
    ("drop:p=abc", "'abc' is not a number"),
    ("drop:p=1.5", "parameter p: 1.5 is outside [0, 1]"),
    ("swap:p=0.1+drop:p=1.5", "parameter p of drop: 1.5 is outside [0, 1]"),
    ("drop:p=-0.1", "-0.1 is outside [0, 1]"),
    ("drop:p=nan", "outside [0, 1]"),
    ("repeat:p=0.1,max=0", "0 is below 1"),
    ("repeat:p=0.1,max=2.5", "'2.5' is not an integer"),
    ("", "empty"),
    ("drop:p=0.1+", "empty part around '+'"),
    ("+drop:p=0.1", "empty part around '+'"),
    (":p=0.1", "missing noise name"),
    ("paper", "'paper' is a preset of 10 specs, not a single noise"),
    ("paper+drop:p=0.1", "'paper' is a preset"),
])
def test_bad_specs_name_the_spec_and_the_fault(spec, fault):
    """Each thing once: a spec that is only a name is not repeated before the fault that names it."""
    with pytest.raises(NoiseSpecError) as info:
        noise.canonical(spec)
    message = str(info.value)
    bare_name = spec.isidentifier()
    assert message.startswith(f"noise spec {spec!r}: ") != bare_name
    assert fault in message
    assert "\n" not in message
    assert isinstance(info.value, ValueError)


def test_an_unknown_name_is_named_once():
    with pytest.raises(NoiseSpecError) as info:
        noise.canonical("antspek")
    assert str(info.value) == "unknown noise 'antspek' (did you mean: antspeak?)"


def test_expand_and_apply_reject_bad_specs_too():
    with pytest.raises(NoiseSpecError):
        noise.expand("dorp:p=0.1")
    with pytest.raises(NoiseSpecError):
        noise.apply("text", "drop:p=2")
    with pytest.raises(NoiseSpecError):
        noise.apply_corpus(["text"], "paper")


def test_exponent_plus_is_not_a_separator():
    assert noise.canonical("drop:p=1e+0") == "drop:p=1.0"
    with pytest.raises(NoiseSpecError, match="outside"):
        noise.canonical("drop:p=1e+5")


def test_seed_and_doc_index_must_be_non_negative_integers():
    for kwargs in ({"seed": -1}, {"doc_index": -1}, {"seed": 1.5}, {"doc_index": "0"}):
        with pytest.raises(ValueError):
            noise.apply("text", "drop:p=0.5", **kwargs)
        with pytest.raises(ValueError):
            noise.apply("text", "clean", **kwargs)


def test_spec_hash_is_stable_across_processes():
    code = "from robustbench_bytes import noise; print(noise.spec_hash('drop:p=0.1'))"
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={"PYTHONHASHSEED": str(s)}, check=True).stdout for s in (1, 2)}
    assert len(outs) == 1
    assert int(outs.pop()) == noise.spec_hash("drop:p=0.1")
    assert noise.spec_hash("drop:p=0.1") != noise.spec_hash("drop:p=0.2")
