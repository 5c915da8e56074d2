import datetime

from controlplane.api.v1 import logproof_pb2 as _logproof_pb2
from controlplane.api.v1 import options_pb2 as _options_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SafetyActionKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SAFETY_ACTION_KIND_UNSPECIFIED: _ClassVar[SafetyActionKind]
    SAFETY_ACTION_KIND_HALT: _ClassVar[SafetyActionKind]
    SAFETY_ACTION_KIND_RESUME: _ClassVar[SafetyActionKind]
    SAFETY_ACTION_KIND_FREEZE: _ClassVar[SafetyActionKind]
    SAFETY_ACTION_KIND_UNFREEZE: _ClassVar[SafetyActionKind]
    SAFETY_ACTION_KIND_LOCAL_HALT: _ClassVar[SafetyActionKind]

class IncidentSeverity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INCIDENT_SEVERITY_UNSPECIFIED: _ClassVar[IncidentSeverity]
    INCIDENT_SEVERITY_1: _ClassVar[IncidentSeverity]
    INCIDENT_SEVERITY_2: _ClassVar[IncidentSeverity]
    INCIDENT_SEVERITY_3: _ClassVar[IncidentSeverity]
    INCIDENT_SEVERITY_4: _ClassVar[IncidentSeverity]
SAFETY_ACTION_KIND_UNSPECIFIED: SafetyActionKind
SAFETY_ACTION_KIND_HALT: SafetyActionKind
SAFETY_ACTION_KIND_RESUME: SafetyActionKind
SAFETY_ACTION_KIND_FREEZE: SafetyActionKind
SAFETY_ACTION_KIND_UNFREEZE: SafetyActionKind
SAFETY_ACTION_KIND_LOCAL_HALT: SafetyActionKind
INCIDENT_SEVERITY_UNSPECIFIED: IncidentSeverity
INCIDENT_SEVERITY_1: IncidentSeverity
INCIDENT_SEVERITY_2: IncidentSeverity
INCIDENT_SEVERITY_3: IncidentSeverity
INCIDENT_SEVERITY_4: IncidentSeverity

class SafetySiteState(_message.Message):
    __slots__ = ("site_id", "state", "reason")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    state: str
    reason: str
    def __init__(self, site_id: _Optional[str] = ..., state: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class SafetyAction(_message.Message):
    __slots__ = ("id", "kind", "state", "release", "scope", "reason", "requested_by", "approvals", "approvals_required", "created_at", "effective_at", "related_id", "acked", "pending", "unreachable", "rejected", "sites", "automatic", "signed_approvals", "roster_version", "single_admin")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_AT_FIELD_NUMBER: _ClassVar[int]
    RELATED_ID_FIELD_NUMBER: _ClassVar[int]
    ACKED_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    UNREACHABLE_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    SITES_FIELD_NUMBER: _ClassVar[int]
    AUTOMATIC_FIELD_NUMBER: _ClassVar[int]
    SIGNED_APPROVALS_FIELD_NUMBER: _ClassVar[int]
    ROSTER_VERSION_FIELD_NUMBER: _ClassVar[int]
    SINGLE_ADMIN_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: SafetyActionKind
    state: str
    release: str
    scope: str
    reason: str
    requested_by: str
    approvals: _containers.RepeatedScalarFieldContainer[str]
    approvals_required: int
    created_at: _timestamp_pb2.Timestamp
    effective_at: _timestamp_pb2.Timestamp
    related_id: str
    acked: int
    pending: int
    unreachable: int
    rejected: int
    sites: _containers.RepeatedCompositeFieldContainer[SafetySiteState]
    automatic: bool
    signed_approvals: _containers.RepeatedCompositeFieldContainer[PersonApproval]
    roster_version: int
    single_admin: bool
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[_Union[SafetyActionKind, str]] = ..., state: _Optional[str] = ..., release: _Optional[str] = ..., scope: _Optional[str] = ..., reason: _Optional[str] = ..., requested_by: _Optional[str] = ..., approvals: _Optional[_Iterable[str]] = ..., approvals_required: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., effective_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., related_id: _Optional[str] = ..., acked: _Optional[int] = ..., pending: _Optional[int] = ..., unreachable: _Optional[int] = ..., rejected: _Optional[int] = ..., sites: _Optional[_Iterable[_Union[SafetySiteState, _Mapping]]] = ..., automatic: _Optional[bool] = ..., signed_approvals: _Optional[_Iterable[_Union[PersonApproval, _Mapping]]] = ..., roster_version: _Optional[int] = ..., single_admin: _Optional[bool] = ...) -> None: ...

class HaltRequest(_message.Message):
    __slots__ = ("release", "scope", "reason", "ttl_seconds")
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    release: str
    scope: str
    reason: str
    ttl_seconds: int
    def __init__(self, release: _Optional[str] = ..., scope: _Optional[str] = ..., reason: _Optional[str] = ..., ttl_seconds: _Optional[int] = ...) -> None: ...

class HaltResponse(_message.Message):
    __slots__ = ("action",)
    ACTION_FIELD_NUMBER: _ClassVar[int]
    action: SafetyAction
    def __init__(self, action: _Optional[_Union[SafetyAction, _Mapping]] = ...) -> None: ...

class ResumeRequest(_message.Message):
    __slots__ = ("halt_id", "reason", "approval")
    HALT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_FIELD_NUMBER: _ClassVar[int]
    halt_id: str
    reason: str
    approval: PersonApproval
    def __init__(self, halt_id: _Optional[str] = ..., reason: _Optional[str] = ..., approval: _Optional[_Union[PersonApproval, _Mapping]] = ...) -> None: ...

class ResumeResponse(_message.Message):
    __slots__ = ("action",)
    ACTION_FIELD_NUMBER: _ClassVar[int]
    action: SafetyAction
    def __init__(self, action: _Optional[_Union[SafetyAction, _Mapping]] = ...) -> None: ...

class FreezeRequest(_message.Message):
    __slots__ = ("scope", "reason")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    scope: str
    reason: str
    def __init__(self, scope: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class FreezeResponse(_message.Message):
    __slots__ = ("action",)
    ACTION_FIELD_NUMBER: _ClassVar[int]
    action: SafetyAction
    def __init__(self, action: _Optional[_Union[SafetyAction, _Mapping]] = ...) -> None: ...

class UnfreezeRequest(_message.Message):
    __slots__ = ("scope", "reason")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    scope: str
    reason: str
    def __init__(self, scope: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class UnfreezeResponse(_message.Message):
    __slots__ = ("action",)
    ACTION_FIELD_NUMBER: _ClassVar[int]
    action: SafetyAction
    def __init__(self, action: _Optional[_Union[SafetyAction, _Mapping]] = ...) -> None: ...

class ApproveSafetyActionRequest(_message.Message):
    __slots__ = ("id", "approval")
    ID_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_FIELD_NUMBER: _ClassVar[int]
    id: str
    approval: PersonApproval
    def __init__(self, id: _Optional[str] = ..., approval: _Optional[_Union[PersonApproval, _Mapping]] = ...) -> None: ...

class ApproveSafetyActionResponse(_message.Message):
    __slots__ = ("action",)
    ACTION_FIELD_NUMBER: _ClassVar[int]
    action: SafetyAction
    def __init__(self, action: _Optional[_Union[SafetyAction, _Mapping]] = ...) -> None: ...

class GetSafetyActionRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetSafetyActionResponse(_message.Message):
    __slots__ = ("action",)
    ACTION_FIELD_NUMBER: _ClassVar[int]
    action: SafetyAction
    def __init__(self, action: _Optional[_Union[SafetyAction, _Mapping]] = ...) -> None: ...

class ListSafetyActionsRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class ListSafetyActionsResponse(_message.Message):
    __slots__ = ("actions",)
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    actions: _containers.RepeatedCompositeFieldContainer[SafetyAction]
    def __init__(self, actions: _Optional[_Iterable[_Union[SafetyAction, _Mapping]]] = ...) -> None: ...

class PersonApproval(_message.Message):
    __slots__ = ("person", "signature")
    PERSON_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    person: str
    signature: bytes
    def __init__(self, person: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class SafetyPublicKey(_message.Message):
    __slots__ = ("key_id", "public_key_pem")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_PEM_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    public_key_pem: str
    def __init__(self, key_id: _Optional[str] = ..., public_key_pem: _Optional[str] = ...) -> None: ...

class HaltPayload(_message.Message):
    __slots__ = ("halt_id", "release", "scope", "reason", "site_id", "approvers", "model", "digest")
    HALT_ID_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVERS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    halt_id: str
    release: str
    scope: str
    reason: str
    site_id: str
    approvers: _containers.RepeatedScalarFieldContainer[str]
    model: str
    digest: str
    def __init__(self, halt_id: _Optional[str] = ..., release: _Optional[str] = ..., scope: _Optional[str] = ..., reason: _Optional[str] = ..., site_id: _Optional[str] = ..., approvers: _Optional[_Iterable[str]] = ..., model: _Optional[str] = ..., digest: _Optional[str] = ...) -> None: ...

class ResumePayload(_message.Message):
    __slots__ = ("halt_id", "release", "reason", "site_id", "approvers", "resume_id", "scope", "model", "digest")
    HALT_ID_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVERS_FIELD_NUMBER: _ClassVar[int]
    RESUME_ID_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    halt_id: str
    release: str
    reason: str
    site_id: str
    approvers: _containers.RepeatedScalarFieldContainer[str]
    resume_id: str
    scope: str
    model: str
    digest: str
    def __init__(self, halt_id: _Optional[str] = ..., release: _Optional[str] = ..., reason: _Optional[str] = ..., site_id: _Optional[str] = ..., approvers: _Optional[_Iterable[str]] = ..., resume_id: _Optional[str] = ..., scope: _Optional[str] = ..., model: _Optional[str] = ..., digest: _Optional[str] = ...) -> None: ...

class Beacon(_message.Message):
    __slots__ = ("site_id", "sequence", "time", "key_id", "signature", "checkpoint", "consistency")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    sequence: int
    time: _timestamp_pb2.Timestamp
    key_id: str
    signature: bytes
    checkpoint: str
    consistency: _logproof_pb2.LogConsistency
    def __init__(self, site_id: _Optional[str] = ..., sequence: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., key_id: _Optional[str] = ..., signature: _Optional[bytes] = ..., checkpoint: _Optional[str] = ..., consistency: _Optional[_Union[_logproof_pb2.LogConsistency, _Mapping]] = ...) -> None: ...

class IncidentReport(_message.Message):
    __slots__ = ("site_id", "release", "severity", "category", "count", "observed_at")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_AT_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    release: str
    severity: IncidentSeverity
    category: str
    count: int
    observed_at: _timestamp_pb2.Timestamp
    def __init__(self, site_id: _Optional[str] = ..., release: _Optional[str] = ..., severity: _Optional[_Union[IncidentSeverity, str]] = ..., category: _Optional[str] = ..., count: _Optional[int] = ..., observed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LocalHaltReport(_message.Message):
    __slots__ = ("site_id", "risk_tier", "releases", "halted_at", "tolerance_seconds")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    RISK_TIER_FIELD_NUMBER: _ClassVar[int]
    RELEASES_FIELD_NUMBER: _ClassVar[int]
    HALTED_AT_FIELD_NUMBER: _ClassVar[int]
    TOLERANCE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    risk_tier: int
    releases: _containers.RepeatedScalarFieldContainer[str]
    halted_at: _timestamp_pb2.Timestamp
    tolerance_seconds: float
    def __init__(self, site_id: _Optional[str] = ..., risk_tier: _Optional[int] = ..., releases: _Optional[_Iterable[str]] = ..., halted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tolerance_seconds: _Optional[float] = ...) -> None: ...
