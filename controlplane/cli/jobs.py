"""stargatectl datasets (list) and jobs: create -f, get, list, status (--watch), approve, cancel."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from controlplane.api.v1 import jobs_pb2 as jpb
from controlplane.api.v1 import watch_pb2 as wpb
from controlplane.cli.common import client
from controlplane.cli.output import OBJECT_OUTPUT, emit, emit_objects, safe_text
from controlplane.cli.rollouts import manifests_duration
from controlplane.client import manifests
from controlplane.client.job_view import (
    EXIT_CODES,
    EXIT_TIMEOUT,
    change_key,
    dataset_view,
    datasets_table,
    job_view,
    jobs_table,
    render_job,
)


async def _call(args: argparse.Namespace, method: str, request: Any) -> Any:
    async with client(args) as c:
        return await c.call(method, request)


def _emit_job(view: dict[str, Any], fmt: str) -> None:
    emit_objects(view, fmt, kind="job", names=[view["name"]], render_table=render_job)


async def datasets_list(args: argparse.Namespace) -> int:
    req = jpb.ListDatasetsRequest(country=args.country or "", language=args.language or "")
    resp = await _call(args, "ListDatasets", req)
    emit({"items": [dataset_view(d) for d in resp.datasets], "more": resp.more}, args.output, datasets_table)
    if resp.more and args.output == "table":
        print(f"... and {resp.more} more (narrow with --country or --language)")
    return 0


async def jobs_create(args: argparse.Namespace) -> int:
    spec = manifests.load_one(Path(args.file), jpb.LocalizationJobSpec)
    resp = await _call(args, "CreateJob", jpb.CreateJobRequest(spec=spec))
    _emit_job(job_view(resp.job), args.output)
    return 0


async def jobs_get(args: argparse.Namespace) -> int:
    resp = await _call(args, "GetJob", jpb.GetJobRequest(name=args.name))
    _emit_job(job_view(resp.job), args.output)
    return 0


async def jobs_list(args: argparse.Namespace) -> int:
    resp = await _call(args, "ListJobs", jpb.ListJobsRequest())
    items = [job_view(j) for j in resp.jobs]
    emit_objects(
        {"items": items}, args.output, kind="job", names=[j["name"] for j in items], render_table=jobs_table
    )
    return 0


async def jobs_approve(args: argparse.Namespace) -> int:
    resp = await _call(args, "ApproveJob", jpb.ApproveJobRequest(name=args.name, country=args.country))
    _emit_job(job_view(resp.job), args.output)
    return 0


async def jobs_cancel(args: argparse.Namespace) -> int:
    resp = await _call(args, "CancelJob", jpb.CancelJobRequest(name=args.name, reason=args.reason))
    _emit_job(job_view(resp.job), args.output)
    return 0


async def jobs_status(args: argparse.Namespace) -> int:
    """The job's phase, site(s), consent and progress; with --watch, follow it over the Watch
    stream until a final phase (exit 0 Succeeded; 1 Failed, Cancelled, Refused; 3 --timeout)."""
    async with client(args) as c:
        if not args.watch:
            resp = await c.call("GetJob", jpb.GetJobRequest(name=args.name))
            _emit_job(job_view(resp.job), args.output)
            return 0
        last: tuple[Any, ...] | None = None
        view: dict[str, Any] | None = None
        try:
            async with asyncio.timeout(args.watch_timeout or None):
                async for event in c.watch(wpb.WATCH_KIND_JOB, args.name):
                    if event.deleted:
                        print(safe_text(f"error: job {args.name} was deleted"), file=sys.stderr)
                        return 1
                    view = job_view(event.job)
                    if (key := change_key(view)) != last:
                        last = key
                        if args.output == "json":
                            sys.stdout.write(json.dumps(view, separators=(",", ":")) + "\n")
                        else:
                            _emit_job(view, args.output)
                            if args.output in ("table", "wide"):
                                sys.stdout.write("\n")
                        sys.stdout.flush()
                    if view["phase"] in EXIT_CODES:
                        return EXIT_CODES[view["phase"]]
        except TimeoutError:
            where = f" (phase {view['phase']}: {view['message']})" if view else ""
            msg = f"error: timed out after {args.watch_timeout:g}s waiting for job {args.name}{where}"
            print(safe_text(msg), file=sys.stderr)
            return EXIT_TIMEOUT
    return 1


async def jobs_approve_export(args: argparse.Namespace) -> int:
    allow = [c.strip() for c in args.allow.split(",") if c.strip()]
    req = jpb.ApproveVariantExportRequest(release=args.release, allow_countries=allow, reason=args.reason)
    resp = await _call(args, "ApproveVariantExport", req)
    data = {"release": args.release, "country": resp.country, "approved_exports": list(resp.approved_exports)}
    emit(
        data,
        args.output,
        lambda d: f"{d['release']} ({d['country']} data): exports {'; '.join(d['approved_exports'])}",
    )
    return 0


def _out(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", choices=OBJECT_OUTPUT, default="table")


def register(sub: Any) -> None:
    ds = sub.add_parser("datasets", help="datasets the sites offer (summaries only)").add_subparsers(
        dest="cmd", required=True
    )
    p = ds.add_parser("list", help="list datasets, where they are and what they allow")
    p.add_argument("--country", help="only datasets under this country's law (ISO code)")
    p.add_argument("--language", help="only datasets holding this language (BCP 47; fr matches fr-CA)")
    p.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table")
    p.set_defaults(handler=datasets_list)

    jo = sub.add_parser("jobs", help="localisation jobs: work goes to the data").add_subparsers(
        dest="cmd", required=True
    )
    p = jo.add_parser("create", help="place a LocalizationJob (admin); the data's steward then approves")
    p.add_argument("-f", "--file", required=True, help="a LocalizationJob manifest; - reads standard input")
    _out(p)
    p.set_defaults(handler=jobs_create)
    for name, handler, hlp in (("get", jobs_get, "show a job"),):
        p = jo.add_parser(name, help=hlp)
        p.add_argument("name")
        _out(p)
        p.set_defaults(handler=handler)
    p = jo.add_parser("list", help="list jobs")
    _out(p)
    p.set_defaults(handler=jobs_list)
    p = jo.add_parser(
        "status", help="a job's phase, site(s), consent, progress and exclusions; --watch follows it"
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
    _out(p)
    p.set_defaults(handler=jobs_status)
    p = jo.add_parser("approve", help="consent for the data's country (its steward)")
    p.add_argument("name")
    p.add_argument("--country", required=True)
    _out(p)
    p.set_defaults(handler=jobs_approve)
    p = jo.add_parser(
        "approve-export",
        help="consent to a wider export rule for a variant (its data country's steward only)",
    )
    p.add_argument("release", help="the variant release")
    p.add_argument("--allow", required=True, help="the export rule consented to, e.g. FR,BE")
    p.add_argument("--reason", required=True, help="why, for the audit log")
    p.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table")
    p.set_defaults(handler=jobs_approve_export)
    p = jo.add_parser("cancel", help="stop a job: a signed CancelJob goes to its site (admin)")
    p.add_argument("name")
    p.add_argument("--reason", default="", help="why, for the audit log and the site")
    _out(p)
    p.set_defaults(handler=jobs_cancel)
