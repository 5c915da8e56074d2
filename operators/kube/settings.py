"""The operator's settings, from the environment the Helm chart sets (see templates/deployment.yaml)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from controlplane.client.retry import LINK, RetryPolicy

GROUP, VERSION = "federation.stargate.io", "v1alpha1"
#: Label on everything the operator creates, and the value kopf's watch on Deployments selects.
MANAGED_BY = "app.kubernetes.io/managed-by"
OPERATOR = "stargate-site-operator"
#: Label on a Deployment/Service naming the ModelDeployment it serves.
MODEL_LABEL = f"{GROUP}/modeldeployment"
#: Annotation a site operator sets to let a held federation deploy run (requireLocalApproval).
APPROVED = f"{GROUP}/approved"
DIRECTIVE_ID = f"{GROUP}/directive-id"
DIRECTIVE_SEQUENCE = f"{GROUP}/directive-sequence"


@dataclass(frozen=True)
class Settings:
    #: The operator's own namespace: join token, CA, identity Secret and state ConfigMap live here.
    namespace: str = "stargate-system"
    #: Namespaces the operator may write workloads to, in order of preference (the chart's RBAC).
    federation_namespaces: tuple[str, ...] = ("ai-workloads",)
    log_level: str = "info"
    #: What a ModelDeployment runs: the site's serving runtime, not something the federation picks.
    runtime_image: str = "ghcr.io/stargate-federation/model-runtime:0.1.0"
    runtime_port: int = 8000
    runtime_class: str = ""
    #: Extended resource a replica asks for per accelerator, and the node label naming its type.
    accelerator_resource: str = "nvidia.com/gpu"
    accelerator_label: str = "federation.stargate.io/accelerator"
    #: A PersistentVolumeClaim (in each federation namespace) mounted read-write at /output in
    #: every localisation job: the site's artifact store for trained models. "": none.
    job_output_claim: str = ""
    identity_secret: str = "stargate-site-identity"  # noqa: S105 (a Secret's name, not a secret)
    state_configmap: str = "stargate-site-state"
    #: How often the link daemon refreshes FederationLink status and restores deleted
    #: federation-owned ModelDeployments.
    resync_seconds: float = 10.0
    #: How often the operator measures its federation-owned deployments (error rate, p95 latency,
    #: safety evaluation; operators/kube/health.py). Heartbeats report the latest measurement.
    metrics_seconds: float = 10.0
    #: Seconds within which an applied halt's audit event must be proven in the federation's log
    #: before the site alarms (operators/agent/site_log.py).
    halt_proof_seconds: float = 60.0
    link_retry: RetryPolicy = field(default=LINK)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        d = cls()
        namespaces = tuple(
            n.strip() for n in env.get("STARGATE_FEDERATION_NAMESPACES", "").split(",") if n.strip()
        )
        return cls(
            namespace=env.get("STARGATE_NAMESPACE", d.namespace),
            federation_namespaces=namespaces or d.federation_namespaces,
            log_level=env.get("STARGATE_LOG_LEVEL", d.log_level),
            runtime_image=env.get("STARGATE_RUNTIME_IMAGE", d.runtime_image),
            runtime_port=int(env.get("STARGATE_RUNTIME_PORT", d.runtime_port)),
            runtime_class=env.get("STARGATE_RUNTIME_CLASS", d.runtime_class),
            accelerator_resource=env.get("STARGATE_ACCELERATOR_RESOURCE", d.accelerator_resource),
            accelerator_label=env.get("STARGATE_ACCELERATOR_LABEL", d.accelerator_label),
            job_output_claim=env.get("STARGATE_JOB_OUTPUT_CLAIM", d.job_output_claim),
            identity_secret=env.get("STARGATE_IDENTITY_SECRET", d.identity_secret),
            state_configmap=env.get("STARGATE_STATE_CONFIGMAP", d.state_configmap),
            resync_seconds=float(env.get("STARGATE_RESYNC_SECONDS", d.resync_seconds)),
            metrics_seconds=float(env.get("STARGATE_METRICS_SECONDS", d.metrics_seconds)),
            halt_proof_seconds=float(env.get("STARGATE_HALT_PROOF_SECONDS", d.halt_proof_seconds)),
        )
