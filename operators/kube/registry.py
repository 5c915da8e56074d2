"""The operator's kopf handlers, defined on a registry by a factory around one Runtime.

A factory (not module-level decorators) so that one process can run several operators, one per
simulated site, each in its own thread and loop (tests/support/kopf_runner.py);
``operators.kube.handlers`` applies it to kopf's default registry for ``kopf run``.

Handlers compute the status they want as a value (pure functions in ``workloads``/``link``) and
put it into ``patch.status`` at the CRDs' declared fields: kopf's "return value" would land in
``status.<handler id>``, which the structural schemas do not declare and a real API server prunes.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from operators.kube import link, reconcile
from operators.kube.kubeapi import SITEPOLICIES, KubeError
from operators.kube.runtime import Runtime
from operators.kube.settings import GROUP, MANAGED_BY, OPERATOR, VERSION
from operators.kube.workloads import condition

FL = (GROUP, VERSION, "federationlinks")
SP = (GROUP, VERSION, "sitepolicies")
MD = (GROUP, VERSION, "modeldeployments")
DS = (GROUP, VERSION, "datasets")


def build_registry(runtime: Runtime, registry: kopf.OperatorRegistry | None = None) -> kopf.OperatorRegistry:
    registry = registry if registry is not None else kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # Progress in annotations only: status.kopf is not in the CRDs' schemas (a real API
        # server would prune it, and kopf would then retry handlers for ever).
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage()
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage()
        # Handler log lines become Events only from WARNING: refusals stay readable in `describe`.
        settings.posting.level = logging.WARNING

    @kopf.on.cleanup(registry=registry)
    async def close(**_: Any) -> None:
        await runtime.close()

    # --- FederationLink ----------------------------------------------------------------------

    @kopf.on.resume(*FL, registry=registry, id="enroll")
    @kopf.on.create(*FL, registry=registry, id="enroll")
    @kopf.on.update(*FL, registry=registry, id="enroll")
    async def enroll(name: str, spec: kopf.Spec, status: kopf.Status, patch: kopf.Patch, **_: Any) -> None:
        try:
            patch.status.update(await link.enroll(runtime, name, spec, status))
        except (kopf.TemporaryError, kopf.PermanentError) as e:
            patch.status.update(link.failed_status(e, status))  # kopf applies the patch anyway
            raise

    @kopf.daemon(
        *FL,
        registry=registry,
        id="link",
        when=lambda status, **_: bool(status.get("enrolled")),
        cancellation_timeout=5,
    )
    async def run_link(
        name: str, body: kopf.Body, spec: kopf.Spec, stopped: kopf.DaemonStopped, **_: Any
    ) -> None:
        # body and spec are live views: the daemon notices a changed FederationLink and relinks.
        await link.LinkDaemon(runtime, name, body, spec).run(stopped)

    # --- SitePolicy ----------------------------------------------------------------------------

    @kopf.on.event(*SP, registry=registry)
    async def site_policy(name: str, event: kopf.RawEvent, status: kopf.Status, **_: Any) -> None:
        # An event handler: no finalizer, no annotations on the site's own object. Re-reading all
        # of them keeps "exactly one SitePolicy" checkable.
        try:
            problems = await runtime.reload_policies()
        except KubeError as e:
            raise kopf.TemporaryError(str(e), delay=5) if e.temporary else kopf.PermanentError(str(e))
        if event.get("type") == "DELETED" or name not in problems:
            return
        problem = problems[name]
        valid = condition(
            "Valid",
            not problem,
            "Invalid" if problem else "Accepted",
            problem or "in force",
            status.get("conditions"),
        )
        old: dict[str, Any] = next(
            (c for c in status.get("conditions") or [] if c.get("type") == "Valid"), {}
        )
        if (old.get("status"), old.get("message")) != (valid["status"], valid["message"]):
            await runtime.api.patch(
                SITEPOLICIES, None, name, {"status": {"conditions": [valid]}}, status=True
            )

    # --- Dataset -> Offered | Refused ----------------------------------------------------------

    @kopf.on.event(*DS, registry=registry)
    async def dataset(**_: Any) -> None:
        # An event handler, as for SitePolicy: the site's own object gets no finalizer and no
        # kopf annotations, only its status. All are re-judged (names must be unique across the
        # federation namespaces); a status write's own event then finds nothing to change.
        try:
            await runtime.backend.jobs.verdicts()
        except KubeError as e:
            raise kopf.TemporaryError(str(e), delay=5) if e.temporary else kopf.PermanentError(str(e))

    # --- ModelDeployment -> Deployment + Service -----------------------------------------------

    @kopf.on.resume(*MD, registry=registry, id="workload")
    @kopf.on.create(*MD, registry=registry, id="workload")
    @kopf.on.update(*MD, registry=registry, id="workload")
    async def workload(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        patch.status.update(await reconcile.reconcile(runtime, dict(body)))

    @kopf.on.event("apps", "v1", "deployments", labels={MANAGED_BY: OPERATOR}, registry=registry)
    async def deployment_changed(body: kopf.Body, **_: Any) -> None:
        await reconcile.deployment_changed(runtime, dict(body))

    return registry
