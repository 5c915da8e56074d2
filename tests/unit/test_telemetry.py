"""Pure parts of controlplane/telemetry: JSON log lines carry the ids in context (per asyncio
task, never leaking into another task), and --metrics-listen is parsed strictly."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest

from controlplane.telemetry import logs
from controlplane.telemetry.metrics import parse_listen


def _capture() -> tuple[logging.Logger, io.StringIO]:
    buf = io.StringIO()
    h = logging.StreamHandler(buf)
    h.setFormatter(logs.JsonFormatter())
    lg = logging.getLogger("telemetry-test")
    lg.handlers[:] = [h]
    lg.setLevel(logging.INFO)
    lg.propagate = False
    return lg, buf


async def test_ids_in_context_follow_their_task_only() -> None:
    lg, buf = _capture()

    async def link(site: str) -> None:
        logs.bind(site=site)
        await asyncio.sleep(0)
        with logs.context(directive=f"d-{site}"):
            await asyncio.sleep(0)
            lg.info("applied %s", 7)
        lg.warning("after")

    await asyncio.gather(link("fr-par-1"), link("de-fra-1"))
    lg.info("outside", extra={"rollout": "r1"})
    rows = [json.loads(line) for line in buf.getvalue().splitlines()]
    applied = {r["site"]: r for r in rows if r["message"] == "applied 7"}
    assert (
        applied["fr-par-1"]["directive"] == "d-fr-par-1" and applied["de-fra-1"]["directive"] == "d-de-fra-1"
    )
    after = [r for r in rows if r["message"] == "after"]
    assert len(after) == 2 and all("directive" not in r for r in after)  # the context ended
    outside = rows[-1]
    assert outside == {k: outside[k] for k in ("time", "level", "logger", "message", "rollout")}
    assert "site" not in outside and outside["rollout"] == "r1" and outside["level"] == "INFO"


def test_exceptions_are_one_line_of_json() -> None:
    lg, buf = _capture()
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        lg.exception("failed")
    (line,) = buf.getvalue().splitlines()
    rec = json.loads(line)
    assert rec["message"] == "failed" and "RuntimeError: boom" in rec["exception"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("9464", ("127.0.0.1", 9464)), (":0", ("127.0.0.1", 0)), ("0.0.0.0:9100", ("0.0.0.0", 9100)),
     ("[::1]:9100", ("::1", 9100)), ("localhost:1", ("localhost", 1))],
)  # fmt: skip
def test_listen_addresses(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("x:80", "host must be an IP"),
        ("1.2.3.4:99999", "port must be 0-65535"),
        ("1.2.3.4:", "port must be a number"),
    ],
)
def test_bad_listen_addresses_name_the_flag(value: str, why: str) -> None:
    with pytest.raises(ValueError, match=f"--metrics-listen: {why}"):
        parse_listen(value)


def test_setup_refuses_unknown_format_and_level() -> None:
    with pytest.raises(ValueError, match="--log-format"):
        logs.setup("INFO", "xml")
    with pytest.raises(ValueError, match="--log-level"):
        logs.setup("LOUD", "json")
