"""For ``kopf run -m operators.kube.handlers --namespace ai-workloads`` (development, debugging).

Registers the site operator's handlers on kopf's default registry with settings from the
environment (STARGATE_NAMESPACE, STARGATE_FEDERATION_NAMESPACES, …), plus a login handler that
gives the operator's API client the same identity as kopf. Production runs
``stargate-site-operator`` (operators.kube.main), which does the same with the namespaces set.
"""

from __future__ import annotations

import kopf

from operators.kube.main import login_handler
from operators.kube.registry import build_registry
from operators.kube.runtime import Runtime
from operators.kube.settings import Settings

runtime = Runtime(Settings.from_env())
registry = build_registry(runtime, kopf.get_default_registry())
login_handler(runtime, registry)
