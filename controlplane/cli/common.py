"""What every stargatectl command module shares: the output flag, the config context, the client.
Its own module so that command modules import it without importing each other (no circles)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from controlplane.client.config import ConfigFile, Context, default_path
from controlplane.client.federation import FederationClient

OUTPUT = ("table", "json", "yaml")


def duration(text: str) -> int:
    """'90s', '15m', '1h', '7d' -> seconds."""
    m = re.fullmatch(r"(\d{1,9})([smhd])", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a duration like 30s, 15m, 1h, 7d")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def _out(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", choices=OUTPUT, default="table")


def context_of(args: argparse.Namespace) -> Context:
    cfg = ConfigFile.load(Path(args.config) if args.config else default_path())
    return cfg.context(args.context)


def client(args: argparse.Namespace) -> FederationClient:
    ctx = context_of(args)
    return FederationClient(ctx, servers=[args.server] if args.server else None, timeout=args.timeout)


async def call(args: argparse.Namespace, method: str, request: Any) -> Any:
    async with client(args) as c:
        return await c.call(method, request)
