import datetime

from controlplane.api.v1 import logproof_pb2 as _logproof_pb2
from controlplane.api.v1 import options_pb2 as _options_pb2
from controlplane.api.v1 import safety_pb2 as _safety_pb2
from controlplane.api.v1 import release_pb2 as _release_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SiteHealth(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SITE_HEALTH_UNSPECIFIED: _ClassVar[SiteHealth]
    SITE_HEALTH_HEALTHY: _ClassVar[SiteHealth]
    SITE_HEALTH_DEGRADED: _ClassVar[SiteHealth]
    SITE_HEALTH_UNHEALTHY: _ClassVar[SiteHealth]

class SiteStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SITE_STATUS_UNSPECIFIED: _ClassVar[SiteStatus]
    SITE_STATUS_PENDING: _ClassVar[SiteStatus]
    SITE_STATUS_READY: _ClassVar[SiteStatus]
    SITE_STATUS_UNREACHABLE: _ClassVar[SiteStatus]
    SITE_STATUS_CORDONED: _ClassVar[SiteStatus]

class WorkloadSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WORKLOAD_SOURCE_UNSPECIFIED: _ClassVar[WorkloadSource]
    WORKLOAD_SOURCE_FEDERATION: _ClassVar[WorkloadSource]
    WORKLOAD_SOURCE_LOCAL: _ClassVar[WorkloadSource]

class HealthMetric(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HEALTH_METRIC_UNSPECIFIED: _ClassVar[HealthMetric]
    HEALTH_METRIC_ERROR_RATE: _ClassVar[HealthMetric]
    HEALTH_METRIC_LATENCY_P95: _ClassVar[HealthMetric]
    HEALTH_METRIC_SAFETY_SCORE: _ClassVar[HealthMetric]

class DirectiveKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECTIVE_KIND_UNSPECIFIED: _ClassVar[DirectiveKind]
    DIRECTIVE_KIND_DEPLOY: _ClassVar[DirectiveKind]
    DIRECTIVE_KIND_UNDEPLOY: _ClassVar[DirectiveKind]
    DIRECTIVE_KIND_HALT: _ClassVar[DirectiveKind]
    DIRECTIVE_KIND_RESUME: _ClassVar[DirectiveKind]
    DIRECTIVE_KIND_PUBLISHERS: _ClassVar[DirectiveKind]
    DIRECTIVE_KIND_RUN_JOB: _ClassVar[DirectiveKind]
    DIRECTIVE_KIND_CANCEL_JOB: _ClassVar[DirectiveKind]

class DirectiveState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECTIVE_STATE_UNSPECIFIED: _ClassVar[DirectiveState]
    DIRECTIVE_STATE_PENDING: _ClassVar[DirectiveState]
    DIRECTIVE_STATE_ACKED: _ClassVar[DirectiveState]
    DIRECTIVE_STATE_REJECTED: _ClassVar[DirectiveState]
    DIRECTIVE_STATE_FAILED: _ClassVar[DirectiveState]
    DIRECTIVE_STATE_CANCELLED: _ClassVar[DirectiveState]
SITE_HEALTH_UNSPECIFIED: SiteHealth
SITE_HEALTH_HEALTHY: SiteHealth
SITE_HEALTH_DEGRADED: SiteHealth
SITE_HEALTH_UNHEALTHY: SiteHealth
SITE_STATUS_UNSPECIFIED: SiteStatus
SITE_STATUS_PENDING: SiteStatus
SITE_STATUS_READY: SiteStatus
SITE_STATUS_UNREACHABLE: SiteStatus
SITE_STATUS_CORDONED: SiteStatus
WORKLOAD_SOURCE_UNSPECIFIED: WorkloadSource
WORKLOAD_SOURCE_FEDERATION: WorkloadSource
WORKLOAD_SOURCE_LOCAL: WorkloadSource
HEALTH_METRIC_UNSPECIFIED: HealthMetric
HEALTH_METRIC_ERROR_RATE: HealthMetric
HEALTH_METRIC_LATENCY_P95: HealthMetric
HEALTH_METRIC_SAFETY_SCORE: HealthMetric
DIRECTIVE_KIND_UNSPECIFIED: DirectiveKind
DIRECTIVE_KIND_DEPLOY: DirectiveKind
DIRECTIVE_KIND_UNDEPLOY: DirectiveKind
DIRECTIVE_KIND_HALT: DirectiveKind
DIRECTIVE_KIND_RESUME: DirectiveKind
DIRECTIVE_KIND_PUBLISHERS: DirectiveKind
DIRECTIVE_KIND_RUN_JOB: DirectiveKind
DIRECTIVE_KIND_CANCEL_JOB: DirectiveKind
DIRECTIVE_STATE_UNSPECIFIED: DirectiveState
DIRECTIVE_STATE_PENDING: DirectiveState
DIRECTIVE_STATE_ACKED: DirectiveState
DIRECTIVE_STATE_REJECTED: DirectiveState
DIRECTIVE_STATE_FAILED: DirectiveState
DIRECTIVE_STATE_CANCELLED: DirectiveState

class AcceleratorCapacity(_message.Message):
    __slots__ = ("total", "free")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    FREE_FIELD_NUMBER: _ClassVar[int]
    total: int
    free: int
    def __init__(self, total: _Optional[int] = ..., free: _Optional[int] = ...) -> None: ...

class SiteFacts(_message.Message):
    __slots__ = ("site_id", "country", "region", "labels", "capacity", "security_tier", "operator_version", "policy")
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
        value: AcceleratorCapacity
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[AcceleratorCapacity, _Mapping]] = ...) -> None: ...
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    SECURITY_TIER_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_VERSION_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    country: str
    region: str
    labels: _containers.ScalarMap[str, str]
    capacity: _containers.MessageMap[str, AcceleratorCapacity]
    security_tier: int
    operator_version: str
    policy: PolicySummary
    def __init__(self, site_id: _Optional[str] = ..., country: _Optional[str] = ..., region: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., capacity: _Optional[_Mapping[str, AcceleratorCapacity]] = ..., security_tier: _Optional[int] = ..., operator_version: _Optional[str] = ..., policy: _Optional[_Union[PolicySummary, _Mapping]] = ...) -> None: ...

class PolicySummary(_message.Message):
    __slots__ = ("accepted_risk_tiers", "federation_capacity_share", "require_local_approval", "jobs")
    ACCEPTED_RISK_TIERS_FIELD_NUMBER: _ClassVar[int]
    FEDERATION_CAPACITY_SHARE_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_LOCAL_APPROVAL_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    accepted_risk_tiers: _containers.RepeatedScalarFieldContainer[int]
    federation_capacity_share: float
    require_local_approval: bool
    jobs: JobsPolicySummary
    def __init__(self, accepted_risk_tiers: _Optional[_Iterable[int]] = ..., federation_capacity_share: _Optional[float] = ..., require_local_approval: _Optional[bool] = ..., jobs: _Optional[_Union[JobsPolicySummary, _Mapping]] = ...) -> None: ...

class JobsPolicySummary(_message.Message):
    __slots__ = ("allow_purposes", "allow_publishers", "allow_images", "max_accelerators", "max_hours")
    ALLOW_PURPOSES_FIELD_NUMBER: _ClassVar[int]
    ALLOW_PUBLISHERS_FIELD_NUMBER: _ClassVar[int]
    ALLOW_IMAGES_FIELD_NUMBER: _ClassVar[int]
    MAX_ACCELERATORS_FIELD_NUMBER: _ClassVar[int]
    MAX_HOURS_FIELD_NUMBER: _ClassVar[int]
    allow_purposes: _containers.RepeatedScalarFieldContainer[str]
    allow_publishers: _containers.RepeatedScalarFieldContainer[str]
    allow_images: _containers.RepeatedScalarFieldContainer[str]
    max_accelerators: int
    max_hours: float
    def __init__(self, allow_purposes: _Optional[_Iterable[str]] = ..., allow_publishers: _Optional[_Iterable[str]] = ..., allow_images: _Optional[_Iterable[str]] = ..., max_accelerators: _Optional[int] = ..., max_hours: _Optional[float] = ...) -> None: ...

class DatasetSummary(_message.Message):
    __slots__ = ("name", "jurisdiction", "classification", "languages", "purposes", "size")
    NAME_FIELD_NUMBER: _ClassVar[int]
    JURISDICTION_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    LANGUAGES_FIELD_NUMBER: _ClassVar[int]
    PURPOSES_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    name: str
    jurisdiction: str
    classification: str
    languages: _containers.RepeatedScalarFieldContainer[str]
    purposes: _containers.RepeatedScalarFieldContainer[str]
    size: str
    def __init__(self, name: _Optional[str] = ..., jurisdiction: _Optional[str] = ..., classification: _Optional[str] = ..., languages: _Optional[_Iterable[str]] = ..., purposes: _Optional[_Iterable[str]] = ..., size: _Optional[str] = ...) -> None: ...

class JobStatus(_message.Message):
    __slots__ = ("job_id", "phase", "step", "loss", "eval_score", "reason", "output_digest", "variant_signature", "publisher_key")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    EVAL_SCORE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    VARIANT_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_KEY_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    phase: str
    step: int
    loss: float
    eval_score: float
    reason: str
    output_digest: str
    variant_signature: bytes
    publisher_key: bytes
    def __init__(self, job_id: _Optional[str] = ..., phase: _Optional[str] = ..., step: _Optional[int] = ..., loss: _Optional[float] = ..., eval_score: _Optional[float] = ..., reason: _Optional[str] = ..., output_digest: _Optional[str] = ..., variant_signature: _Optional[bytes] = ..., publisher_key: _Optional[bytes] = ...) -> None: ...

class DeploymentStatus(_message.Message):
    __slots__ = ("name", "model", "version", "phase", "replicas", "ready_replicas", "source", "halted", "error_rate", "latency_p95_ms", "safety_score", "release", "digest", "measured")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    READY_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    HALTED_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P95_MS_FIELD_NUMBER: _ClassVar[int]
    SAFETY_SCORE_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    MEASURED_FIELD_NUMBER: _ClassVar[int]
    name: str
    model: str
    version: str
    phase: str
    replicas: int
    ready_replicas: int
    source: WorkloadSource
    halted: bool
    error_rate: float
    latency_p95_ms: float
    safety_score: float
    release: str
    digest: str
    measured: _containers.RepeatedScalarFieldContainer[HealthMetric]
    def __init__(self, name: _Optional[str] = ..., model: _Optional[str] = ..., version: _Optional[str] = ..., phase: _Optional[str] = ..., replicas: _Optional[int] = ..., ready_replicas: _Optional[int] = ..., source: _Optional[_Union[WorkloadSource, str]] = ..., halted: _Optional[bool] = ..., error_rate: _Optional[float] = ..., latency_p95_ms: _Optional[float] = ..., safety_score: _Optional[float] = ..., release: _Optional[str] = ..., digest: _Optional[str] = ..., measured: _Optional[_Iterable[_Union[HealthMetric, str]]] = ...) -> None: ...

class TrustedPublisher(_message.Message):
    __slots__ = ("name", "public_key")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    name: str
    public_key: bytes
    def __init__(self, name: _Optional[str] = ..., public_key: _Optional[bytes] = ...) -> None: ...

class PublishersPayload(_message.Message):
    __slots__ = ("publishers",)
    PUBLISHERS_FIELD_NUMBER: _ClassVar[int]
    publishers: _containers.RepeatedCompositeFieldContainer[TrustedPublisher]
    def __init__(self, publishers: _Optional[_Iterable[_Union[TrustedPublisher, _Mapping]]] = ...) -> None: ...

class DeployPayload(_message.Message):
    __slots__ = ("deployment_name", "model", "version", "digest", "replicas", "accelerator", "accelerators_per_replica", "locale", "release", "risk_tier", "signed_release", "rollout")
    DEPLOYMENT_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    ACCELERATOR_FIELD_NUMBER: _ClassVar[int]
    ACCELERATORS_PER_REPLICA_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    RISK_TIER_FIELD_NUMBER: _ClassVar[int]
    SIGNED_RELEASE_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    deployment_name: str
    model: str
    version: str
    digest: str
    replicas: int
    accelerator: str
    accelerators_per_replica: int
    locale: str
    release: str
    risk_tier: int
    signed_release: _release_pb2.SignedRelease
    rollout: str
    def __init__(self, deployment_name: _Optional[str] = ..., model: _Optional[str] = ..., version: _Optional[str] = ..., digest: _Optional[str] = ..., replicas: _Optional[int] = ..., accelerator: _Optional[str] = ..., accelerators_per_replica: _Optional[int] = ..., locale: _Optional[str] = ..., release: _Optional[str] = ..., risk_tier: _Optional[int] = ..., signed_release: _Optional[_Union[_release_pb2.SignedRelease, _Mapping]] = ..., rollout: _Optional[str] = ...) -> None: ...

class RunJobPayload(_message.Message):
    __slots__ = ("job_id", "job", "dataset", "purpose", "image", "command", "accelerator", "accelerators", "max_hours", "base_release", "base_model", "base_digest", "output_name", "output_version", "publisher", "variant")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    ACCELERATOR_FIELD_NUMBER: _ClassVar[int]
    ACCELERATORS_FIELD_NUMBER: _ClassVar[int]
    MAX_HOURS_FIELD_NUMBER: _ClassVar[int]
    BASE_RELEASE_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    BASE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_NAME_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_VERSION_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    job: str
    dataset: str
    purpose: str
    image: str
    command: _containers.RepeatedScalarFieldContainer[str]
    accelerator: str
    accelerators: int
    max_hours: float
    base_release: str
    base_model: str
    base_digest: str
    output_name: str
    output_version: str
    publisher: str
    variant: _release_pb2.ModelRelease
    def __init__(self, job_id: _Optional[str] = ..., job: _Optional[str] = ..., dataset: _Optional[str] = ..., purpose: _Optional[str] = ..., image: _Optional[str] = ..., command: _Optional[_Iterable[str]] = ..., accelerator: _Optional[str] = ..., accelerators: _Optional[int] = ..., max_hours: _Optional[float] = ..., base_release: _Optional[str] = ..., base_model: _Optional[str] = ..., base_digest: _Optional[str] = ..., output_name: _Optional[str] = ..., output_version: _Optional[str] = ..., publisher: _Optional[str] = ..., variant: _Optional[_Union[_release_pb2.ModelRelease, _Mapping]] = ...) -> None: ...

class CancelJobPayload(_message.Message):
    __slots__ = ("job_id", "reason")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    reason: str
    def __init__(self, job_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class UndeployPayload(_message.Message):
    __slots__ = ("deployment_name",)
    DEPLOYMENT_NAME_FIELD_NUMBER: _ClassVar[int]
    deployment_name: str
    def __init__(self, deployment_name: _Optional[str] = ...) -> None: ...

class Directive(_message.Message):
    __slots__ = ("sequence", "id", "kind", "issued_at", "expires_at", "issuer", "safety_sequence", "key_id", "signature", "deploy", "undeploy", "halt", "resume", "publishers", "run_job", "cancel_job", "directive_key_id", "directive_signature", "log_proof", "approvals")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    SAFETY_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    DEPLOY_FIELD_NUMBER: _ClassVar[int]
    UNDEPLOY_FIELD_NUMBER: _ClassVar[int]
    HALT_FIELD_NUMBER: _ClassVar[int]
    RESUME_FIELD_NUMBER: _ClassVar[int]
    PUBLISHERS_FIELD_NUMBER: _ClassVar[int]
    RUN_JOB_FIELD_NUMBER: _ClassVar[int]
    CANCEL_JOB_FIELD_NUMBER: _ClassVar[int]
    DIRECTIVE_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    DIRECTIVE_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    LOG_PROOF_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    id: str
    kind: DirectiveKind
    issued_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    issuer: str
    safety_sequence: int
    key_id: str
    signature: bytes
    deploy: DeployPayload
    undeploy: UndeployPayload
    halt: _safety_pb2.HaltPayload
    resume: _safety_pb2.ResumePayload
    publishers: PublishersPayload
    run_job: RunJobPayload
    cancel_job: CancelJobPayload
    directive_key_id: str
    directive_signature: bytes
    log_proof: _logproof_pb2.LogProof
    approvals: _containers.RepeatedCompositeFieldContainer[_safety_pb2.PersonApproval]
    def __init__(self, sequence: _Optional[int] = ..., id: _Optional[str] = ..., kind: _Optional[_Union[DirectiveKind, str]] = ..., issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., issuer: _Optional[str] = ..., safety_sequence: _Optional[int] = ..., key_id: _Optional[str] = ..., signature: _Optional[bytes] = ..., deploy: _Optional[_Union[DeployPayload, _Mapping]] = ..., undeploy: _Optional[_Union[UndeployPayload, _Mapping]] = ..., halt: _Optional[_Union[_safety_pb2.HaltPayload, _Mapping]] = ..., resume: _Optional[_Union[_safety_pb2.ResumePayload, _Mapping]] = ..., publishers: _Optional[_Union[PublishersPayload, _Mapping]] = ..., run_job: _Optional[_Union[RunJobPayload, _Mapping]] = ..., cancel_job: _Optional[_Union[CancelJobPayload, _Mapping]] = ..., directive_key_id: _Optional[str] = ..., directive_signature: _Optional[bytes] = ..., log_proof: _Optional[_Union[_logproof_pb2.LogProof, _Mapping]] = ..., approvals: _Optional[_Iterable[_Union[_safety_pb2.PersonApproval, _Mapping]]] = ...) -> None: ...

class DirectiveRecord(_message.Message):
    __slots__ = ("site_id", "directive", "state", "reason", "completed_at")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    DIRECTIVE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    directive: Directive
    state: DirectiveState
    reason: str
    completed_at: _timestamp_pb2.Timestamp
    def __init__(self, site_id: _Optional[str] = ..., directive: _Optional[_Union[Directive, _Mapping]] = ..., state: _Optional[_Union[DirectiveState, str]] = ..., reason: _Optional[str] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
