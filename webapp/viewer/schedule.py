"""Algorithm schedule strings (``"(ER**20,HIO**160,ER**20)**3"``) expanded into segments."""

from __future__ import annotations

import re
from typing import Any

from reconstruction.errors import ConfigError

_TOKEN = re.compile(r"\s*(\(|\)|\*\*|\*|,|[A-Za-z_]+|\d+)")


def parse_schedule(algorithm: str) -> list[tuple[str, int]]:
    """Expand an algorithm schedule string into ``[(name, iterations), ...]``.

    Understands ``"ER**20,HIO**160,ER**20"``, ``"(ER**20,HIO**180)**3,ER**20"`` and cohere's
    ``"3*(20*ER+180*HIO)+20*ER"``. Raises ``ConfigError`` when it cannot.
    """
    text = algorithm.replace("+", ",")
    tokens = _TOKEN.findall(text)
    if "".join(tokens) != re.sub(r"\s+", "", text):
        raise ConfigError(f"cannot read the algorithm schedule {algorithm!r}")
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def sequence() -> list[tuple[str, int]]:
        out = term()
        while peek() == ",":
            take()
            out += term()
        return out

    def term() -> list[tuple[str, int]]:
        prefix = 1
        if peek() is not None and peek().isdigit():
            prefix = int(take())
            if take() != "*":
                raise ConfigError(f"cannot read the algorithm schedule {algorithm!r}")
        if peek() == "(":
            take()
            body = sequence()
            if take() != ")":
                raise ConfigError(f"unbalanced parentheses in {algorithm!r}")
        else:
            name = take() if peek() is not None else ""
            if not name.isalpha():
                raise ConfigError(f"cannot read the algorithm schedule {algorithm!r}")
            body = [(name.upper(), 1)]
        if peek() == "**":
            take()
            count = take()
            if not count.isdigit():
                raise ConfigError(f"cannot read the algorithm schedule {algorithm!r}")
            reps = int(count)
        else:
            reps = 1
        reps *= prefix
        if len(body) == 1:
            return [(body[0][0], body[0][1] * reps)]
        return body * reps

    try:
        result = sequence()
    except IndexError:
        raise ConfigError(f"cannot read the algorithm schedule {algorithm!r}") from None
    if pos != len(tokens):
        raise ConfigError(f"cannot read the algorithm schedule {algorithm!r}")
    return result


def schedule_segments(algorithm: str) -> list[dict[str, Any]]:
    """Return ``[{"name", "start", "end"}]`` iteration ranges (end exclusive), merging repeats."""
    segments: list[dict[str, Any]] = []
    at = 0
    for name, n in parse_schedule(algorithm):
        if segments and segments[-1]["name"] == name:
            segments[-1]["end"] += n
        else:
            segments.append({"name": name, "start": at, "end": at + n})
        at += n
    return segments
