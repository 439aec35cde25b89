"""Algorithm schedules as values: parse ``"(ER**20,HIO**160,ER**20)**3"`` once, print it back.

Accepted syntax (case-insensitive operator names ER, HIO, RAAR; optional beta in brackets):

- PyNX style: ``"ER**20,HIO**160,ER**20"``, ``"(ER**20,HIO(0.8)**160)**3,ER**20"``,
  ``"RAAR(0.75)**50"``;
- cohere style: ``"3*(20*ER+180*HIO)+20*ER"``.

``str(schedule)`` is canonical PyNX style (default betas omitted) and parses back to an equal
schedule; it is what every result file records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reconstruction.errors import ConfigError

DEFAULT_BETA = {"ER": None, "HIO": 0.9, "RAAR": 0.75}
MAX_ITERATIONS = 10_000_000


@dataclass(frozen=True)
class Op:
    """One operator applied ``count`` times; ``beta`` is the HIO/RAAR feedback (None for ER)."""

    name: str
    count: int
    beta: float | None = None

    def __str__(self) -> str:
        beta = "" if self.beta == DEFAULT_BETA[self.name] else f"({self.beta:g})"
        return f"{self.name}{beta}" + (f"**{self.count}" if self.count != 1 else "")


@dataclass(frozen=True)
class Group:
    """A sequence of items repeated ``repeat`` times."""

    items: tuple[Op | Group, ...]
    repeat: int = 1

    def __str__(self) -> str:
        inner = ",".join(str(i) for i in self.items)
        if self.repeat == 1:
            return inner
        return f"({inner})**{self.repeat}"


@dataclass(frozen=True)
class Segment:
    """A run of consecutive iterations of one operator: iterations [start, end)."""

    start: int
    end: int
    name: str
    beta: float | None


@dataclass(frozen=True)
class Schedule:
    """A parsed algorithm: a tree of operators; ``str()`` is canonical, ``segments()`` flat."""

    root: Group

    def __str__(self) -> str:
        return str(self.root)

    def segments(self) -> list[Segment]:
        """Consecutive runs of the same operator, in order, with their iteration ranges."""
        out: list[Segment] = []

        def walk(node: Op | Group) -> None:
            if isinstance(node, Op):
                start = out[-1].end if out else 0
                if out and out[-1].name == node.name and out[-1].beta == node.beta:
                    last = out.pop()
                    out.append(Segment(last.start, last.end + node.count, node.name, node.beta))
                else:
                    out.append(Segment(start, start + node.count, node.name, node.beta))
                return
            for _ in range(node.repeat):
                for item in node.items:
                    walk(item)

        walk(self.root)
        return out

    @property
    def total(self) -> int:
        """Total number of iterations."""
        return _count(self.root)

    def repeated(self, cycles: int) -> Schedule:
        """This schedule run ``cycles`` times in a row (canonical ``(…)**cycles``)."""
        if cycles < 1:
            raise ConfigError(f"the number of cycles must be >= 1, got {cycles}")
        if cycles == 1:
            return self
        root = self.root
        if root.repeat == 1:
            return Schedule(Group(root.items, cycles))
        return Schedule(Group((root,), cycles))


def _count(node: Op | Group) -> int:
    if isinstance(node, Op):
        return node.count
    return node.repeat * sum(_count(i) for i in node.items)


_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_]+)"
    r"|(?P<pow>\*\*)|(?P<op>[()*,+]))"
)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if not m:
                self.fail(pos + len(text[pos:]) - len(text[pos:].lstrip()), "unexpected character")
            kind = m.lastgroup
            self.tokens.append((kind, m.group(kind), m.start(kind)))
            pos = m.end()
        self.i = 0

    def fail(self, pos: int, why: str) -> None:
        snippet = self.text[pos : pos + 12] or "end of string"
        raise ConfigError(
            f"malformed algorithm {self.text!r}: {why} at position {pos} ({snippet!r}); "
            "expected e.g. 'ER**20,HIO**160,ER**20', '(HIO**100,ER**10)**3', 'RAAR(0.75)**50' "
            "or cohere's '3*(20*ER+180*HIO)+20*ER'"
        )

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, kind: str, value: str | None = None) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None or tok[0] != kind or (value is not None and tok[1] != value):
            pos = tok[2] if tok else len(self.text)
            names = {"num": "a number", "name": "an operator name"}
            what = repr(value) if value else names.get(kind, kind)
            self.fail(pos, f"expected {what}")
        self.i += 1
        return tok

    def integer(self) -> int:
        _, value, pos = self.take("num")
        if not value.isdigit() or int(value) < 1:
            self.fail(pos, "expected a positive integer count")
        return int(value)

    def sequence(self) -> Group:
        items = [self.term()]
        while (tok := self.peek()) is not None and tok[0] == "op" and tok[1] in ",+":
            self.i += 1
            items.append(self.term())
        if len(items) == 1 and isinstance(items[0], Group):
            return items[0]
        return Group(tuple(items))

    def term(self) -> Op | Group:
        count = 1
        tok = self.peek()
        if tok is not None and tok[0] == "num":  # cohere: 20*ER, 3*(...)
            count = self.integer()
            self.take("op", "*")
        node = self.atom()
        tok = self.peek()
        if tok is not None and tok[0] == "pow":
            self.i += 1
            count *= self.integer()
        if isinstance(node, Op):
            return Op(node.name, node.count * count, node.beta)
        if count == 1:
            return node
        return Group(node.items, node.repeat * count) if node.repeat == 1 else Group((node,), count)

    def atom(self) -> Op | Group:
        tok = self.peek()
        if tok is None:
            self.fail(len(self.text), "expected an operator or '('")
        if tok[0] == "op" and tok[1] == "(":
            self.i += 1
            inner = self.sequence()
            self.take("op", ")")
            return inner
        _, name, pos = self.take("name")
        key = name.upper()
        if key not in DEFAULT_BETA:
            self.fail(pos, f"unknown operator {name!r} (known: ER, HIO, RAAR)")
        beta = DEFAULT_BETA[key]
        nxt = self.peek()
        if nxt is not None and nxt[0] == "op" and nxt[1] == "(":
            if key == "ER":
                self.fail(nxt[2], "ER takes no beta")
            self.i += 1
            _, value, vpos = self.take("num")
            beta = float(value)
            if not 0.0 < beta <= 1.0:
                self.fail(vpos, f"beta must be in (0, 1], got {value}")
            self.take("op", ")")
        return Op(key, 1, beta)


def parse_schedule(text: str, *, cycles: int = 1) -> Schedule:
    """Parse an algorithm string (PyNX or cohere style) repeated ``cycles`` times.

    Raises ``ConfigError`` naming the bad token and its position for malformed strings.
    """
    if isinstance(text, Schedule):
        return text.repeated(cycles)
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("the algorithm is empty; expected e.g. 'ER**20,HIO**160,ER**20'")
    parser = _Parser(text)
    root = parser.sequence()
    tok = parser.peek()
    if tok is not None:
        parser.fail(tok[2], f"unexpected {tok[1]!r}")
    schedule = Schedule(root).repeated(cycles)
    if schedule.total > MAX_ITERATIONS:
        raise ConfigError(
            f"the algorithm {text!r} asks for {schedule.total} iterations "
            f"(at most {MAX_ITERATIONS})"
        )
    return schedule
