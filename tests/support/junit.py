"""The rules of the JUnit XML schema that CI systems read, checked on a file the gate wrote."""

from __future__ import annotations

import re
from xml.etree import ElementTree

def _count(element, name: str) -> int:
    value = element.get(name)
    assert value is not None and re.fullmatch(r"\d+", value), f"<{element.tag}> {name}={value!r}: a count"
    return int(value)


def _time(element) -> None:
    value = element.get("time")
    assert value is not None and re.fullmatch(r"\d+(\.\d+)?", value), f"<{element.tag}> time={value!r}: a decimal"


def check_junit(path) -> ElementTree.Element:
    """The rules of the JUnit XML schema that CI systems (Jenkins, GitLab, GitHub test reporters) read: a
    <testsuites> root of <testsuite> elements with name, tests, failures, errors and time; each <testsuite> holds
    only <testcase> (and properties, system-out, system-err), its counts those of its testcases; each
    <testcase> has name, classname and time, and at most one of <failure>, <error>, <skipped>, each failure and
    error with a message and a type."""
    root = ElementTree.parse(path).getroot()
    assert root.tag == "testsuites"
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for suite in root:
        assert suite.tag == "testsuite" and suite.get("name")
        _time(suite)
        cases = [c for c in suite if c.tag == "testcase"]
        assert all(c.tag in ("testcase", "properties", "system-out", "system-err") for c in suite)
        outcome = {"failure": 0, "error": 0, "skipped": 0}
        for case in cases:
            assert case.get("name") and case.get("classname")
            _time(case)
            children = [child.tag for child in case]
            assert set(children) <= {"failure", "error", "skipped", "system-out", "system-err"}
            marks = [tag for tag in children if tag in outcome]
            assert len(marks) <= 1
            for mark in marks:
                outcome[mark] += 1
            for child in case:
                if child.tag in ("failure", "error"):
                    assert child.get("message") and child.get("type")
        assert _count(suite, "tests") == len(cases)
        assert _count(suite, "failures") == outcome["failure"] and _count(suite, "errors") == outcome["error"]
        if suite.get("skipped") is not None:
            assert _count(suite, "skipped") == outcome["skipped"]
        totals = {"tests": totals["tests"] + len(cases), "failures": totals["failures"] + outcome["failure"],
                  "errors": totals["errors"] + outcome["error"]}
    for name, value in totals.items():
        assert _count(root, name) == value
    return root
