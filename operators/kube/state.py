"""The site's durable memory, in one ConfigMap in the operator's namespace.

- ``applied.json``: the application record (which directives were applied or refused), so that an
  operator restart resumes after the last sequence and never applies a directive twice;
- ``desired.json``: the last Deploy payload per federation-owned deployment, so that a
  federation-owned ModelDeployment deleted by hand can be restored as the federation last asked
  (an acked directive must stay true at the site).

Not the FederationLink status: its schema is structural, and a real API server prunes fields
it does not declare. Not a Secret: nothing here is secret (ids, names, versions).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import Any

from operators.agent.records import ApplicationRecord, Applied
from operators.kube.kubeapi import CONFIGMAPS, KubeAPI, KubeError
from operators.kube.settings import MANAGED_BY, OPERATOR

log = logging.getLogger(__name__)

#: Entries kept. The agent answers a re-delivery by sequence (<= last) even without the entry,
#: and replays only the latest 256 outcomes, so older entries are history, not needed state.
KEEP = 1024


class KubeRecord(ApplicationRecord):
    def __init__(self, api: KubeAPI, namespace: str, name: str) -> None:
        super().__init__()
        self.api, self.namespace, self.name = api, namespace, name
        self.desired: dict[str, dict[str, Any]] = {}
        self.dirty = False
        self.loaded = False

    async def load(self) -> None:
        """Read the ConfigMap once; later changes come only from this operator."""
        if self.loaded:
            return
        cm = await self.api.get(CONFIGMAPS, self.namespace, self.name)
        data = (cm or {}).get("data") or {}
        self.entries, self._by_id = [], {}
        for raw in json.loads(data.get("applied.json", "[]")):
            e = Applied(**raw)
            self.entries.append(e)
            self._by_id[e.directive_id] = e
        self.desired = dict(json.loads(data.get("desired.json", "{}")))
        self.loaded = True

    def save(self) -> None:
        # Called synchronously by ApplicationRecord.add; the write happens in flush().
        if len(self.entries) > KEEP:
            for e in self.entries[:-KEEP]:
                self._by_id.pop(e.directive_id, None)
            del self.entries[:-KEEP]
        self.dirty = True

    def set_desired(self, name: str, payload: dict[str, Any] | None) -> None:
        if payload is None:
            self.desired.pop(name, None)
        else:
            self.desired[name] = payload
        self.dirty = True

    async def flush(self) -> None:
        if not self.dirty:
            return
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": self.name, "labels": {MANAGED_BY: OPERATOR}},
            "data": {
                "applied.json": json.dumps([asdict(e) for e in self.entries]),
                "desired.json": json.dumps(self.desired, sort_keys=True),
            },
        }
        self.dirty = False
        try:
            await self.api.apply(CONFIGMAPS, self.namespace, body)
        except KubeError:
            self.dirty = True  # the link daemon retries on its next tick
            raise
