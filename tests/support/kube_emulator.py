"""An in-memory Kubernetes API server for tests (test infrastructure, not product code).

kmock 0.8's ``KubernetesEmulator`` stores objects and serves list/watch/fetch, but a real operator
(kopf) and kubectl need more. ``KubeEmulator`` closes the gaps found while measuring (see
/work/shared/notes/dependencies.md):

- objects get ``metadata.resourceVersion`` (one counter, like etcd's revision), ``uid``,
  ``creationTimestamp`` and ``generation``; generation is bumped when anything outside
  metadata/status changes (kopf's JSON-patch ``test`` op needs resourceVersion);
- a failed JSON-patch ``test`` answers 422, as kopf expects, instead of 500;
- the status subresource behaves as in Kubernetes: ``PATCH …/status`` changes only status, a main
  PATCH never changes status, and a create drops status;
- creating a CustomResourceDefinition makes its resources discoverable (and Established);
- core ``v1/namespaces`` are served (with a ``default`` Namespace) and namespaced creates into a
  missing Namespace fail with 404;
- label and field selectors on list/watch, watch from a ``resourceVersion``, ``timeoutSeconds``;
- the request journal is trimmed (kmock rescans it on every request, which gets slow).

Not emulated: admission and schema validation (use kubectl ``--validate=false``), PUT/replace,
server-side apply, delete-collection, garbage collection of owned objects and namespace contents,
watch events older than the watch (the watch replays current objects newer than its version).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import pathlib
import re
import secrets
import threading
import uuid
import warnings
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import kmock
import yaml
from kmock._internal import parsing  # private, only for the namespaces-path fix below

CRDS_DIR = pathlib.Path(__file__).resolve().parents[2] / "charts" / "stargate-site" / "crds"
CRDS = kmock.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
NAMESPACES = kmock.resource("", "v1", "namespaces")
Obj = dict[str, Any]

# kmock's path parser crashes on /api/v1/namespaces and reads /api/v1/namespaces/NAME as a
# namespace without a resource. Wrap it (idempotently) to parse those as the Namespace resource.
_NAMESPACE_PATH = re.compile(r"/api/v1/namespaces(?:/(?P<name>[^/]+)(?:/(?P<sub>status|finalize))?)?/?")
_stock_parse_path = getattr(parsing.parse_path, "stock", parsing.parse_path)


def _parse_path(path: str) -> parsing.ParsedPath:
    if m := _NAMESPACE_PATH.fullmatch(path):
        return parsing.ParsedPath("", "v1", "namespaces", None, m["name"], m["sub"])
    return _stock_parse_path(path)


_parse_path.stock = _stock_parse_path  # type: ignore[attr-defined]
parsing.parse_path = _parse_path


def _error(status: int, reason: str, message: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=status, reason=reason, message=message, details={"causes": []})


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (kmock's own refuses to replace a scalar by a dict)."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _labels_match(selector: str, labels: Mapping[str, str]) -> bool:
    """Equality- and set-based label selectors: a=b, a==b, a!=b, a in (x,y), a notin (x), a, !a."""
    for term in filter(None, (t.strip() for t in re.split(r",(?![^()]*\))", selector))):
        if m := re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", term):
            values = {v.strip() for v in m[3].split(",")}
            if (labels.get(m[1]) in values) != (m[2] == "in"):
                return False
        elif m := re.fullmatch(r"([^!=\s]+)\s*(!=|==|=)\s*(\S*)", term):
            if (labels.get(m[1]) == m[3]) != (m[2] != "!="):
                return False
        elif (term.lstrip("!") in labels) == term.startswith("!"):
            return False
    return True


def _fields_match(selector: str, obj: Mapping[str, Any]) -> bool:
    """Field selectors on dotted paths (metadata.name=x, metadata.namespace!=y, status.phase=z)."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        path, op, expected = re.split(r"(!=|==|=)", term, maxsplit=1)
        value: Any = obj
        for part in path.strip().split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if (str(value if value is not None else "") == expected.strip()) != (op != "!="):
            return False
    return True


@attrs.define(kw_only=True)
class KubeEmulator(kmock.KubernetesEmulator):
    """kmock's emulator with the semantics kopf and kubectl rely on (see the module docstring)."""

    journal_size: int = 200  # requests kept for assertions; kmock rescans them per request
    history_size: int = 8  # versions kept per object in ``objects[…].history``
    check_namespaces: bool = True  # namespaced creates need an existing Namespace, as in Kubernetes
    _revision: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        with warnings.catch_warnings():  # kmock 0.8 uses the deprecated importlib.resources API
            warnings.simplefilter("ignore", DeprecationWarning)
            self.resources.load_bundled()  # core/apps/… discovery, incl. v1/namespaces and CRDs
        meta = {"name": "default", "uid": str(uuid.uuid4()), "creationTimestamp": _now(), "generation": 1}
        default: Obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}
        self._stamp(default)
        self.objects[NAMESPACES, None, "default"] = default

    # Writes happen in the _serve_* fallbacks below, under the lock, so that they can fail with a
    # proper status; the parent's _handle() would store the raw request body first.
    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        for journal in [self._requests, *(payload._requests for payload in self._payloads)]:
            del journal[: max(0, len(journal) - self.journal_size)]
        return await super(kmock.KubernetesEmulator, self)._handle(request)

    async def _serve_version(self, request: kmock.Request) -> kmock.Payload:
        # kmock says "/v1" for the core group and copies short names to subresources (so that
        # kubectl finds "ns" ambiguous with namespaces/status); fix both.
        doc = await super()._serve_version(request)
        if isinstance(doc, dict):
            doc["groupVersion"] = doc["groupVersion"].lstrip("/")
            for entry in doc["resources"]:
                if "/" in entry["name"]:
                    entry.update(shortNames=[], categories=[], verbs=["get", "patch"])
        return doc

    def _known(self, request: kmock.Request) -> kmock.resource:
        res = request.resource
        if res is None or not any(res == known for known in self._get_resources()):
            raise _error(404, "NotFound", "the server could not find the requested resource")
        return res

    def _has_status(self, res: kmock.resource) -> bool:
        return res in self.resources and "status" in self.resources[res].subresources

    def _live(self, res: kmock.resource, namespace: str | None, name: str) -> Obj | None:
        key = (res, namespace, name)
        return None if key not in self.objects or self.objects[key].deleted else self.objects[key].raw

    def _stamp(self, obj: Obj) -> str:
        self._revision += 1
        obj["metadata"]["resourceVersion"] = str(self._revision)
        return obj["metadata"]["resourceVersion"]

    async def _store(self, res: kmock.resource, obj: Obj, event: str) -> None:
        meta = obj["metadata"]
        key = (res, meta.get("namespace"), meta["name"])
        if key not in self.objects:
            self.objects[key] = obj
        else:
            self.objects[key].history.append(obj)
            del self.objects[key].history[: -self.history_size]
        if event == "DELETED":
            self.objects[key].delete()
        if res == CRDS:
            self._register_crd(obj, remove=event == "DELETED")
        await self._buses[res].put({"type": event, "object": copy.deepcopy(obj)})

    def _register_crd(self, crd: Obj, remove: bool) -> None:
        spec, names = crd.get("spec", {}), crd.get("spec", {}).get("names", {})
        for version in spec.get("versions", []):
            res = kmock.resource(spec.get("group"), version.get("name"), names.get("plural"))
            if remove or not version.get("served", True):
                self.resources.pop(res, None)
                continue
            self.resources[res] = kmock.ResourceInfo(
                kind=names.get("kind"),
                singular=names.get("singular"),
                namespaced=spec.get("scope") == "Namespaced",
                verbs={"create", "delete", "get", "list", "patch", "update", "watch"},
                shortnames=names.get("shortNames", []),
                categories=names.get("categories", []),
                subresources=["status"] if "status" in version.get("subresources", {}) else [],
            )

    async def create(self, res: kmock.resource, body: Mapping[str, Any], namespace: str | None = None) -> Obj:
        """Create an object as a POST would (also for seeding tests from the emulator's loop)."""
        if not isinstance(body, Mapping):
            raise _error(400, "BadRequest", "the body must be a JSON object")
        obj = copy.deepcopy(dict(body))
        meta = obj.setdefault("metadata", {})
        namespaced = self.resources[res].namespaced if res in self.resources else namespace is not None
        namespace = (namespace or meta.get("namespace")) if namespaced else None
        if namespace is None:
            meta.pop("namespace", None)
        else:
            meta["namespace"] = namespace
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        if not meta.get("name"):
            raise _error(422, "Invalid", "metadata.name: Required value: name or generateName is required")
        if self._has_status(res):
            obj.pop("status", None)
        if res == CRDS:  # what the apiserver reports once the names are accepted
            conditions = [
                {"type": t, "status": "True", "reason": t, "message": "", "lastTransitionTime": _now()}
                for t in ("NamesAccepted", "Established")
            ]
            obj["status"] = {
                "acceptedNames": obj.get("spec", {}).get("names", {}),
                "conditions": conditions,
                "storedVersions": [v.get("name") for v in obj.get("spec", {}).get("versions", [])],
            }
        async with self._lock:
            if self.check_namespaces and namespace and not self._live(NAMESPACES, None, namespace):
                raise _error(404, "NotFound", f'namespaces "{namespace}" not found')
            if self._live(res, namespace, meta["name"]):
                raise _error(409, "AlreadyExists", f'{res.plural} "{meta["name"]}" already exists')
            meta.pop("deletionTimestamp", None)
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1)
            self._stamp(obj)
            await self._store(res, obj, "ADDED")
        return obj

    async def _serve_create(self, request: kmock.Request) -> kmock.Payload:
        return await self.create(self._known(request), request.data, request.namespace)

    async def _serve_update(self, request: kmock.Request) -> kmock.Payload:
        res, sub, name = self._known(request), request.subresource, request.name or ""
        if sub not in (None, "status") or (sub == "status" and not self._has_status(res)):
            raise _error(404, "NotFound", f"subresource {sub!r} is not served for {res.plural}")
        ctype = next((v for k, v in request.headers.items() if k.lower() == "content-type"), "")
        async with self._lock:
            old = self._live(res, request.namespace, name)
            if old is None:
                raise _error(404, "NotFound", f'{res.plural} "{name}" not found')
            old = copy.deepcopy(old)
            old_meta = copy.deepcopy(old["metadata"])  # `new` may share dicts with `old` below
            try:
                if "json-patch" in ctype:  # RFC 6902, which kopf uses with a resourceVersion test
                    new = jsonpatch.apply_patch(old, request.data)
                elif "merge-patch" in ctype:  # merge and (approximately) strategic merge
                    new = _merge_patch(old, request.data)
                else:
                    raise _error(415, "UnsupportedMediaType", f"unsupported patch type {ctype!r}")
                if not isinstance(new, dict):
                    raise TypeError("the patched object is not an object")
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError) as e:
                raise _error(422, "Invalid", f"the patch cannot be applied: {e}") from e
            patched_rv = new.get("metadata", {}).get("resourceVersion")
            if patched_rv and patched_rv != old["metadata"]["resourceVersion"]:
                raise _error(
                    409,
                    "Conflict",
                    "the object has been modified; please apply your changes "
                    "to the latest version and try again",
                )
            if self._has_status(res):  # each endpoint owns its half of the object
                new = (
                    {**old, "status": new.get("status")}
                    if sub == "status"
                    else {**new, "status": old.get("status")}
                )
                if new["status"] is None:
                    del new["status"]
            meta = new.setdefault("metadata", {})
            for field in ("name", "namespace", "uid", "creationTimestamp", "generation", "deletionTimestamp"):
                meta.pop(field, None)
                if field in old_meta:
                    meta[field] = old_meta[field]
            if {k: v for k, v in new.items() if k not in ("metadata", "status")} != {
                k: v for k, v in old.items() if k not in ("metadata", "status")
            }:
                meta["generation"] = meta.get("generation", 0) + 1
            self._stamp(new)
            await self._store(res, new, "MODIFIED")
            if meta.get("deletionTimestamp") and not meta.get("finalizers"):
                gone = copy.deepcopy(new)
                self._stamp(gone)
                await self._store(res, gone, "DELETED")
        return new

    async def _serve_delete(self, request: kmock.Request) -> kmock.Payload:
        res, name = self._known(request), request.name
        if name is None:
            raise _error(405, "MethodNotAllowed", "delete-collection is not emulated")
        async with self._lock:
            old = self._live(res, request.namespace, name)
            if old is None:
                raise _error(404, "NotFound", f'{res.plural} "{name}" not found')
            obj = copy.deepcopy(old)
            meta = obj["metadata"]
            if meta.get("finalizers"):  # graceful: mark, the finalizers' owners will release it
                if not meta.get("deletionTimestamp"):
                    meta.update(deletionTimestamp=_now(), generation=meta.get("generation", 0) + 1)
                    self._stamp(obj)
                    await self._store(res, obj, "MODIFIED")
            else:
                self._stamp(obj)
                await self._store(res, obj, "DELETED")
        return obj

    def _matches(self, request: kmock.Request, obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata", {})
        return (
            (request.namespace is None or meta.get("namespace") == request.namespace)
            and (request.name is None or meta.get("name") == request.name)
            and _labels_match(request.params.get("labelSelector", ""), meta.get("labels") or {})
            and _fields_match(request.params.get("fieldSelector", ""), obj)
        )

    def _select(self, request: kmock.Request) -> list[Obj]:
        return [
            copy.deepcopy(obj.raw)
            for (res, _, _), obj in self.objects.items()
            if res == request.resource and not obj.deleted and self._matches(request, obj.raw)
        ]

    async def _serve_list(self, request: kmock.Request) -> kmock.Payload:
        res = self._known(request)
        async with self._lock:
            items, revision = self._select(request), str(self._revision)
        info = self.resources[res]
        kind = f"{info.kind or res.plural}List"
        api_version = f"{res.group}/{res.version}" if res.group else res.version
        return {
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {"resourceVersion": revision},
            "items": items,
        }

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[kmock.Payload]:
        res = self._known(request)
        yield b""  # send the headers now, even if no event comes for a while
        since = int(request.params.get("resourceVersion") or 0)
        timeout = float(request.params.get("timeoutSeconds") or 0) or None
        bus = self._buses[res]
        async with self._lock:  # snapshot and bus mark under one lock: no event falls in between
            snapshot = [o for o in self._select(request) if int(o["metadata"]["resourceVersion"]) > since]
            mark = await bus.mark()
        events = bus.stream(since=mark)
        try:
            for obj in snapshot:
                yield {"type": "ADDED", "object": obj}
            deadline = asyncio.get_running_loop().time() + timeout if timeout else None
            while True:
                remaining = None if deadline is None else deadline - asyncio.get_running_loop().time()
                try:
                    event = await asyncio.wait_for(anext(events), remaining)
                except TimeoutError:
                    return
                if self._matches(request, event["object"]):
                    yield event
        finally:
            await events.aclose()  # type: ignore[attr-defined]
            await bus.unmark(mark)


def load_crd_documents(directory: pathlib.Path = CRDS_DIR) -> list[Obj]:
    """All CustomResourceDefinitions in a directory of YAML files (sorted by file name)."""
    docs = [doc for path in sorted(directory.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())]
    return [doc for doc in docs if doc and doc.get("kind") == "CustomResourceDefinition"]


async def load_crds(emulator: KubeEmulator, directory: pathlib.Path = CRDS_DIR) -> None:
    """Create the CRDs in the emulator, as ``kubectl apply -f charts/stargate-site/crds`` would."""
    for crd in load_crd_documents(directory):
        await emulator.create(CRDS, crd)


@contextlib.asynccontextmanager
async def serve_emulator(
    emulator: KubeEmulator | None = None, *, crds: bool = True
) -> AsyncIterator[tuple[KubeEmulator, str]]:
    """Serve an emulator on a free loopback port in the current loop; yields (emulator, URL)."""
    emulator = emulator if emulator is not None else KubeEmulator()
    # Not kmock.Server: it patches aiohttp's resolver process-wide, which breaks when several
    # emulators (one per site) start and stop in other orders or threads.
    runner = aiohttp.web.ServerRunner(
        aiohttp.web.Server(emulator, handler_cancellation=True), shutdown_timeout=0.2
    )
    async with emulator:
        if crds:
            await load_crds(emulator)
        await runner.setup()
        try:
            site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            yield emulator, f"http://{host}:{port}"
        finally:
            await runner.cleanup()


class EmulatorThread:
    """An emulator served from a background thread with its own loop, for sync tests (kubectl)."""

    def __init__(self, emulator: KubeEmulator | None = None, *, crds: bool = True) -> None:
        self._emulator, self._crds = emulator, crds
        self._ready = threading.Event()
        self._error: Exception | None = None
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._main()), name="kube-emulator", daemon=True
        )
        self.emulator: KubeEmulator
        self.url = ""

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        try:
            async with serve_emulator(self._emulator, crds=self._crds) as (self.emulator, self.url):
                self._ready.set()
                await self._stop.wait()
        except Exception as e:  # reported by __enter__
            self._error = e
        finally:
            self._ready.set()

    def __enter__(self) -> EmulatorThread:
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            self._thread.join(1)
            raise RuntimeError(f"the Kubernetes emulator did not start: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._error is None:  # else the loop has ended already
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def objects(self, res: kmock.resource) -> list[Obj]:
        """Snapshot of the live objects of a resource, taken in the emulator's own thread."""

        async def snapshot() -> list[Obj]:
            items = self.emulator.objects.items()
            return [copy.deepcopy(o.raw) for (r, _, _), o in items if r == res and not o.deleted]

        return asyncio.run_coroutine_threadsafe(snapshot(), self._loop).result(5)
