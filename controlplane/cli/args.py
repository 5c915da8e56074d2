"""Command-line values checked where they are typed: numbers against the API's ranges
(``controlplane/domain/limits.py``), KEY=VALUE pairs. A bad value is argparse's one-line usage
error (exit 2), never a traceback from a protobuf field that cannot hold it."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from controlplane.domain.limits import Range
from controlplane.errors import InvalidArgument

#: Longest number accepted on the command line (Python refuses to parse ints past 4,300 digits).
_MAX_DIGITS = 40


def limited(rng: Range, *, integer: bool = True) -> Callable[[str], float]:
    """An argparse ``type`` for a number in ``rng``."""

    def parse(text: str) -> float:
        kind = "an integer" if integer else "a number"
        if len(text) > _MAX_DIGITS:
            raise argparse.ArgumentTypeError(f"{text[:20]}... is not {kind} in {rng.describe()}")
        try:
            value: float = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        try:
            rng.check("", value)
        except InvalidArgument as e:
            raise argparse.ArgumentTypeError(e.reason) from None
        return value

    parse.__name__ = "integer" if integer else "number"  # shown by argparse as "invalid integer value"
    return parse


def pairs(option: str, items: Sequence[str], value: Callable[[str], Any] = str) -> dict[str, Any]:
    """``KEY=VALUE`` options as a dict; InvalidArgument naming ``option`` for a malformed one."""
    out: dict[str, Any] = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise InvalidArgument(option, f"{item[:40]!r} is not KEY=VALUE")
        try:
            out[k] = value(v)
        except (ValueError, argparse.ArgumentTypeError) as e:
            raise InvalidArgument(option, f"{item[:40]!r}: {e}") from e
    return out
