"""The Kubernetes site operator as a witness of its own history (issue 13 part 5): shown a forked
checkpoint of the federation's audit log, it alarms on the FederationLink (status.logAlarm, the
LogConsistent condition, a Warning Event), refuses Deploys, keeps the alarm until an operator
clears it with the clear-log-alarm annotation."""

from __future__ import annotations

import asyncio
import base64
import time

from controlplane.api.v1 import types_pb2 as tpb
from controlplane.domain.checkpoints import Checkpoint
from controlplane.domain.notes import sign_note
from controlplane.domain.records import checkpoint_key
from controlplane.services.checkpoints import CheckpointRecord
from operators.kube.link import CLEAR_LOG_ALARM
from tests.integration.test_site_operator import deploy, outcome
from tests.integration.test_site_operator_kit import FL, Site, site
from tests.support.federation import Federation
from tests.support.requests import deploy as send_deploy
from tests.support.wait import until

FL_PATH = "/apis/federation.stargate.io/v1alpha1/federationlinks/federation"


def log_condition(s: Site) -> dict[str, str]:
    return next((c for c in s.link_status().get("conditions", []) if c["type"] == "LogConsistent"), {})


async def test_operator_alarms_on_a_forked_checkpoint_until_cleared(fed: Federation) -> None:
    rt = fed.cp.runtime  # type: ignore[union-attr]
    rt.safety.settings.beacon_interval = 0.3  # each beacon shows the newest checkpoint
    rt.deploy_proof_wait = 0.5
    async with site(fed, "fr-par-1", "FR") as fr:
        await until(lambda: fr.link_status().get("logCheckpointSize", 0) > 0, 20, "a checkpoint taken")
        assert log_condition(fr)["status"] == "True", log_condition(fr)
        # Stop the federation's own signing, then append: the newest tree has no checkpoint yet.
        rt.checkpoints.interval = 3600
        await asyncio.sleep(1.5)
        await fed.token("x-1", "FR")
        size, _ = await rt.audit.tree.state()
        # Someone with the store and the log key serves a checkpoint over another root.
        key = rt.checkpoints.key
        forked = sign_note(Checkpoint(key.origin, size, b"\x07" * 32).body(), key.signer)
        rec = CheckpointRecord(size, base64.b64encode(b"\x07" * 32).decode(), forked, time.time())
        await fed.store.put(checkpoint_key(size), rec.to_json())
        await until(lambda: fr.link_status().get("logAlarm"), 20, "an alarm on the FederationLink")
        assert "does not extend" in fr.link_status()["logAlarm"]
        cond = log_condition(fr)
        assert (cond["status"], cond["reason"]) == ("False", "Alarm") and "does not extend" in cond["message"]
        assert [e for e in fr.events("LogAlarm") if e.get("type") == "Warning"]
        async with fed.client() as c:
            d = (await send_deploy(c, deploy("fr-par-1", "atlas"))).directive
        rec2 = await outcome(fed, "fr-par-1", d.id)
        assert rec2.state == tpb.DIRECTIVE_STATE_REJECTED and "alarmed" in rec2.reason, rec2.reason
        # An operator looked into it and clears it; the annotation is removed once done.
        await fr.http("PATCH", FL_PATH, {"metadata": {"annotations": {CLEAR_LOG_ALARM: "yes"}}}, merge=True)
        await until(lambda: not fr.link_status().get("logAlarm"), 20, "the alarm cleared")
        await until(
            lambda: (
                CLEAR_LOG_ALARM
                not in ((fr.get(FL, None, "federation") or {})["metadata"].get("annotations") or {})
            ),
            10,
            "the annotation removed",
        )
        # The link's next status write (a kopf handler may have rewritten the conditions meanwhile).
        await until(lambda: log_condition(fr).get("status") == "True", 20, "LogConsistent again")
