"""The proof that no data crosses a border.

Every field of every message a site can send (the request type of every rpc of SiteService, and
every message type reachable from their fields, through map values and oneof members) must carry
the ``classification`` field option with METADATA or AGGREGATE. The service and its request types
are discovered from the descriptors, so a new rpc or field is covered without editing this file.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, struct_pb2, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, ServiceDescriptor

from controlplane.api.v1 import options_pb2, site_pb2, types_pb2

ALLOWED = frozenset({options_pb2.DATA_CLASS_METADATA, options_pb2.DATA_CLASS_AGGREGATE})

#: Well-known types that are plain values: the classification of the field that holds them applies.
#: Every other google.protobuf message (Any, Struct, Value, ...) could carry arbitrary data and is
#: refused outright.
OPAQUE_VALUE_TYPES = frozenset({"google.protobuf.Timestamp", "google.protobuf.Duration"})
#: The extension, typed loosely: the generated .pyi types it as a plain FieldDescriptor.
CLASSIFICATION: Any = options_pb2.classification
ONLY = "(a site may send only METADATA or AGGREGATE)"


def site_sent_messages(service: ServiceDescriptor) -> list[Descriptor]:
    """The request type of every rpc of ``service``: what a site can put on the wire."""
    return [m.input_type for m in service.methods]


def _classification(field: FieldDescriptor) -> int | None:
    opts = field.GetOptions()
    if not opts.HasExtension(CLASSIFICATION):
        return None
    return int(opts.Extensions[CLASSIFICATION])


def walk(roots: list[Descriptor]) -> tuple[list[str], set[str]]:
    """(violations, full names of every message type visited) for everything reachable from roots."""
    violations: list[str] = []
    visited: set[str] = set()
    stack = list(roots)
    while stack:
        msg = stack.pop()
        if msg.full_name in visited:
            continue
        visited.add(msg.full_name)
        if msg.full_name.startswith("google.protobuf."):
            if msg.full_name not in OPAQUE_VALUE_TYPES:
                violations.append(f"{msg.full_name}: well-known type may carry arbitrary data")
            continue
        is_map_entry = msg.GetOptions().map_entry
        for field in msg.fields:
            # The key/value fields of a synthetic map entry have no options of their own: the map
            # field that holds the entry carries the classification. Its value type is still walked.
            if not is_map_entry:
                cls = _classification(field)
                if cls is None:
                    violations.append(f"{field.full_name}: no classification")
                elif cls not in ALLOWED:
                    name = options_pb2.DataClass.Name(cls)
                    violations.append(f"{field.full_name}: {name} {ONLY}")
            if field.message_type is not None:
                stack.append(field.message_type)
    return sorted(violations), visited


def test_every_field_a_site_sends_is_metadata_or_aggregate() -> None:
    service = site_pb2.DESCRIPTOR.services_by_name["SiteService"]
    roots = site_sent_messages(service)
    violations, visited = walk(roots)
    assert not violations, "fields a site sends must be METADATA or AGGREGATE:\n" + "\n".join(violations)

    # The walk is not vacuous: it found the rpcs and went through oneofs and map values.
    names = {r.full_name for r in roots}
    assert {
        "stargate.federation.v1.EnrollRequest",
        "stargate.federation.v1.ConnectRequest",
        "stargate.federation.v1.RenewCertificateRequest",
    } <= names
    assert {
        "stargate.federation.v1.SiteFacts",  # EnrollRequest.facts
        "stargate.federation.v1.Heartbeat",  # oneof member of ConnectRequest
        "stargate.federation.v1.Reject",  # oneof member of ConnectRequest
        "stargate.federation.v1.AcceleratorCapacity",  # map value type
        "stargate.federation.v1.DeploymentStatus",  # repeated field
    } <= visited


def test_the_health_a_site_reports_is_aggregates_and_metadata_only() -> None:
    # Rollout evidence (issue #11): what a site says it runs (release, digest), which aggregates it
    # measured, and the aggregates themselves. Named here so that a change to them is deliberate.
    fields = types_pb2.DeploymentStatus.DESCRIPTOR.fields_by_name
    expected = {
        "release": options_pb2.DATA_CLASS_METADATA,
        "digest": options_pb2.DATA_CLASS_METADATA,
        "measured": options_pb2.DATA_CLASS_METADATA,
        "ready_replicas": options_pb2.DATA_CLASS_AGGREGATE,
        "error_rate": options_pb2.DATA_CLASS_AGGREGATE,
        "latency_p95_ms": options_pb2.DATA_CLASS_AGGREGATE,
        "safety_score": options_pb2.DATA_CLASS_AGGREGATE,
    }
    assert {name: _classification(fields[name]) for name in expected} == expected
    # The measured list is an enum of aggregate names, not free text a site could fill with data.
    assert fields["measured"].enum_type is not None
    assert fields["measured"].enum_type.full_name == "stargate.federation.v1.HealthMetric"
    _, visited = walk(site_sent_messages(site_pb2.DESCRIPTOR.services_by_name["SiteService"]))
    assert "stargate.federation.v1.DeploymentStatus" in visited


def test_datasets_and_job_progress_a_site_reports_are_metadata_and_aggregates_only() -> None:
    # Issue 15: a dataset goes upstream as its summary, a job's progress as aggregates; both are
    # reached from the heartbeat, and the job's numbers are aggregates. Named so that a new field
    # (a path, a record count, a sample) is a deliberate change of this test, not a silent one.
    _, visited = walk(site_sent_messages(site_pb2.DESCRIPTOR.services_by_name["SiteService"]))
    for name in ("DatasetSummary", "JobStatus", "JobsPolicySummary"):
        assert f"stargate.federation.v1.{name}" in visited
    summary = {f.name for f in types_pb2.DatasetSummary.DESCRIPTOR.fields}
    assert summary == {"name", "jurisdiction", "classification", "languages", "purposes", "size"}
    job = types_pb2.JobStatus.DESCRIPTOR.fields_by_name
    assert {n for n, f in job.items() if _classification(f) == options_pb2.DATA_CLASS_AGGREGATE} == {
        "step",
        "loss",
        "eval_score",
    }
    assert set(job) == {
        "job_id", "phase", "step", "loss", "eval_score", "reason", "output_digest", "variant_signature",
        "publisher_key",
    }  # fmt: skip
    heartbeat = site_pb2.Heartbeat.DESCRIPTOR.fields_by_name
    assert _classification(heartbeat["jobs"]) == options_pb2.DATA_CLASS_AGGREGATE
    assert _classification(heartbeat["datasets"]) == options_pb2.DATA_CLASS_METADATA


def test_the_federation_side_is_not_misread_as_site_sent() -> None:
    # Sanity check of the walker on real descriptors: responses carry CONTROL/CREDENTIAL fields,
    # so walking them must report violations (otherwise the main test could pass on anything).
    service = site_pb2.DESCRIPTOR.services_by_name["SiteService"]
    violations, _ = walk([m.output_type for m in service.methods])
    assert any("EnrollResponse.certificate_pem: DATA_CLASS_CREDENTIAL" in v for v in violations)
    assert any("Directive.id: DATA_CLASS_CONTROL" in v for v in violations)


# --- the walker can fail ---------------------------------------------------------------------------


def _synthetic_service() -> ServiceDescriptor:
    """A pool with one service whose request reaches bad fields through a map value and a oneof."""
    pool = descriptor_pool.DescriptorPool()
    for fd in (descriptor_pb2.DESCRIPTOR, options_pb2.DESCRIPTOR):
        proto = descriptor_pb2.FileDescriptorProto()
        fd.CopyToProto(proto)
        pool.Add(proto)

    f = descriptor_pb2.FileDescriptorProto(
        name="synthetic/leak.proto",
        package="synthetic.v1",
        syntax="proto3",
        dependency=["controlplane/api/v1/options.proto"],
    )
    F = descriptor_pb2.FieldDescriptorProto
    meta = options_pb2.DATA_CLASS_METADATA

    def field(msg, name, number, *, type_name="", cls=None, label=F.LABEL_OPTIONAL, oneof=None):
        fld = msg.field.add(name=name, number=number, label=label)
        if type_name:
            fld.type = F.TYPE_MESSAGE
            fld.type_name = type_name
        else:
            fld.type = F.TYPE_STRING
        if cls is not None:
            fld.options.Extensions[CLASSIFICATION] = cls
        if oneof is not None:
            fld.oneof_index = oneof
        return fld

    req = f.message_type.add(name="Request")
    field(req, "ok", 1, cls=meta)
    field(req, "unclassified", 2)
    field(req, "by_key", 3, type_name=".synthetic.v1.Request.ByKeyEntry", cls=meta, label=F.LABEL_REPEATED)
    req.oneof_decl.add(name="body")
    field(req, "inner", 4, type_name=".synthetic.v1.Inner", cls=meta, oneof=0)
    entry = req.nested_type.add(name="ByKeyEntry")
    entry.options.map_entry = True
    field(entry, "key", 1)
    field(entry, "value", 2, type_name=".synthetic.v1.Value")

    value = f.message_type.add(name="Value")
    field(value, "payload", 1, cls=options_pb2.DATA_CLASS_CONTROL)
    inner = f.message_type.add(name="Inner")
    field(inner, "raw_prompt", 1)
    field(inner, "count", 2, cls=options_pb2.DATA_CLASS_AGGREGATE)

    f.message_type.add(name="Response")
    svc = f.service.add(name="LeakyService")
    svc.method.add(name="Send", input_type=".synthetic.v1.Request", output_type=".synthetic.v1.Response")
    pool.Add(f)
    return pool.FindServiceByName("synthetic.v1.LeakyService")


def test_walker_reports_unclassified_and_wrongly_classified_fields() -> None:
    service = _synthetic_service()
    roots = site_sent_messages(service)
    assert [r.full_name for r in roots] == ["synthetic.v1.Request"]
    violations, visited = walk(roots)
    assert violations == [
        "synthetic.v1.Inner.raw_prompt: no classification",
        "synthetic.v1.Request.unclassified: no classification",
        f"synthetic.v1.Value.payload: DATA_CLASS_CONTROL {ONLY}",
    ]
    assert "synthetic.v1.Response" not in visited


def test_walker_refuses_free_form_well_known_types() -> None:
    assert walk([timestamp_pb2.Timestamp.DESCRIPTOR])[0] == []
    violations, _ = walk([struct_pb2.Struct.DESCRIPTOR])
    assert violations == ["google.protobuf.Struct: well-known type may carry arbitrary data"]
