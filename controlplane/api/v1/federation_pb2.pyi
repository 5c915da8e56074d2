import datetime

from controlplane.api.v1 import types_pb2 as _types_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_ADMIN: _ClassVar[Role]
    ROLE_STEWARD: _ClassVar[Role]
    ROLE_AUDITOR: _ClassVar[Role]
    ROLE_SITE: _ClassVar[Role]
ROLE_UNSPECIFIED: Role
ROLE_ADMIN: Role
ROLE_STEWARD: Role
ROLE_AUDITOR: Role
ROLE_SITE: Role

class Site(_message.Message):
    __slots__ = ("site_id", "country", "region", "labels", "capacity", "security_tier", "status", "last_heartbeat", "operator_version", "certificate_fingerprint", "certificate_not_after", "cordoned", "enrolled_at", "last_applied_sequence", "health", "deployments", "connected_replica")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class CapacityEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.AcceleratorCapacity
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.AcceleratorCapacity, _Mapping]] = ...) -> None: ...
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    SECURITY_TIER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_VERSION_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    CORDONED_FIELD_NUMBER: _ClassVar[int]
    ENROLLED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_APPLIED_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_REPLICA_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    country: str
    region: str
    labels: _containers.ScalarMap[str, str]
    capacity: _containers.MessageMap[str, _types_pb2.AcceleratorCapacity]
    security_tier: int
    status: _types_pb2.SiteStatus
    last_heartbeat: _timestamp_pb2.Timestamp
    operator_version: str
    certificate_fingerprint: str
    certificate_not_after: _timestamp_pb2.Timestamp
    cordoned: bool
    enrolled_at: _timestamp_pb2.Timestamp
    last_applied_sequence: int
    health: _types_pb2.SiteHealth
    deployments: _containers.RepeatedCompositeFieldContainer[_types_pb2.DeploymentStatus]
    connected_replica: str
    def __init__(self, site_id: _Optional[str] = ..., country: _Optional[str] = ..., region: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., capacity: _Optional[_Mapping[str, _types_pb2.AcceleratorCapacity]] = ..., security_tier: _Optional[int] = ..., status: _Optional[_Union[_types_pb2.SiteStatus, str]] = ..., last_heartbeat: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., operator_version: _Optional[str] = ..., certificate_fingerprint: _Optional[str] = ..., certificate_not_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cordoned: _Optional[bool] = ..., enrolled_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_applied_sequence: _Optional[int] = ..., health: _Optional[_Union[_types_pb2.SiteHealth, str]] = ..., deployments: _Optional[_Iterable[_Union[_types_pb2.DeploymentStatus, _Mapping]]] = ..., connected_replica: _Optional[str] = ...) -> None: ...

class CreateJoinTokenRequest(_message.Message):
    __slots__ = ("site_id", "country", "ttl_seconds")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    country: str
    ttl_seconds: int
    def __init__(self, site_id: _Optional[str] = ..., country: _Optional[str] = ..., ttl_seconds: _Optional[int] = ...) -> None: ...

class CreateJoinTokenResponse(_message.Message):
    __slots__ = ("token", "site_id", "country", "expires_at")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    token: str
    site_id: str
    country: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, token: _Optional[str] = ..., site_id: _Optional[str] = ..., country: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListSitesRequest(_message.Message):
    __slots__ = ("country",)
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    country: str
    def __init__(self, country: _Optional[str] = ...) -> None: ...

class ListSitesResponse(_message.Message):
    __slots__ = ("sites",)
    SITES_FIELD_NUMBER: _ClassVar[int]
    sites: _containers.RepeatedCompositeFieldContainer[Site]
    def __init__(self, sites: _Optional[_Iterable[_Union[Site, _Mapping]]] = ...) -> None: ...

class GetSiteRequest(_message.Message):
    __slots__ = ("site_id",)
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    def __init__(self, site_id: _Optional[str] = ...) -> None: ...

class GetSiteResponse(_message.Message):
    __slots__ = ("site",)
    SITE_FIELD_NUMBER: _ClassVar[int]
    site: Site
    def __init__(self, site: _Optional[_Union[Site, _Mapping]] = ...) -> None: ...

class CordonSiteRequest(_message.Message):
    __slots__ = ("site_id", "reason")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    reason: str
    def __init__(self, site_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CordonSiteResponse(_message.Message):
    __slots__ = ("site",)
    SITE_FIELD_NUMBER: _ClassVar[int]
    site: Site
    def __init__(self, site: _Optional[_Union[Site, _Mapping]] = ...) -> None: ...

class UncordonSiteRequest(_message.Message):
    __slots__ = ("site_id",)
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    def __init__(self, site_id: _Optional[str] = ...) -> None: ...

class UncordonSiteResponse(_message.Message):
    __slots__ = ("site",)
    SITE_FIELD_NUMBER: _ClassVar[int]
    site: Site
    def __init__(self, site: _Optional[_Union[Site, _Mapping]] = ...) -> None: ...

class DeployRequest(_message.Message):
    __slots__ = ("site_id", "deploy", "ttl_seconds", "request_id", "release")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOY_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    deploy: _types_pb2.DeployPayload
    ttl_seconds: int
    request_id: str
    release: str
    def __init__(self, site_id: _Optional[str] = ..., deploy: _Optional[_Union[_types_pb2.DeployPayload, _Mapping]] = ..., ttl_seconds: _Optional[int] = ..., request_id: _Optional[str] = ..., release: _Optional[str] = ...) -> None: ...

class DeployResponse(_message.Message):
    __slots__ = ("directive",)
    DIRECTIVE_FIELD_NUMBER: _ClassVar[int]
    directive: _types_pb2.Directive
    def __init__(self, directive: _Optional[_Union[_types_pb2.Directive, _Mapping]] = ...) -> None: ...

class UndeployRequest(_message.Message):
    __slots__ = ("site_id", "deployment_name", "ttl_seconds", "request_id")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_NAME_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    deployment_name: str
    ttl_seconds: int
    request_id: str
    def __init__(self, site_id: _Optional[str] = ..., deployment_name: _Optional[str] = ..., ttl_seconds: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class UndeployResponse(_message.Message):
    __slots__ = ("directive",)
    DIRECTIVE_FIELD_NUMBER: _ClassVar[int]
    directive: _types_pb2.Directive
    def __init__(self, directive: _Optional[_Union[_types_pb2.Directive, _Mapping]] = ...) -> None: ...

class ListDirectivesRequest(_message.Message):
    __slots__ = ("site_id",)
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    def __init__(self, site_id: _Optional[str] = ...) -> None: ...

class ListDirectivesResponse(_message.Message):
    __slots__ = ("directives",)
    DIRECTIVES_FIELD_NUMBER: _ClassVar[int]
    directives: _containers.RepeatedCompositeFieldContainer[_types_pb2.DirectiveRecord]
    def __init__(self, directives: _Optional[_Iterable[_Union[_types_pb2.DirectiveRecord, _Mapping]]] = ...) -> None: ...

class CancelDirectiveRequest(_message.Message):
    __slots__ = ("site_id", "id", "sequence", "reason")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    id: str
    sequence: int
    reason: str
    def __init__(self, site_id: _Optional[str] = ..., id: _Optional[str] = ..., sequence: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelDirectiveResponse(_message.Message):
    __slots__ = ("directive",)
    DIRECTIVE_FIELD_NUMBER: _ClassVar[int]
    directive: _types_pb2.DirectiveRecord
    def __init__(self, directive: _Optional[_Union[_types_pb2.DirectiveRecord, _Mapping]] = ...) -> None: ...

class IssueUserCertificateRequest(_message.Message):
    __slots__ = ("name", "role", "country", "csr_pem", "ttl_seconds", "csr_signature")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    CSR_PEM_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CSR_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: Role
    country: str
    csr_pem: str
    ttl_seconds: int
    csr_signature: bytes
    def __init__(self, name: _Optional[str] = ..., role: _Optional[_Union[Role, str]] = ..., country: _Optional[str] = ..., csr_pem: _Optional[str] = ..., ttl_seconds: _Optional[int] = ..., csr_signature: _Optional[bytes] = ...) -> None: ...

class IssueUserCertificateResponse(_message.Message):
    __slots__ = ("certificate_pem", "ca_bundle_pem", "not_after")
    CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    CA_BUNDLE_PEM_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    certificate_pem: str
    ca_bundle_pem: str
    not_after: _timestamp_pb2.Timestamp
    def __init__(self, certificate_pem: _Optional[str] = ..., ca_bundle_pem: _Optional[str] = ..., not_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AuditEvent(_message.Message):
    __slots__ = ("sequence", "time", "actor", "action", "object", "outcome", "reason", "details", "hash", "prev_hash", "leaf")
    class DetailsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    PREV_HASH_FIELD_NUMBER: _ClassVar[int]
    LEAF_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    time: _timestamp_pb2.Timestamp
    actor: str
    action: str
    object: str
    outcome: str
    reason: str
    details: _containers.ScalarMap[str, str]
    hash: str
    prev_hash: str
    leaf: bytes
    def __init__(self, sequence: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., action: _Optional[str] = ..., object: _Optional[str] = ..., outcome: _Optional[str] = ..., reason: _Optional[str] = ..., details: _Optional[_Mapping[str, str]] = ..., hash: _Optional[str] = ..., prev_hash: _Optional[str] = ..., leaf: _Optional[bytes] = ...) -> None: ...

class ListAuditEventsRequest(_message.Message):
    __slots__ = ("after_sequence", "limit")
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    after_sequence: int
    limit: int
    def __init__(self, after_sequence: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ListAuditEventsResponse(_message.Message):
    __slots__ = ("events", "chain_verified")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    CHAIN_VERIFIED_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[AuditEvent]
    chain_verified: bool
    def __init__(self, events: _Optional[_Iterable[_Union[AuditEvent, _Mapping]]] = ..., chain_verified: _Optional[bool] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Replica(_message.Message):
    __slots__ = ("id", "leader", "address", "connected_sites")
    ID_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_SITES_FIELD_NUMBER: _ClassVar[int]
    id: str
    leader: bool
    address: str
    connected_sites: int
    def __init__(self, id: _Optional[str] = ..., leader: _Optional[bool] = ..., address: _Optional[str] = ..., connected_sites: _Optional[int] = ...) -> None: ...

class StoreStatus(_message.Message):
    __slots__ = ("kind", "endpoints", "healthy")
    KIND_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    kind: str
    endpoints: _containers.RepeatedScalarFieldContainer[str]
    healthy: bool
    def __init__(self, kind: _Optional[str] = ..., endpoints: _Optional[_Iterable[str]] = ..., healthy: _Optional[bool] = ...) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("leader", "replicas", "store", "replica_id", "version", "enroll_address", "persistent", "roster_version", "roster_hash", "single_admin")
    LEADER_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENROLL_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PERSISTENT_FIELD_NUMBER: _ClassVar[int]
    ROSTER_VERSION_FIELD_NUMBER: _ClassVar[int]
    ROSTER_HASH_FIELD_NUMBER: _ClassVar[int]
    SINGLE_ADMIN_FIELD_NUMBER: _ClassVar[int]
    leader: str
    replicas: _containers.RepeatedCompositeFieldContainer[Replica]
    store: StoreStatus
    replica_id: str
    version: str
    enroll_address: str
    persistent: bool
    roster_version: int
    roster_hash: str
    single_admin: bool
    def __init__(self, leader: _Optional[str] = ..., replicas: _Optional[_Iterable[_Union[Replica, _Mapping]]] = ..., store: _Optional[_Union[StoreStatus, _Mapping]] = ..., replica_id: _Optional[str] = ..., version: _Optional[str] = ..., enroll_address: _Optional[str] = ..., persistent: _Optional[bool] = ..., roster_version: _Optional[int] = ..., roster_hash: _Optional[str] = ..., single_admin: _Optional[bool] = ...) -> None: ...

class WhoAmIRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WhoAmIResponse(_message.Message):
    __slots__ = ("identity", "role", "country", "not_after")
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    identity: str
    role: Role
    country: str
    not_after: _timestamp_pb2.Timestamp
    def __init__(self, identity: _Optional[str] = ..., role: _Optional[_Union[Role, str]] = ..., country: _Optional[str] = ..., not_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetRosterRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetRosterResponse(_message.Message):
    __slots__ = ("chain", "version", "hash")
    CHAIN_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    chain: _containers.RepeatedScalarFieldContainer[bytes]
    version: int
    hash: str
    def __init__(self, chain: _Optional[_Iterable[bytes]] = ..., version: _Optional[int] = ..., hash: _Optional[str] = ...) -> None: ...

class ApplyRosterRequest(_message.Message):
    __slots__ = ("roster",)
    ROSTER_FIELD_NUMBER: _ClassVar[int]
    roster: bytes
    def __init__(self, roster: _Optional[bytes] = ...) -> None: ...

class ApplyRosterResponse(_message.Message):
    __slots__ = ("version", "hash")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    version: int
    hash: str
    def __init__(self, version: _Optional[int] = ..., hash: _Optional[str] = ...) -> None: ...
