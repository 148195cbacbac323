"""The interactive flow of `cellcensus assess`: one question at a time, with help, back and skip.

At each question a person types the number of an answer (several, separated by commas or
spaces, where the question allows it), `?` for help, `b` to go back, `s` to skip, Enter to
keep the current answer after going back, or `q` to quit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cellcensus.errors import CellcensusError
from cellcensus.governance.assessment.answers import Answers, parse_answers
from cellcensus.governance.assessment.tree import DecisionTree, Question

KEYS = "Type the number of an answer, ? for help, b to go back, s to skip, q to quit."
DEFAULT_TITLE = "Interactive assessment"
ABANDONED = "assessment abandoned; nothing was written"


@dataclass(frozen=True)
class Terminal:
    """How the interview talks to a person: `ask` shows a prompt and returns the reply."""

    ask: Callable[[str], str]
    say: Callable[[str], None]


@dataclass
class Interview:
    """The state of an interview: where it is and what was answered so far."""

    tree: DecisionTree
    terminal: Terminal
    position: int = 0
    chosen: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def question(self) -> Question:
        """The question being asked."""
        return self.tree.questions[self.position]

    def run(self) -> dict[str, tuple[str, ...]]:
        """Ask every question in turn; return the chosen option ids per answered question."""
        self.terminal.say(KEYS)
        shown = -1
        while self.position < len(self.tree.questions):
            if self.position != shown:
                self._show_question()
                shown = self.position
            self._handle(self.read("answer> "))
        return self.chosen

    def read(self, prompt: str) -> str:
        """Ask for one line; the end of input or Ctrl-C stops the interview."""
        try:
            return self.terminal.ask(prompt).strip()
        except EOFError:
            raise CellcensusError(
                "input ended before the last question; nothing was written"
            ) from None
        except KeyboardInterrupt:
            raise CellcensusError(ABANDONED) from None

    def _show_question(self) -> None:
        question = self.question
        total = len(self.tree.questions)
        section = self.tree.section_title(question.section)
        several = "  (one or more, e.g. 1,3)" if question.kind == "multiple" else ""
        required = "  (required)" if question.required else ""
        lines = [
            "",
            f"[{self.position + 1}/{total}] {section}",
            f"{question.text}{several}{required}",
        ]
        lines += [f"  {n}. {option.label}" for n, option in enumerate(question.options, 1)]
        current = self.chosen.get(question.id)
        if current:
            labels = ", ".join(question.option(option_id).label for option_id in current)
            lines.append(f"  (current answer: {labels}; press Enter to keep it)")
        self.terminal.say("\n".join(lines))

    def _handle(self, reply: str) -> None:
        command = reply.lower()
        if command in {"?", "h", "help"}:
            self._show_help()
        elif command in {"b", "back"}:
            self._go_back()
        elif command in {"s", "skip"}:
            self._skip()
        elif command in {"q", "quit"}:
            raise CellcensusError(ABANDONED)
        elif command == "":
            self._keep_current()
        else:
            self._answer(reply)

    def _show_help(self) -> None:
        question = self.question
        lines = [f"Help: {' '.join(question.help.split())}"]
        lines += [
            f"  {n}. {option.label}: {' '.join(option.help.split())}"
            for n, option in enumerate(question.options, 1)
            if option.help
        ]
        if question.skip_as:
            skipped_as = ", ".join(question.option(o).label for o in question.skip_as)
            lines.append(f"  If you skip it, it counts as: {skipped_as}.")
        self.terminal.say("\n".join(lines))

    def _go_back(self) -> None:
        if self.position == 0:
            self.terminal.say("This is the first question.")
            return
        self.position -= 1

    def _skip(self) -> None:
        if self.question.required:
            self.terminal.say("This question is required: type the number of an answer.")
            return
        self.chosen.pop(self.question.id, None)
        self.position += 1

    def _keep_current(self) -> None:
        if self.question.id in self.chosen:
            self.position += 1
        else:
            self.terminal.say(KEYS)

    def _answer(self, reply: str) -> None:
        try:
            self.chosen[self.question.id] = parse_choice(self.question, reply)
        except ValueError as error:
            self.terminal.say(f"{error} {KEYS}")
            return
        self.position += 1


def parse_choice(question: Question, reply: str) -> tuple[str, ...]:
    """Turn typed numbers into option ids.

    Args:
        question: The question answered.
        reply: Numbers separated by commas or spaces.

    Returns:
        The chosen option ids, in the order typed.

    Raises:
        ValueError: The reply is not valid for this question (the message says why).
    """
    parts = reply.replace(",", " ").split()
    count = len(question.options)
    if not all(part.isdigit() and 1 <= int(part) <= count for part in parts):
        raise ValueError(f"'{reply}' is not a number from 1 to {count}.")
    if question.kind == "single" and len(parts) != 1:
        raise ValueError("This question takes one answer.")
    numbers = list(dict.fromkeys(int(part) for part in parts))
    options = [question.options[number - 1] for number in numbers]
    exclusive = [option for option in options if option.exclusive]
    if exclusive and len(options) > 1:
        raise ValueError(f"'{exclusive[0].label}' cannot be combined with other answers.")
    return tuple(option.id for option in options)


def interview(tree: DecisionTree, terminal: Terminal) -> Answers:
    """Ask the title, the country and every question of the tree.

    Args:
        tree: The decision tree.
        terminal: Where to ask and answer.

    Returns:
        The answers, checked against the tree.

    Raises:
        CellcensusError: The person quit, or the input ended.
    """
    terminal.say(f"{tree.title} (decision tree {tree.tree_version})")
    session = Interview(tree=tree, terminal=terminal)
    title = session.read(f"Name of the data use [{DEFAULT_TITLE}]> ") or DEFAULT_TITLE
    country = session.read("Country (Enter to leave out)> ") or None
    chosen = session.run()
    document = {
        "tree_version": tree.tree_version,
        "title": title,
        "country": country,
        "answers": {key: list(value) for key, value in chosen.items()},
    }
    return parse_answers(document, tree)
