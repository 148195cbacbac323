"""The interactive flow, driven with real keystrokes through a pseudo-terminal."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pexpect
import pytest
import yaml

from cellcensus.governance.assessment import DecisionTree
from cellcensus.governance.assessment.interview import Terminal, interview

TIMEOUT = 20


def _keys_for(tree: DecisionTree, answers: dict[str, object], question_id: str) -> str:
    """The numbers a person types to give an example's answer to a question."""
    question = tree.question(question_id)
    value = answers[question_id]
    chosen = value if isinstance(value, list) else [value]
    return ",".join(str(question.option_ids.index(str(option)) + 1) for option in chosen)


ASSESS = ("cellcensus.governance.assessment",)
"""The interview's own module; `("cellcensus", "assess")` is the same through the CLI."""


def _spawn(out: Path, command: tuple[str, ...] = ASSESS) -> pexpect.spawn:
    env = {**os.environ, "TERM": "dumb", "NO_COLOR": "1", "COLUMNS": "200"}
    return pexpect.spawn(
        sys.executable,
        ["-m", *command, "--out", str(out)],
        env=env,
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(50, 200),
    )


def test_interactive_flow_with_help_back_and_skip(
    tree: DecisionTree, examples_dir: Path, tmp_path: Path
) -> None:
    example = yaml.safe_load((examples_dir / "belgium_residents.yaml").read_text())
    answers = example["answers"]
    total = len(tree.questions)
    child = _spawn(tmp_path)
    child.expect("Name of the data use")
    child.sendline("Keystroke test")
    child.expect("Country")
    child.sendline("Belgium")

    child.expect_exact(f"[1/{total}] Purpose and public value")
    child.expect("answer> ")
    child.sendline("?")  # help text
    child.expect("Help: The purpose drives the public value")
    child.sendline("9")  # out of range
    child.expect("'9' is not a number from 1 to 4")
    child.sendline("s")  # a required question cannot be skipped
    child.expect("This question is required")
    child.sendline(_keys_for(tree, answers, "purpose"))
    child.expect_exact(f"[2/{total}]")
    child.sendline("b")  # back to the first question, which keeps its answer
    child.expect_exact(f"[1/{total}]")
    child.expect("current answer: Official statistics")
    child.sendline("")  # Enter keeps it
    child.expect_exact(f"[2/{total}]")
    child.sendline("s")  # skip the statistical domain

    for position, question in enumerate(tree.questions[2:], start=3):
        child.expect_exact(f"[{position}/{total}]")
        child.expect("answer> ")
        child.sendline(_keys_for(tree, answers, question.id))

    child.expect("Recommended business model: Moving algorithms to the data")
    child.expect("Written:")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    report = json.loads((tmp_path / "assessment.json").read_text(encoding="utf-8"))
    assert report["title"] == "Keystroke test" and report["country"] == "Belgium"
    assert report["recommendation"]["model_id"] == "moving_algorithms"
    domain = next(a for a in report["answers"] if a["question_id"] == "statistical_domain")
    assert domain["skipped"] is True
    saved = yaml.safe_load((tmp_path / "answers.yaml").read_text(encoding="utf-8"))
    expected = {key: value for key, value in answers.items() if key != "statistical_domain"}
    assert saved["answers"] == expected


def test_quitting_writes_nothing(tmp_path: Path) -> None:
    child = _spawn(tmp_path / "out")
    child.expect("Name of the data use")
    child.sendline("")
    child.expect("Country")
    child.sendline("")
    child.expect("answer> ")
    child.sendline("q")
    child.expect("assessment abandoned; nothing was written")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", [ASSESS, ("cellcensus", "assess")])
def test_ctrl_c_abandons_with_the_same_line_as_quitting(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    # Through the CLI too: a library that starts a thread on import once swallowed Ctrl-C.
    child = _spawn(tmp_path / "out", command)
    child.expect("Name of the data use")
    child.sendline("")
    child.expect("Country")
    child.sendline("")
    child.expect("answer> ")
    press_ctrl_c(child, until="assessment abandoned; nothing was written")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    assert not (tmp_path / "out").exists()


def press_ctrl_c(child: pexpect.spawn, *, until: str, presses: int = 5) -> None:
    """Ctrl-C, again if nothing answers within two seconds, as a person would.

    One press can be lost: CPython's `input()` under readline notices a signal only when it
    interrupts the wait for a key, so a Ctrl-C that comes after the prompt is written but
    before that wait begins (a slow moment on a loaded machine) waits for the next key. A
    program that swallows Ctrl-C still fails: every press is lost.
    """
    for _ in range(presses):
        child.sendintr()
        if child.expect([until, pexpect.TIMEOUT], timeout=2) == 0:
            return
    raise AssertionError(f"{presses} presses of Ctrl-C went unanswered")


def test_scripted_interview_refuses_mixed_none_and_back_at_the_start(tree: DecisionTree) -> None:
    said: list[str] = []
    replies = iter(["", "", "b", "1"])

    def ask(prompt: str) -> str:
        try:
            return next(replies)
        except StopIteration:
            question = tree.questions[len(said_questions(said)) - 1]
            if question.id == "public_value" and not any("cannot be combined" in s for s in said):
                return "5,2"
            return "1" if question.required else "s"

    answers = interview(tree, Terminal(ask=ask, say=said.append))
    assert "This is the first question." in said
    assert any("'None of these' cannot be combined with other answers." in s for s in said)
    assert answers.title == "Interactive assessment" and answers.country is None
    assert answers.chosen["purpose"] == ("official_statistics",)
    assert "public_value" not in answers.chosen


def said_questions(said: list[str]) -> list[str]:
    return [text for text in said if text.startswith("\n[")]
