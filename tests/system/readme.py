"""Read the README's shell blocks at test time: every ``otel-ai`` command line, and the Quick start's."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from otel_ai.testing.daemons import ROOT

README = ROOT / "README.md"
_FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```", re.M | re.S)
_SHELL = {"sh", "bash", "shell", "console", "zsh"}
_ENV = re.compile(r"^[A-Z_][A-Z0-9_]*=\S*$")
# Values a reader substitutes (<id>, ID, TRACE_ID, …): such a command can be parsed, not run.
_PLACEHOLDER = re.compile(r"^(<[^>]+>|[A-Z][A-Z0-9_]*_ID|ID|QUESTION|FILE|URL)$")


@dataclass(frozen=True)
class Command:
    """One ``otel-ai`` invocation as written in the README (argv after ``otel-ai``)."""

    argv: tuple[str, ...]
    line: str
    section: str
    lang: str = ""  # the fence's language: "console" blocks show output, "sh" blocks are to run

    @property
    def has_placeholder(self) -> bool:
        return any(_PLACEHOLDER.match(a) for a in self.argv)


def _sections(text: str) -> list[tuple[str, str]]:
    """(``## heading``, body) pairs; the text before the first heading is section ''."""
    parts = re.split(r"^(## .*)$", text, flags=re.M)
    out = [("", parts[0])]
    out += [(parts[i][3:].strip(), parts[i + 1]) for i in range(1, len(parts) - 1, 2)]
    return out


def _logical_lines(block: str, lang: str) -> list[str]:
    """Lines of a block with ``\\`` continuations joined; in ``console`` / plain blocks only ``$ `` lines."""
    lines, buf = [], ""
    prompt_only = lang not in _SHELL or lang == "console"
    for raw in block.splitlines():
        line = raw.rstrip()
        if not buf and prompt_only:
            if not line.startswith("$ "):
                continue
            line = line[2:]
        buf += line
        if buf.endswith("\\"):
            buf = buf[:-1] + " "
            continue
        lines.append(buf.strip())
        buf = ""
    return lines


def _segments(line: str) -> list[list[str]]:
    """Shell words of each simple command in ``line`` (split at ``;``, ``&&``, ``||``; comments dropped)."""
    try:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words = list(lexer)
    except ValueError:
        return []
    out: list[list[str]] = [[]]
    for w in words:
        if w in (";", "&&", "||", "&", "|"):
            out.append([])
        else:
            out[-1].append(w)
    return [seg for seg in out if seg]


def commands(text: str | None = None, *, section: str | None = None) -> list[Command]:
    """Every ``otel-ai`` command in the README's shell blocks (optionally of one ``##`` section)."""
    text = README.read_text(encoding="utf-8") if text is None else text
    found = []
    for heading, body in _sections(text):
        if section is not None and heading != section:
            continue
        for m in _FENCE.finditer(body):
            lang = m.group(1).lower()
            if lang and lang not in _SHELL:
                continue
            for line in _logical_lines(m.group(2), lang):
                for seg in _segments(line):
                    while seg and _ENV.match(seg[0]):
                        seg = seg[1:]
                    if seg and Path(seg[0]).name == "otel-ai":
                        found.append(Command(tuple(seg[1:]), line, heading, lang))
    return found
