"""An ``ArgumentParser`` whose sub-commands report their own mistakes, with the nearest flag.

Plain argparse hands a sub-command's unknown flags back to the top-level parser, which prints
the top-level usage: ``otel-ai demo --durration 5`` would say nothing about ``demo``. Here the
sub-command that was chosen rejects them itself, with its own usage and a "did you mean".
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Sequence
from typing import Any


class SuggestingParser(argparse.ArgumentParser):
    def __init__(self, *args: Any, root: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._root = root
        if not root:
            # The deepest sub-command chosen wins (its defaults are applied last): the root
            # parser hands it the leftovers. Only the defaults mechanism is relied on, not
            # argparse internals, so this holds across Python versions.
            self.set_defaults(_chosen_parser=self)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        ns, extras = super().parse_known_args(args, namespace)
        chosen = getattr(ns, "_chosen_parser", None)
        if extras and self._root and isinstance(chosen, SuggestingParser):
            chosen.error(chosen.unrecognized(extras))
        return ns, extras

    def flags(self) -> list[str]:
        return [s for a in self._actions for s in a.option_strings if s.startswith("--")]

    def unrecognized(self, extras: list[str]) -> str:
        msg = f"unrecognized arguments: {' '.join(extras)}"
        for extra in extras:
            if extra.startswith("-"):
                near = difflib.get_close_matches(extra.split("=", 1)[0], self.flags(), n=1, cutoff=0.6)
                if near:
                    return f"{msg} (did you mean {near[0]}?)"
        return msg

    def error(self, message: str) -> Any:
        if "invalid choice:" in message and self._subcommands():
            bad = message.split("invalid choice:", 1)[1].split("'")[1:2]
            near = difflib.get_close_matches(bad[0], self._subcommands(), n=1) if bad else []
            if near:
                message += f"; did you mean {near[0]!r}?"
        super().error(message)

    def _subcommands(self) -> list[str]:
        return [
            name for a in self._actions if isinstance(a, argparse._SubParsersAction) for name in a.choices
        ]
