import datetime

from controlplane.api.v1 import logproof_pb2 as _logproof_pb2
from controlplane.api.v1 import options_pb2 as _options_pb2
from controlplane.api.v1 import safety_pb2 as _safety_pb2
from controlplane.api.v1 import types_pb2 as _types_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EnrollRequest(_message.Message):
    __slots__ = ("token", "csr_pem", "facts")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    CSR_PEM_FIELD_NUMBER: _ClassVar[int]
    FACTS_FIELD_NUMBER: _ClassVar[int]
    token: str
    csr_pem: str
    facts: _types_pb2.SiteFacts
    def __init__(self, token: _Optional[str] = ..., csr_pem: _Optional[str] = ..., facts: _Optional[_Union[_types_pb2.SiteFacts, _Mapping]] = ...) -> None: ...

class EnrollResponse(_message.Message):
    __slots__ = ("certificate_pem", "ca_bundle_pem", "not_after", "safety_keys", "directive_key", "publishers", "log_vkey", "roster_chain")
    CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    CA_BUNDLE_PEM_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    SAFETY_KEYS_FIELD_NUMBER: _ClassVar[int]
    DIRECTIVE_KEY_FIELD_NUMBER: _ClassVar[int]
    PUBLISHERS_FIELD_NUMBER: _ClassVar[int]
    LOG_VKEY_FIELD_NUMBER: _ClassVar[int]
    ROSTER_CHAIN_FIELD_NUMBER: _ClassVar[int]
    certificate_pem: str
    ca_bundle_pem: str
    not_after: _timestamp_pb2.Timestamp
    safety_keys: _containers.RepeatedCompositeFieldContainer[_safety_pb2.SafetyPublicKey]
    directive_key: _safety_pb2.SafetyPublicKey
    publishers: _containers.RepeatedCompositeFieldContainer[_types_pb2.TrustedPublisher]
    log_vkey: str
    roster_chain: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, certificate_pem: _Optional[str] = ..., ca_bundle_pem: _Optional[str] = ..., not_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., safety_keys: _Optional[_Iterable[_Union[_safety_pb2.SafetyPublicKey, _Mapping]]] = ..., directive_key: _Optional[_Union[_safety_pb2.SafetyPublicKey, _Mapping]] = ..., publishers: _Optional[_Iterable[_Union[_types_pb2.TrustedPublisher, _Mapping]]] = ..., log_vkey: _Optional[str] = ..., roster_chain: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ConnectRequest(_message.Message):
    __slots__ = ("hello", "heartbeat", "ack", "reject", "incident", "local_halt", "log_proof_request")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    REJECT_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_FIELD_NUMBER: _ClassVar[int]
    LOCAL_HALT_FIELD_NUMBER: _ClassVar[int]
    LOG_PROOF_REQUEST_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    heartbeat: Heartbeat
    ack: Ack
    reject: Reject
    incident: _safety_pb2.IncidentReport
    local_halt: _safety_pb2.LocalHaltReport
    log_proof_request: _logproof_pb2.LogProofRequest
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., ack: _Optional[_Union[Ack, _Mapping]] = ..., reject: _Optional[_Union[Reject, _Mapping]] = ..., incident: _Optional[_Union[_safety_pb2.IncidentReport, _Mapping]] = ..., local_halt: _Optional[_Union[_safety_pb2.LocalHaltReport, _Mapping]] = ..., log_proof_request: _Optional[_Union[_logproof_pb2.LogProofRequest, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("site_id", "facts", "last_applied_sequence", "last_safety_sequence", "min_witnesses", "witnesses", "checkpoint_size")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    FACTS_FIELD_NUMBER: _ClassVar[int]
    LAST_APPLIED_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LAST_SAFETY_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    MIN_WITNESSES_FIELD_NUMBER: _ClassVar[int]
    WITNESSES_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_SIZE_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    facts: _types_pb2.SiteFacts
    last_applied_sequence: int
    last_safety_sequence: int
    min_witnesses: int
    witnesses: _containers.RepeatedScalarFieldContainer[str]
    checkpoint_size: int
    def __init__(self, site_id: _Optional[str] = ..., facts: _Optional[_Union[_types_pb2.SiteFacts, _Mapping]] = ..., last_applied_sequence: _Optional[int] = ..., last_safety_sequence: _Optional[int] = ..., min_witnesses: _Optional[int] = ..., witnesses: _Optional[_Iterable[str]] = ..., checkpoint_size: _Optional[int] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("site_id", "capacity", "health", "deployments", "last_applied_sequence", "datasets", "jobs")
    class CapacityEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.AcceleratorCapacity
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.AcceleratorCapacity, _Mapping]] = ...) -> None: ...
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    LAST_APPLIED_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    capacity: _containers.MessageMap[str, _types_pb2.AcceleratorCapacity]
    health: _types_pb2.SiteHealth
    deployments: _containers.RepeatedCompositeFieldContainer[_types_pb2.DeploymentStatus]
    last_applied_sequence: int
    datasets: _containers.RepeatedCompositeFieldContainer[_types_pb2.DatasetSummary]
    jobs: _containers.RepeatedCompositeFieldContainer[_types_pb2.JobStatus]
    def __init__(self, site_id: _Optional[str] = ..., capacity: _Optional[_Mapping[str, _types_pb2.AcceleratorCapacity]] = ..., health: _Optional[_Union[_types_pb2.SiteHealth, str]] = ..., deployments: _Optional[_Iterable[_Union[_types_pb2.DeploymentStatus, _Mapping]]] = ..., last_applied_sequence: _Optional[int] = ..., datasets: _Optional[_Iterable[_Union[_types_pb2.DatasetSummary, _Mapping]]] = ..., jobs: _Optional[_Iterable[_Union[_types_pb2.JobStatus, _Mapping]]] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("site_id", "directive_id", "sequence", "safety_sequence")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    DIRECTIVE_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SAFETY_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    directive_id: str
    sequence: int
    safety_sequence: int
    def __init__(self, site_id: _Optional[str] = ..., directive_id: _Optional[str] = ..., sequence: _Optional[int] = ..., safety_sequence: _Optional[int] = ...) -> None: ...

class Reject(_message.Message):
    __slots__ = ("site_id", "directive_id", "sequence", "reason", "safety_sequence")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    DIRECTIVE_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SAFETY_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    directive_id: str
    sequence: int
    reason: str
    safety_sequence: int
    def __init__(self, site_id: _Optional[str] = ..., directive_id: _Optional[str] = ..., sequence: _Optional[int] = ..., reason: _Optional[str] = ..., safety_sequence: _Optional[int] = ...) -> None: ...

class ConnectResponse(_message.Message):
    __slots__ = ("welcome", "directive", "beacon", "log_proof", "roster")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    DIRECTIVE_FIELD_NUMBER: _ClassVar[int]
    BEACON_FIELD_NUMBER: _ClassVar[int]
    LOG_PROOF_FIELD_NUMBER: _ClassVar[int]
    ROSTER_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    directive: _types_pb2.Directive
    beacon: _safety_pb2.Beacon
    log_proof: _logproof_pb2.LogProofResponse
    roster: RosterUpdate
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., directive: _Optional[_Union[_types_pb2.Directive, _Mapping]] = ..., beacon: _Optional[_Union[_safety_pb2.Beacon, _Mapping]] = ..., log_proof: _Optional[_Union[_logproof_pb2.LogProofResponse, _Mapping]] = ..., roster: _Optional[_Union[RosterUpdate, _Mapping]] = ...) -> None: ...

class RosterUpdate(_message.Message):
    __slots__ = ("chain",)
    CHAIN_FIELD_NUMBER: _ClassVar[int]
    chain: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, chain: _Optional[_Iterable[bytes]] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("replica_id", "heartbeat_interval_seconds", "server_time")
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SERVER_TIME_FIELD_NUMBER: _ClassVar[int]
    replica_id: str
    heartbeat_interval_seconds: float
    server_time: _timestamp_pb2.Timestamp
    def __init__(self, replica_id: _Optional[str] = ..., heartbeat_interval_seconds: _Optional[float] = ..., server_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RenewCertificateRequest(_message.Message):
    __slots__ = ("site_id", "csr_pem")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    CSR_PEM_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    csr_pem: str
    def __init__(self, site_id: _Optional[str] = ..., csr_pem: _Optional[str] = ...) -> None: ...

class RenewCertificateResponse(_message.Message):
    __slots__ = ("certificate_pem", "ca_bundle_pem", "not_after")
    CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    CA_BUNDLE_PEM_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    certificate_pem: str
    ca_bundle_pem: str
    not_after: _timestamp_pb2.Timestamp
    def __init__(self, certificate_pem: _Optional[str] = ..., ca_bundle_pem: _Optional[str] = ..., not_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReportIncidentRequest(_message.Message):
    __slots__ = ("incident",)
    INCIDENT_FIELD_NUMBER: _ClassVar[int]
    incident: _safety_pb2.IncidentReport
    def __init__(self, incident: _Optional[_Union[_safety_pb2.IncidentReport, _Mapping]] = ...) -> None: ...

class ReportIncidentResponse(_message.Message):
    __slots__ = ("recorded",)
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    recorded: bool
    def __init__(self, recorded: _Optional[bool] = ...) -> None: ...
