"""kopf works against the test Kubernetes emulator: create → status, delete through a finalizer.

A tiny operator (not the site operator) exercises exactly the API paths kopf uses: discovery,
list+watch, merge-patch of the status subresource, JSON-patch with a resourceVersion test for
finalizers and progress annotations, event posting, and graceful deletion.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import kmock
import kopf
import pytest

from tests.support.kopf_runner import KopfRunner
from tests.support.kube_emulator import KubeEmulator, serve_emulator

MD = kmock.resource("federation.stargate.io", "v1alpha1", "modeldeployments")
DIGEST = "sha256:" + "ab" * 32


def tiny_operator(deleted: threading.Event) -> Callable[[], kopf.OperatorRegistry]:
    def factory() -> kopf.OperatorRegistry:
        registry = kopf.OperatorRegistry()

        @kopf.on.create(
            "federation.stargate.io", "v1alpha1", "modeldeployments", id="created", registry=registry
        )
        def created(spec: kopf.Spec, patch: kopf.Patch, **_: Any) -> dict[str, Any]:
            patch.status["phase"] = "Running"
            patch.status["readyReplicas"] = spec.get("replicas", 1)
            return {"seen": spec["model"]}  # kopf stores it as status.created.seen

        @kopf.on.delete("federation.stargate.io", "v1alpha1", "modeldeployments", registry=registry)
        def removed(**_: Any) -> None:
            deleted.set()

        return registry

    return factory


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> float:
    """Poll until the predicate holds; return the seconds it took."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


@pytest.fixture
async def emulator() -> AsyncIterator[tuple[KubeEmulator, str]]:
    async with serve_emulator() as served:
        await served[0].create(kmock.resource("", "v1", "namespaces"), {"metadata": {"name": "ai-workloads"}})
        yield served


def live(emulator: KubeEmulator, name: str) -> dict[str, Any] | None:
    key = (MD, "ai-workloads", name)
    return None if key not in emulator.objects or emulator.objects[key].deleted else emulator.objects[key].raw


async def test_kopf_create_sets_status_and_delete_passes_finalizer(
    emulator: tuple[KubeEmulator, str],
) -> None:
    em, url = emulator
    deleted = threading.Event()
    runner = KopfRunner(tiny_operator(deleted), url)
    # start()/stop() block on thread events: run them off the loop that serves the emulator.
    await asyncio.to_thread(runner.start)
    try:
        body = {
            "apiVersion": "federation.stargate.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "llama", "namespace": "ai-workloads"},
            "spec": {"model": "llama-3-8b", "version": "1", "digest": DIGEST, "replicas": 2},
        }
        await em.create(MD, body)

        def running() -> bool:
            obj = live(em, "llama")
            return obj is not None and obj.get("status", {}).get("phase") == "Running"

        latency = await wait_for(running)
        assert latency < 3.0, latency  # ~0.05 s measured; a real apiserver: ~0.02 s
        obj = live(em, "llama")
        assert obj is not None
        assert obj["status"]["readyReplicas"] == 2
        assert obj["status"]["created"] == {"seen": "llama-3-8b"}
        assert obj["metadata"]["finalizers"] == ["kopf.zalando.org/KopfFinalizerMarker"]
        assert obj["metadata"]["generation"] == 1  # status and metadata writes do not bump it

        # Deleting marks the object; kopf runs the delete handler and releases the finalizer.
        status, _ = await request(
            url,
            "DELETE",
            "/apis/federation.stargate.io/v1alpha1/namespaces/ai-workloads/modeldeployments/llama",
        )
        assert status == 200
        await wait_for(lambda: live(em, "llama") is None)
        assert deleted.is_set()
        assert runner.error is None
        assert not server_errors(em)
    finally:
        await asyncio.to_thread(runner.stop)


def server_errors(em: KubeEmulator) -> list[Exception]:
    """Errors the emulator answered with 5xx: a gap in the emulator, never an expected answer."""
    return [e for e in em.errors if not isinstance(e, kmock.KubernetesError) or e.status >= 500]


async def request(url: str, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.request(method, url + path, **kwargs) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_emulator_api_semantics(emulator: tuple[KubeEmulator, str]) -> None:
    """The gaps closed over stock kmock, checked directly over HTTP."""
    em, url = emulator
    base = "/apis/federation.stargate.io/v1alpha1"
    status, doc = await request(url, "GET", base)
    assert status == 200
    names = {r["name"]: r for r in doc["resources"]}
    assert names["modeldeployments"]["shortNames"] == ["md"]
    assert "modeldeployments/status" in names and names["sitepolicies"]["namespaced"] is False

    status, ns = await request(url, "GET", "/api/v1/namespaces/default")
    assert status == 200 and ns["metadata"]["name"] == "default"

    md = {
        "metadata": {"name": "m", "labels": {"tier": "2"}},
        "spec": {"model": "x", "version": "1"},
        "status": {"a": 1},
    }
    status, _ = await request(url, "POST", f"{base}/namespaces/missing/modeldeployments", json=md)
    assert status == 404  # no such namespace
    status, created = await request(url, "POST", f"{base}/namespaces/ai-workloads/modeldeployments", json=md)
    assert status == 200 and "status" not in created  # the status subresource drops it on create
    meta = created["metadata"]
    assert meta["generation"] == 1 and meta["uid"] and meta["creationTimestamp"] and meta["resourceVersion"]
    path = f"{base}/namespaces/ai-workloads/modeldeployments/m"

    merge = {"headers": {"Content-Type": "application/merge-patch+json"}}
    status, obj = await request(
        url, "PATCH", path, json={"spec": {"replicas": 3}, "status": {"phase": "X"}}, **merge
    )
    assert status == 200 and obj["metadata"]["generation"] == 2 and "status" not in obj
    status, obj = await request(
        url,
        "PATCH",
        path + "/status",
        json={"spec": {"replicas": 9}, "status": {"phase": "Running"}},
        **merge,
    )
    assert status == 200 and obj["status"] == {"phase": "Running"} and obj["spec"]["replicas"] == 3
    assert obj["metadata"]["generation"] == 2

    stale = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]},
        {"op": "add", "path": "/metadata/finalizers", "value": ["x"]},
    ]
    status, err = await request(
        url, "PATCH", path, json=stale, headers={"Content-Type": "application/json-patch+json"}
    )
    assert status == 422 and err["kind"] == "Status"

    status, listed = await request(
        url, "GET", f"{base}/modeldeployments", params={"labelSelector": "tier in (1,2)"}
    )
    assert [i["metadata"]["name"] for i in listed["items"]] == ["m"]
    status, listed = await request(
        url, "GET", f"{base}/modeldeployments", params={"labelSelector": "tier!=2"}
    )
    assert listed["items"] == []
    status, listed = await request(
        url, "GET", f"{base}/modeldeployments", params={"fieldSelector": "metadata.name=m"}
    )
    assert len(listed["items"]) == 1 and int(listed["metadata"]["resourceVersion"]) >= int(
        obj["metadata"]["resourceVersion"]
    )

    # The journal stays bounded however many requests come.
    for _ in range(em.journal_size + 20):
        await request(url, "GET", "/version")
    assert len(list(em)) <= em.journal_size + 1


async def test_two_sites_each_run_their_own_operator() -> None:
    """One emulator and one kopf thread per site, as the multi-site tests will run them."""
    async with serve_emulator() as (em1, url1), serve_emulator() as (em2, url2):
        runners = []
        for em, url in ((em1, url1), (em2, url2)):
            await em.create(kmock.resource("", "v1", "namespaces"), {"metadata": {"name": "ai-workloads"}})
            runners.append(KopfRunner(tiny_operator(threading.Event()), url))
        await asyncio.gather(*(asyncio.to_thread(r.start) for r in runners))
        try:
            for i, em in enumerate((em1, em2)):
                spec = {"model": f"model-{i}", "version": "1", "digest": DIGEST, "replicas": i}
                await em.create(MD, {"metadata": {"name": "m", "namespace": "ai-workloads"}, "spec": spec})
            for i, em in enumerate((em1, em2)):
                await wait_for(
                    lambda em=em: (live(em, "m") or {}).get("status", {}).get("phase") == "Running"
                )
                assert (live(em, "m") or {})["status"]["created"] == {"seen": f"model-{i}"}
        finally:
            await asyncio.gather(*(asyncio.to_thread(r.stop) for r in runners))
        assert all(r.error is None for r in runners)
        assert not server_errors(em1) and not server_errors(em2)
