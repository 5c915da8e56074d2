"""Real stargatectl processes against a federation whose store holds hostile text (as an older
version, an operator with etcd access, or a person's free text could leave it): no control
character reaches the terminal in table or text output, while JSON and YAML stay faithful. And
``directives cancel`` as a real process."""

from __future__ import annotations

import asyncio
import json
import uuid

import yaml

from controlplane.api.v1 import federation_pb2 as fpb
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.domain.records import SiteRecord, site_key
from tests.support.federation import Federation
from tests.support.procs import Result, assert_one_line_error, run
from tests.support.requests import deploy as send_deploy
from tests.support.requests import deploy_request

ESC = "\x1b[2J\x1b]0;owned\x07"
HOSTILE = {
    "region": f"paris{ESC}",
    "label": "gold\u202eclip",
    "c1": "c1\x9b31m",
    "del": "x\x7fy",
    "deployment": f"atlas{ESC}",
}
RAW = ("\x1b", "\x07", "\u202e", "\x9b", "\x7f")


async def _cli(fed: Federation, *args: str) -> Result:
    return await asyncio.to_thread(run, "--server", fed.address, *args, config=fed.dir / "stargatectl.yaml")


async def _plant(fed: Federation) -> None:
    """A site whose stored facts carry control characters, an audit event and a directive reason too."""
    site = await fed.add_site("fr-par-1", "FR")
    await site.stop()  # its heartbeats would overwrite the planted facts
    assert fed.cp is not None and fed.cp.runtime is not None
    rt = fed.cp.runtime
    # Wait until the federation's side of the link is gone: a heartbeat it was still storing
    # could otherwise land after the plant (seen once in a full run).
    for _ in range(500):
        if "fr-par-1" not in rt.liveness.local():
            break
        await asyncio.sleep(0.01)
    kv = await fed.store.get(site_key("fr-par-1"))
    assert kv is not None
    rec = SiteRecord.from_json(kv.value).replace(
        region=HOSTILE["region"],
        labels={"tier": HOSTILE["label"], f"k{HOSTILE['del']}": HOSTILE["c1"]},
        operator_version=HOSTILE["c1"],
        deployments=[{"name": HOSTILE["deployment"], "model": HOSTILE["label"], "phase": ESC}],
    )
    await fed.store.put(kv.key, rec.to_json())
    async with fed.client() as c:
        await c.call(
            "CordonSite", fpb.CordonSiteRequest(site_id="fr-par-1", reason=f"maintenance{ESC}\u202e")
        )
        d = (await send_deploy(c, deploy_request("fr-par-1", "a"))).directive
    await _rejected_with_hostile_reason(fed, d)


async def _rejected_with_hostile_reason(fed: Federation, directive: tpb.Directive) -> None:
    assert fed.cp is not None and fed.cp.runtime is not None
    await fed.cp.runtime.directives.complete(
        "spiffe://x/site/fr-par-1",
        "fr-par-1",
        directive.id,
        directive.sequence,
        rejected=True,
        reason=f"no{ESC}",
    )


def _clean(r: Result) -> None:
    assert r.code == 0, r.err
    for ch in RAW:
        assert ch not in r.out and ch not in r.err, (repr(ch), r.out)


async def test_control_characters_never_reach_the_terminal_but_json_and_yaml_stay_faithful(
    fed: Federation,
) -> None:
    await _plant(fed)
    for args in (
        ("sites", "list"),
        ("sites", "get", "fr-par-1"),
        ("directives", "list", "--site", "fr-par-1"),
        ("audit", "list"),
    ):
        r = await _cli(fed, *args)
        _clean(r)
        assert "\\x1b[2J" in r.out, (args, r.out)  # shown, escaped
    r = await _cli(fed, "sites", "list", "-o", "json")
    _clean(r)
    site = r.json()["items"][0]
    assert site["region"] == HOSTILE["region"] and site["labels"]["tier"] == HOSTILE["label"]
    assert site["deployments"][0]["name"] == HOSTILE["deployment"]
    r = await _cli(fed, "sites", "get", "fr-par-1", "-o", "yaml")
    _clean(r)
    data = yaml.safe_load(r.out)
    assert data["region"] == HOSTILE["region"] and data["labels"][f"k{HOSTILE['del']}"] == HOSTILE["c1"]
    r = await _cli(fed, "audit", "list", "-o", "json")
    _clean(r)
    assert any(e["reason"] == f"maintenance{ESC}\u202e" for e in json.loads(r.out)["items"])
    r = await _cli(fed, "directives", "list", "--site", "fr-par-1", "-o", "yaml")
    _clean(r)
    assert yaml.safe_load(r.out)["items"][0]["reason"] == f"no{ESC}"
    # An error message quoting input is escaped too.
    r = await _cli(fed, "sites", "get", f"x{ESC}")
    assert_one_line_error(r, "site_id")
    _clean(Result(0, r.out, r.err))


async def test_directives_cancel_as_a_real_process(fed: Federation) -> None:
    site = await fed.add_site("fr-par-1", "FR")
    await site.stop()
    async with fed.client() as c:
        queued = [(await send_deploy(c, deploy_request("fr-par-1", n))).directive for n in ("one", "two")]
    r = await _cli(
        fed, "directives", "cancel", "--site", "fr-par-1", "--id", queued[0].id, "--reason", "typo"
    )
    assert r.code == 0, r.err
    assert f"directive {queued[0].id} (sequence {queued[0].sequence}) of fr-par-1 cancelled: typo" in r.out
    r = await _cli(
        fed, "directives", "cancel", "--site", "fr-par-1", "--sequence", str(queued[1].sequence), "-o", "json"
    )
    assert r.code == 0 and r.json()["state"] == "Cancelled", r.err
    assert_one_line_error(
        await _cli(fed, "directives", "cancel", "--site", "fr-par-1", "--id", queued[0].id), "only a Pending"
    )
    assert_one_line_error(await _cli(fed, "directives", "cancel", "--site", "fr-par-1"), "--id")
    assert_one_line_error(
        await _cli(fed, "directives", "cancel", "--site", "fr-par-1", "--id", str(uuid.uuid4())), "not found"
    )
    r = await _cli(fed, "directives", "list", "--site", "fr-par-1", "-o", "json")
    assert [i["state"] for i in r.json()["items"]] == ["Cancelled", "Cancelled"]


async def test_an_unreadable_site_record_is_shown_not_fatal(fed: Federation) -> None:
    """A site record edited into garbage in the store: `sites list` still lists every site, the
    broken one as Unreachable with the defect named; `sites get` of it is a one-line error."""
    await fed.add_site("fr-par-1", "FR")
    await fed.add_site("de-fra-1", "DE")
    kv = await fed.store.get(site_key("de-fra-1"))
    assert kv is not None
    await fed.store.put(kv.key, b'{"site_id": "de-fra-1", "country": "DE", "bogus_no_close": ')
    r = await _cli(fed, "sites", "list", "-o", "json")
    assert r.code == 0, r.err
    by_id = {s["id"]: s for s in r.json()["items"]}
    assert set(by_id) == {"fr-par-1", "de-fra-1"}, by_id
    assert by_id["de-fra-1"]["status"] == "Unreachable"
    assert by_id["de-fra-1"]["labels"] == {"stargate/record": "unreadable"}
    r = await _cli(fed, "sites", "list")
    assert r.code == 0 and "de-fra-1" in r.out, r.err
    r = await _cli(fed, "sites", "get", "de-fra-1")
    assert_one_line_error(r, "unreadable")
