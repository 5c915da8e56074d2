import datetime

from controlplane.api.v1 import release_pb2 as _release_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RolloutAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLLOUT_ACTION_UNSPECIFIED: _ClassVar[RolloutAction]
    ROLLOUT_ACTION_PAUSE: _ClassVar[RolloutAction]
    ROLLOUT_ACTION_RESUME: _ClassVar[RolloutAction]
    ROLLOUT_ACTION_ABORT: _ClassVar[RolloutAction]
    ROLLOUT_ACTION_ROLLBACK: _ClassVar[RolloutAction]
    ROLLOUT_ACTION_PROMOTE: _ClassVar[RolloutAction]
    ROLLOUT_ACTION_UNDO: _ClassVar[RolloutAction]
ROLLOUT_ACTION_UNSPECIFIED: RolloutAction
ROLLOUT_ACTION_PAUSE: RolloutAction
ROLLOUT_ACTION_RESUME: RolloutAction
ROLLOUT_ACTION_ABORT: RolloutAction
ROLLOUT_ACTION_ROLLBACK: RolloutAction
ROLLOUT_ACTION_PROMOTE: RolloutAction
ROLLOUT_ACTION_UNDO: RolloutAction

class Publisher(_message.Message):
    __slots__ = ("name", "public_key", "key_id", "added_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    ADDED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    public_key: bytes
    key_id: str
    added_at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., public_key: _Optional[bytes] = ..., key_id: _Optional[str] = ..., added_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AddPublisherRequest(_message.Message):
    __slots__ = ("name", "public_key")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    name: str
    public_key: bytes
    def __init__(self, name: _Optional[str] = ..., public_key: _Optional[bytes] = ...) -> None: ...

class AddPublisherResponse(_message.Message):
    __slots__ = ("publisher",)
    PUBLISHER_FIELD_NUMBER: _ClassVar[int]
    publisher: Publisher
    def __init__(self, publisher: _Optional[_Union[Publisher, _Mapping]] = ...) -> None: ...

class ListPublishersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPublishersResponse(_message.Message):
    __slots__ = ("publishers",)
    PUBLISHERS_FIELD_NUMBER: _ClassVar[int]
    publishers: _containers.RepeatedCompositeFieldContainer[Publisher]
    def __init__(self, publishers: _Optional[_Iterable[_Union[Publisher, _Mapping]]] = ...) -> None: ...

class CreateReleaseRequest(_message.Message):
    __slots__ = ("signed",)
    SIGNED_FIELD_NUMBER: _ClassVar[int]
    signed: _release_pb2.SignedRelease
    def __init__(self, signed: _Optional[_Union[_release_pb2.SignedRelease, _Mapping]] = ...) -> None: ...

class CreateReleaseResponse(_message.Message):
    __slots__ = ("signed",)
    SIGNED_FIELD_NUMBER: _ClassVar[int]
    signed: _release_pb2.SignedRelease
    def __init__(self, signed: _Optional[_Union[_release_pb2.SignedRelease, _Mapping]] = ...) -> None: ...

class GetReleaseRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetReleaseResponse(_message.Message):
    __slots__ = ("signed", "created_at")
    SIGNED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    signed: _release_pb2.SignedRelease
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, signed: _Optional[_Union[_release_pb2.SignedRelease, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListReleasesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListReleasesResponse(_message.Message):
    __slots__ = ("releases",)
    RELEASES_FIELD_NUMBER: _ClassVar[int]
    releases: _containers.RepeatedCompositeFieldContainer[_release_pb2.SignedRelease]
    def __init__(self, releases: _Optional[_Iterable[_Union[_release_pb2.SignedRelease, _Mapping]]] = ...) -> None: ...

class Placement(_message.Message):
    __slots__ = ("countries", "labels", "replicas_per_site", "max_sites")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    COUNTRIES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_PER_SITE_FIELD_NUMBER: _ClassVar[int]
    MAX_SITES_FIELD_NUMBER: _ClassVar[int]
    countries: _containers.RepeatedScalarFieldContainer[str]
    labels: _containers.ScalarMap[str, str]
    replicas_per_site: int
    max_sites: int
    def __init__(self, countries: _Optional[_Iterable[str]] = ..., labels: _Optional[_Mapping[str, str]] = ..., replicas_per_site: _Optional[int] = ..., max_sites: _Optional[int] = ...) -> None: ...

class Wave(_message.Message):
    __slots__ = ("name", "sites", "percent", "bake_seconds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SITES_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    BAKE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    sites: int
    percent: int
    bake_seconds: float
    def __init__(self, name: _Optional[str] = ..., sites: _Optional[int] = ..., percent: _Optional[int] = ..., bake_seconds: _Optional[float] = ...) -> None: ...

class Gates(_message.Message):
    __slots__ = ("min_ready_ratio", "max_error_rate", "max_latency_p95_ms", "min_safety_score", "timeout_seconds", "interval_seconds", "failure_limit", "progress_deadline_seconds")
    MIN_READY_RATIO_FIELD_NUMBER: _ClassVar[int]
    MAX_ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_LATENCY_P95_MS_FIELD_NUMBER: _ClassVar[int]
    MIN_SAFETY_SCORE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_DEADLINE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    min_ready_ratio: float
    max_error_rate: float
    max_latency_p95_ms: float
    min_safety_score: float
    timeout_seconds: float
    interval_seconds: float
    failure_limit: int
    progress_deadline_seconds: float
    def __init__(self, min_ready_ratio: _Optional[float] = ..., max_error_rate: _Optional[float] = ..., max_latency_p95_ms: _Optional[float] = ..., min_safety_score: _Optional[float] = ..., timeout_seconds: _Optional[float] = ..., interval_seconds: _Optional[float] = ..., failure_limit: _Optional[int] = ..., progress_deadline_seconds: _Optional[float] = ...) -> None: ...

class GateMeasurement(_message.Message):
    __slots__ = ("name", "value", "threshold", "outcome", "detail", "measured")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    MEASURED_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: float
    threshold: float
    outcome: str
    detail: str
    measured: bool
    def __init__(self, name: _Optional[str] = ..., value: _Optional[float] = ..., threshold: _Optional[float] = ..., outcome: _Optional[str] = ..., detail: _Optional[str] = ..., measured: _Optional[bool] = ...) -> None: ...

class Approvals(_message.Message):
    __slots__ = ("country_steward",)
    COUNTRY_STEWARD_FIELD_NUMBER: _ClassVar[int]
    country_steward: bool
    def __init__(self, country_steward: _Optional[bool] = ...) -> None: ...

class RolloutSpec(_message.Message):
    __slots__ = ("name", "release", "placement", "waves", "gates", "approvals")
    NAME_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    WAVES_FIELD_NUMBER: _ClassVar[int]
    GATES_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_FIELD_NUMBER: _ClassVar[int]
    name: str
    release: str
    placement: Placement
    waves: _containers.RepeatedCompositeFieldContainer[Wave]
    gates: Gates
    approvals: Approvals
    def __init__(self, name: _Optional[str] = ..., release: _Optional[str] = ..., placement: _Optional[_Union[Placement, _Mapping]] = ..., waves: _Optional[_Iterable[_Union[Wave, _Mapping]]] = ..., gates: _Optional[_Union[Gates, _Mapping]] = ..., approvals: _Optional[_Union[Approvals, _Mapping]] = ...) -> None: ...

class PlannedSite(_message.Message):
    __slots__ = ("site", "country", "replicas", "score", "region")
    SITE_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    site: str
    country: str
    replicas: int
    score: float
    region: str
    def __init__(self, site: _Optional[str] = ..., country: _Optional[str] = ..., replicas: _Optional[int] = ..., score: _Optional[float] = ..., region: _Optional[str] = ...) -> None: ...

class ExcludedSite(_message.Message):
    __slots__ = ("site", "country", "reasons")
    SITE_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    site: str
    country: str
    reasons: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, site: _Optional[str] = ..., country: _Optional[str] = ..., reasons: _Optional[_Iterable[str]] = ...) -> None: ...

class PlanRolloutRequest(_message.Message):
    __slots__ = ("spec",)
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: RolloutSpec
    def __init__(self, spec: _Optional[_Union[RolloutSpec, _Mapping]] = ...) -> None: ...

class PlanRolloutResponse(_message.Message):
    __slots__ = ("selected", "excluded")
    SELECTED_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_FIELD_NUMBER: _ClassVar[int]
    selected: _containers.RepeatedCompositeFieldContainer[PlannedSite]
    excluded: _containers.RepeatedCompositeFieldContainer[ExcludedSite]
    def __init__(self, selected: _Optional[_Iterable[_Union[PlannedSite, _Mapping]]] = ..., excluded: _Optional[_Iterable[_Union[ExcludedSite, _Mapping]]] = ...) -> None: ...

class RolloutSite(_message.Message):
    __slots__ = ("site", "country", "state", "reason", "replicas", "verified")
    SITE_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    site: str
    country: str
    state: str
    reason: str
    replicas: int
    verified: bool
    def __init__(self, site: _Optional[str] = ..., country: _Optional[str] = ..., state: _Optional[str] = ..., reason: _Optional[str] = ..., replicas: _Optional[int] = ..., verified: _Optional[bool] = ...) -> None: ...

class RolloutWave(_message.Message):
    __slots__ = ("name", "phase", "sites", "bake_until", "gate", "started_at", "gates", "measurements", "failures", "promoted", "next_measurement_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    SITES_FIELD_NUMBER: _ClassVar[int]
    BAKE_UNTIL_FIELD_NUMBER: _ClassVar[int]
    GATE_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    GATES_FIELD_NUMBER: _ClassVar[int]
    MEASUREMENTS_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    PROMOTED_FIELD_NUMBER: _ClassVar[int]
    NEXT_MEASUREMENT_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    phase: str
    sites: _containers.RepeatedCompositeFieldContainer[RolloutSite]
    bake_until: _timestamp_pb2.Timestamp
    gate: str
    started_at: _timestamp_pb2.Timestamp
    gates: _containers.RepeatedCompositeFieldContainer[GateMeasurement]
    measurements: int
    failures: int
    promoted: str
    next_measurement_at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., phase: _Optional[str] = ..., sites: _Optional[_Iterable[_Union[RolloutSite, _Mapping]]] = ..., bake_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., gate: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., gates: _Optional[_Iterable[_Union[GateMeasurement, _Mapping]]] = ..., measurements: _Optional[int] = ..., failures: _Optional[int] = ..., promoted: _Optional[str] = ..., next_measurement_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Rollout(_message.Message):
    __slots__ = ("spec", "phase", "message", "waves", "approved_countries", "pending_countries", "excluded", "created_at", "updated_at", "created_by")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    WAVES_FIELD_NUMBER: _ClassVar[int]
    APPROVED_COUNTRIES_FIELD_NUMBER: _ClassVar[int]
    PENDING_COUNTRIES_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    spec: RolloutSpec
    phase: str
    message: str
    waves: _containers.RepeatedCompositeFieldContainer[RolloutWave]
    approved_countries: _containers.RepeatedScalarFieldContainer[str]
    pending_countries: _containers.RepeatedScalarFieldContainer[str]
    excluded: _containers.RepeatedCompositeFieldContainer[ExcludedSite]
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    created_by: str
    def __init__(self, spec: _Optional[_Union[RolloutSpec, _Mapping]] = ..., phase: _Optional[str] = ..., message: _Optional[str] = ..., waves: _Optional[_Iterable[_Union[RolloutWave, _Mapping]]] = ..., approved_countries: _Optional[_Iterable[str]] = ..., pending_countries: _Optional[_Iterable[str]] = ..., excluded: _Optional[_Iterable[_Union[ExcludedSite, _Mapping]]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ...) -> None: ...

class CreateRolloutRequest(_message.Message):
    __slots__ = ("spec",)
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: RolloutSpec
    def __init__(self, spec: _Optional[_Union[RolloutSpec, _Mapping]] = ...) -> None: ...

class CreateRolloutResponse(_message.Message):
    __slots__ = ("rollout",)
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    rollout: Rollout
    def __init__(self, rollout: _Optional[_Union[Rollout, _Mapping]] = ...) -> None: ...

class GetRolloutRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetRolloutResponse(_message.Message):
    __slots__ = ("rollout",)
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    rollout: Rollout
    def __init__(self, rollout: _Optional[_Union[Rollout, _Mapping]] = ...) -> None: ...

class ListRolloutsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListRolloutsResponse(_message.Message):
    __slots__ = ("rollouts",)
    ROLLOUTS_FIELD_NUMBER: _ClassVar[int]
    rollouts: _containers.RepeatedCompositeFieldContainer[Rollout]
    def __init__(self, rollouts: _Optional[_Iterable[_Union[Rollout, _Mapping]]] = ...) -> None: ...

class UpdateRolloutRequest(_message.Message):
    __slots__ = ("name", "action", "reason", "wave")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    WAVE_FIELD_NUMBER: _ClassVar[int]
    name: str
    action: RolloutAction
    reason: str
    wave: str
    def __init__(self, name: _Optional[str] = ..., action: _Optional[_Union[RolloutAction, str]] = ..., reason: _Optional[str] = ..., wave: _Optional[str] = ...) -> None: ...

class UpdateRolloutResponse(_message.Message):
    __slots__ = ("rollout",)
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    rollout: Rollout
    def __init__(self, rollout: _Optional[_Union[Rollout, _Mapping]] = ...) -> None: ...

class ApproveRolloutRequest(_message.Message):
    __slots__ = ("name", "country")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    name: str
    country: str
    def __init__(self, name: _Optional[str] = ..., country: _Optional[str] = ...) -> None: ...

class ApproveRolloutResponse(_message.Message):
    __slots__ = ("rollout",)
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    rollout: Rollout
    def __init__(self, rollout: _Optional[_Union[Rollout, _Mapping]] = ...) -> None: ...

class DeleteRolloutRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteRolloutResponse(_message.Message):
    __slots__ = ("rollout",)
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    rollout: Rollout
    def __init__(self, rollout: _Optional[_Union[Rollout, _Mapping]] = ...) -> None: ...

class DeleteReleaseRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteReleaseResponse(_message.Message):
    __slots__ = ("signed",)
    SIGNED_FIELD_NUMBER: _ClassVar[int]
    signed: _release_pb2.SignedRelease
    def __init__(self, signed: _Optional[_Union[_release_pb2.SignedRelease, _Mapping]] = ...) -> None: ...
