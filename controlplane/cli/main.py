"""stargatectl entry point: parse, dispatch, and turn every error into one line and an exit code."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from controlplane.cli import commands, directives, jobs, people, releases, roster, safety, witness
from controlplane.cli.args import limited
from controlplane.cli.output import safe_text
from controlplane.domain.limits import Range
from controlplane.errors import StargateError
from controlplane.telemetry import logs

EXIT_ERROR = 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stargatectl", description="Stargate Federation command line")
    p.add_argument("--config", help="config file (default: $STARGATE_CONFIG, else ~/.stargate/config.yaml)")
    p.add_argument("--context", help="context in the config file (default: its current-context)")
    p.add_argument("--server", help="HOST:PORT of the federation API; overrides the context's servers")
    p.add_argument(
        "--timeout",
        type=limited(Range(0.1, 3600), integer=False),
        default=10.0,
        help="seconds per call (default 10)",
    )
    p.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default="text",
        help="format of log lines on stderr (dev up, witness run): text (default) or json, one object a line",
    )
    sub = p.add_subparsers(dest="group", required=True, metavar="COMMAND")
    commands.register(sub)
    directives.register(sub)
    people.register(sub)
    roster.register(sub)
    releases.register(sub)
    safety.register(sub)
    witness.register(sub)
    jobs.register(sub)
    from controlplane.cli import dev

    dev.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.setup(logging.WARNING, args.log_format, text_format="%(levelname)s %(name)s: %(message)s")
    try:
        result = args.handler(args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return int(result or 0)
    except StargateError as e:
        print(f"error: {safe_text(e.public)}", file=sys.stderr)  # a server's message may quote input
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
