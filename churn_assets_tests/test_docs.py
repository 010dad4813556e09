"""The pages under docs/ name only what the code has: every environment variable, every
``churn-assets`` command and option, and every quoted message, so a rename in the code fails here
rather than leaving the docs wrong."""

from __future__ import annotations

import argparse
import ast
import re
import shlex
from functools import cache
from pathlib import Path

import pytest

from churn_assets.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
PACKAGE = ROOT / "churn_assets"
VARIABLE = re.compile(r"\b(?:CHURN|MLFLOW|DAGSTER)_[A-Z0-9_]*[A-Z0-9]\b")
CODE_SPAN = re.compile(r"`([^`]+)`")
# A quoted message: a block-quote line holding one code span; <...> stands for what varies.
MESSAGE = re.compile(r"^> `(?P<text>[^`]+)`\s*$", re.MULTILINE)
PLACEHOLDER_OR_BREAK = re.compile(r"<[^>]*>|[;:()\[\]]")
SHORTEST_PIECE = 12  # shorter pieces (", column ") say nothing of whether a message exists


@cache
def code_strings() -> tuple[str, ...]:
    """Every string literal in the package (f-strings as their literal parts)."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.append(node.value)
    return tuple(found)


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_the_docs_exist_and_are_indexed():
    names = {p.name for p in DOCS}
    expected = {
        "README.md",
        "architecture.md",
        "real-data.md",
        "configuration.md",
        "monitoring-policy.md",
        "production.md",
        "troubleshooting.md",
    }
    assert expected <= names
    index = (ROOT / "docs" / "README.md").read_text()
    assert all(f"({name})" in index for name in expected - {"README.md"})
    assert "(docs/README.md)" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_every_environment_variable_named_is_read_by_the_code(page: Path):
    named = set(VARIABLE.findall(page.read_text()))
    strings = code_strings()
    unknown = sorted(v for v in named if not any(v in s for s in strings))
    assert unknown == [], f"{page.name} names variables the code never reads: {unknown}"


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_every_command_and_option_named_exists(page: Path):
    commands = _subcommands()
    for span in CODE_SPAN.findall(page.read_text()):
        if not span.startswith("churn-assets "):
            continue
        words = shlex.split(span.replace("|", " "))
        if words[1].startswith("<"):
            continue  # a quoted message naming the command that wrote it
        assert words[1] in commands, f"{page.name}: no command {words[1]!r} in `{span}`"
        options = {o for a in commands[words[1]]._actions for o in a.option_strings}
        for word in words[2:]:
            if word.startswith("--"):
                assert word.split("=")[0] in options, f"{page.name}: no option {word} in `{span}`"


def test_every_quoted_message_is_one_the_code_writes():
    strings = code_strings()
    quoted = 0
    for page in DOCS:
        for match in MESSAGE.finditer(page.read_text()):
            quoted += 1
            pieces = [p.strip() for p in PLACEHOLDER_OR_BREAK.split(match["text"])]
            for piece in (p for p in pieces if len(p) >= SHORTEST_PIECE):
                assert any(piece in s for s in strings), (
                    f"{page.name}: {piece!r} of `{match['text']}` is in no string of the code"
                )
    assert quoted >= 10, "troubleshooting.md quotes the messages a user sees"


def test_a_message_the_code_never_writes_is_caught():
    """The check above is not vacuous: an invented message fails it."""
    invented = "the warehouse refused to cooperate today"
    assert not any(invented in s for s in code_strings())
