"""stargatectl rollouts: plan, create, get, list, status (--watch), pause/resume/abort/rollback,
promote, undo, approve, delete."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from controlplane.api.v1 import rollouts_pb2 as opb
from controlplane.api.v1 import watch_pb2 as wpb
from controlplane.cli.common import client
from controlplane.cli.output import OBJECT_OUTPUT, age, emit, emit_objects, safe_text, table
from controlplane.client import manifests
from controlplane.client.rollout_view import EXIT_CODES, EXIT_TIMEOUT, change_key, render_status, rollout_view

_ACTIONS = {
    "pause": opb.ROLLOUT_ACTION_PAUSE,
    "resume": opb.ROLLOUT_ACTION_RESUME,
    "abort": opb.ROLLOUT_ACTION_ABORT,
    "rollback": opb.ROLLOUT_ACTION_ROLLBACK,
    "undo": opb.ROLLOUT_ACTION_UNDO,
}
_HELP = {
    "pause": "hold a rollout where it is (admin)",
    "resume": "continue a paused rollout; its analysis window restarts (admin)",
    "abort": "stop a rollout; sites keep what they run (admin)",
    "rollback": "restore the previous release at every site reached so far (admin)",
    "undo": "back out a Completed (or Failed, Aborted) rollout at every site it reached (admin)",
}


async def rcall(args: argparse.Namespace, method: str, request: Any) -> Any:
    async with client(args) as c:
        return await c.call(method, request)


def emit_rollout(view: dict[str, Any], fmt: str) -> None:
    emit_objects(
        view,
        fmt,
        kind="rollout",
        names=[view["name"]],
        render_table=render_status,
        render_wide=lambda d: render_status(d, wide=True),
    )


def _list_table(d: dict[str, Any], wide: bool = False) -> str:
    rows = []
    for r in d["items"]:
        row = [r["name"], r["release"], r["phase"], r["message"]]
        if wide:
            sites = [s for w in r["waves"] for s in w["sites"]]
            current = next((w["name"] for w in r["waves"] if w["phase"] != "Completed"), "-")
            ready = sum(1 for s in sites if s["state"] == "Ready")
            refused = sum(1 for s in sites if s["state"] == "Refused")
            row[3:3] = [current, f"{ready}/{len(sites)}", refused, r["created_by"], age(r["created_at"])]
        rows.append(row)
    head = ["NAME", "RELEASE", "PHASE", "MESSAGE"]
    if wide:
        head[3:3] = ["WAVE", "READY", "REFUSED", "CREATED BY", "AGE"]
    return table(rows, head)


def _read_spec(args: argparse.Namespace) -> opb.RolloutSpec:
    spec: opb.RolloutSpec = manifests.load_one(Path(args.file), opb.RolloutSpec)
    return spec


async def rollouts_plan(args: argparse.Namespace) -> int:
    resp = await rcall(args, "PlanRollout", opb.PlanRolloutRequest(spec=_read_spec(args)))
    data = {
        "selected": [{"site": s.site, "country": s.country, "replicas": s.replicas} for s in resp.selected],
        "excluded": [
            {"site": e.site, "country": e.country, "reasons": list(e.reasons)} for e in resp.excluded
        ],
    }
    emit(
        data,
        args.output,
        lambda d: table(
            [(s["site"], s["country"], s["replicas"], "selected") for s in d["selected"]]
            + [(e["site"], e["country"], "-", "; ".join(e["reasons"])) for e in d["excluded"]],
            ["SITE", "COUNTRY", "REPLICAS", "DECISION"],
        ),
    )
    return 0


async def rollouts_create(args: argparse.Namespace) -> int:
    resp = await rcall(args, "CreateRollout", opb.CreateRolloutRequest(spec=_read_spec(args)))
    emit_rollout(rollout_view(resp.rollout), args.output)
    return 0


async def rollouts_get(args: argparse.Namespace) -> int:
    resp = await rcall(args, "GetRollout", opb.GetRolloutRequest(name=args.name))
    emit_rollout(rollout_view(resp.rollout), args.output)
    return 0


async def rollouts_list(args: argparse.Namespace) -> int:
    resp = await rcall(args, "ListRollouts", opb.ListRolloutsRequest())
    items = [rollout_view(r) for r in resp.rollouts]
    emit_objects(
        {"items": items},
        args.output,
        kind="rollout",
        names=[r["name"] for r in items],
        render_table=_list_table,
        render_wide=lambda d: _list_table(d, wide=True),
    )
    return 0


async def rollouts_status(args: argparse.Namespace) -> int:
    """Like ``kubectl rollout status``: with --watch, follow until a final phase (exit 0 on
    Completed, 1 on Failed, RolledBack, Aborted; 3 when --timeout passes first), printing only when
    the rollout changed, as the WatchService streams it (no polling). ``-o json`` prints one JSON
    line per change."""
    async with client(args) as c:  # one connection for the whole watch
        if not args.watch:
            resp = await c.get_rollout(opb.GetRolloutRequest(name=args.name))
            emit_rollout(rollout_view(resp.rollout), args.output)
            return 0
        last: tuple[Any, ...] | None = None
        view: dict[str, Any] | None = None
        tty = sys.stdout.isatty()
        try:
            async with asyncio.timeout(args.watch_timeout or None):
                async for event in c.watch(wpb.WATCH_KIND_ROLLOUT, args.name):
                    if event.deleted:
                        print(safe_text(f"error: rollout {args.name} was deleted"), file=sys.stderr)
                        return 1
                    view = rollout_view(event.rollout)
                    key = change_key(view)
                    if key != last:
                        last = key
                        if args.output == "json":
                            sys.stdout.write(json.dumps(view, separators=(",", ":")) + "\n")
                        else:
                            if tty and args.output in ("table", "wide"):
                                sys.stdout.write("\x1b[H\x1b[2J")  # a live view: redraw in place
                            emit_rollout(view, args.output)
                        sys.stdout.flush()
                    if view["phase"] in EXIT_CODES:
                        return EXIT_CODES[view["phase"]]
        except TimeoutError:
            where = f" (phase {view['phase']}: {view['message']})" if view else ""
            print(
                safe_text(
                    f"error: timed out after {args.watch_timeout:g}s waiting for rollout {args.name}{where}"
                ),
                file=sys.stderr,
            )
            return EXIT_TIMEOUT
    return 1


async def rollouts_act(args: argparse.Namespace) -> int:
    req = opb.UpdateRolloutRequest(name=args.name, action=_ACTIONS[args.action], reason=args.reason)
    resp = await rcall(args, "UpdateRollout", req)
    emit_rollout(rollout_view(resp.rollout), args.output)
    return 0


async def rollouts_promote(args: argparse.Namespace) -> int:
    req = opb.UpdateRolloutRequest(
        name=args.name, action=opb.ROLLOUT_ACTION_PROMOTE, reason=args.reason, wave=args.wave
    )
    resp = await rcall(args, "UpdateRollout", req)
    emit_rollout(rollout_view(resp.rollout), args.output)
    return 0


async def rollouts_approve(args: argparse.Namespace) -> int:
    resp = await rcall(
        args, "ApproveRollout", opb.ApproveRolloutRequest(name=args.name, country=args.country)
    )
    emit_rollout(rollout_view(resp.rollout), args.output)
    return 0


async def rollouts_delete(args: argparse.Namespace) -> int:
    resp = await rcall(args, "DeleteRollout", opb.DeleteRolloutRequest(name=args.name))
    view = rollout_view(resp.rollout)
    emit_objects(
        view,
        args.output,
        kind="rollout",
        names=[view["name"]],
        render_table=lambda d: f"rollout {d['name']} deleted",
    )
    return 0


def _out(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", choices=OBJECT_OUTPUT, default="table")


def register(sub: Any) -> None:
    ro = sub.add_parser("rollouts", help="gated multi-country rollouts").add_subparsers(
        dest="cmd", required=True
    )
    for name, handler, hlp in (
        ("plan", rollouts_plan, "show where a rollout would go, and why not elsewhere"),
        ("create", rollouts_create, "start a rollout (admin)"),
    ):
        p = ro.add_parser(name, help=hlp)
        p.add_argument("-f", "--file", required=True, help="a Rollout manifest; - reads standard input")
        _out(p)
        p.set_defaults(handler=handler)
    p = ro.add_parser("get", help="show a rollout")
    p.add_argument("name")
    _out(p)
    p.set_defaults(handler=rollouts_get)
    p = ro.add_parser("list", help="list rollouts")
    _out(p)
    p.set_defaults(handler=rollouts_list)
    p = ro.add_parser(
        "status",
        help="a rollout's waves, gates and sites; --watch follows it like kubectl rollout status "
        "(exit 0 Completed; 1 Failed, RolledBack, Aborted; 3 --timeout)",
    )
    p.add_argument("name")
    p.add_argument("-w", "--watch", action="store_true", help="follow until a final phase")
    p.add_argument(
        "--timeout",
        dest="watch_timeout",
        type=manifests_duration,
        default=0.0,
        help="with --watch: give up after this long (e.g. 90s, 10m); 0 waits for ever",
    )
    p.add_argument(
        "--interval",
        type=float,
        default=1.0,
        help="ignored (kept for scripts): --watch follows the Watch stream",
    )
    _out(p)
    p.set_defaults(handler=rollouts_status)
    for action in _ACTIONS:
        p = ro.add_parser(action, help=_HELP[action])
        p.add_argument("name")
        p.add_argument("--reason", default="", help="why, for the audit log")
        _out(p)
        p.set_defaults(handler=rollouts_act, action=action)
    p = ro.add_parser("promote", help="pass the current wave by hand, like Argo's promote (admin, audited)")
    p.add_argument("name")
    p.add_argument("--wave", required=True, help="the rollout's current wave")
    p.add_argument("--reason", required=True, help="why, for the audit log")
    _out(p)
    p.set_defaults(handler=rollouts_promote)
    p = ro.add_parser("approve", help="consent for a country (its steward)")
    p.add_argument("name")
    p.add_argument("--country", required=True)
    _out(p)
    p.set_defaults(handler=rollouts_approve)
    p = ro.add_parser("delete", help="delete a rollout in a final phase (admin)")
    p.add_argument("name")
    _out(p)
    p.set_defaults(handler=rollouts_delete)


def manifests_duration(text: str) -> float:
    """--timeout: a duration like 90s, 10m (or plain seconds)."""
    try:
        return manifests.duration(float(text) if text.replace(".", "", 1).isdigit() else text, "--timeout")
    except Exception as e:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 10m") from e
