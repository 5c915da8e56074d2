import datetime

from controlplane.api.v1 import rollouts_pb2 as _rollouts_pb2
from controlplane.api.v1 import types_pb2 as _types_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DatasetSelector(_message.Message):
    __slots__ = ("name", "language", "country")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    name: str
    language: str
    country: str
    def __init__(self, name: _Optional[str] = ..., language: _Optional[str] = ..., country: _Optional[str] = ...) -> None: ...

class JobTrainer(_message.Message):
    __slots__ = ("image", "command")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    image: str
    command: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, image: _Optional[str] = ..., command: _Optional[_Iterable[str]] = ...) -> None: ...

class JobResources(_message.Message):
    __slots__ = ("accelerator", "accelerators", "max_hours")
    ACCELERATOR_FIELD_NUMBER: _ClassVar[int]
    ACCELERATORS_FIELD_NUMBER: _ClassVar[int]
    MAX_HOURS_FIELD_NUMBER: _ClassVar[int]
    accelerator: str
    accelerators: int
    max_hours: float
    def __init__(self, accelerator: _Optional[str] = ..., accelerators: _Optional[int] = ..., max_hours: _Optional[float] = ...) -> None: ...

class JobOutput(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class LocalizationJobSpec(_message.Message):
    __slots__ = ("name", "base", "dataset", "purpose", "trainer", "resources", "output")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BASE_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    TRAINER_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    name: str
    base: str
    dataset: DatasetSelector
    purpose: str
    trainer: JobTrainer
    resources: JobResources
    output: JobOutput
    def __init__(self, name: _Optional[str] = ..., base: _Optional[str] = ..., dataset: _Optional[_Union[DatasetSelector, _Mapping]] = ..., purpose: _Optional[str] = ..., trainer: _Optional[_Union[JobTrainer, _Mapping]] = ..., resources: _Optional[_Union[JobResources, _Mapping]] = ..., output: _Optional[_Union[JobOutput, _Mapping]] = ...) -> None: ...

class JobProgressView(_message.Message):
    __slots__ = ("step", "loss", "eval_score", "output_digest")
    STEP_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    EVAL_SCORE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    step: int
    loss: float
    eval_score: float
    output_digest: str
    def __init__(self, step: _Optional[int] = ..., loss: _Optional[float] = ..., eval_score: _Optional[float] = ..., output_digest: _Optional[str] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("spec", "phase", "message", "sites", "dataset_country", "dataset", "approved_countries", "pending_countries", "excluded", "progress", "created_at", "updated_at", "created_by", "variant", "job_id")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SITES_FIELD_NUMBER: _ClassVar[int]
    DATASET_COUNTRY_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    APPROVED_COUNTRIES_FIELD_NUMBER: _ClassVar[int]
    PENDING_COUNTRIES_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    spec: LocalizationJobSpec
    phase: str
    message: str
    sites: _containers.RepeatedScalarFieldContainer[str]
    dataset_country: str
    dataset: str
    approved_countries: _containers.RepeatedScalarFieldContainer[str]
    pending_countries: _containers.RepeatedScalarFieldContainer[str]
    excluded: _containers.RepeatedCompositeFieldContainer[_rollouts_pb2.ExcludedSite]
    progress: JobProgressView
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    created_by: str
    variant: str
    job_id: str
    def __init__(self, spec: _Optional[_Union[LocalizationJobSpec, _Mapping]] = ..., phase: _Optional[str] = ..., message: _Optional[str] = ..., sites: _Optional[_Iterable[str]] = ..., dataset_country: _Optional[str] = ..., dataset: _Optional[str] = ..., approved_countries: _Optional[_Iterable[str]] = ..., pending_countries: _Optional[_Iterable[str]] = ..., excluded: _Optional[_Iterable[_Union[_rollouts_pb2.ExcludedSite, _Mapping]]] = ..., progress: _Optional[_Union[JobProgressView, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ..., variant: _Optional[str] = ..., job_id: _Optional[str] = ...) -> None: ...

class SiteDataset(_message.Message):
    __slots__ = ("site_id", "country", "site_status", "dataset")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    SITE_STATUS_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    country: str
    site_status: _types_pb2.SiteStatus
    dataset: _types_pb2.DatasetSummary
    def __init__(self, site_id: _Optional[str] = ..., country: _Optional[str] = ..., site_status: _Optional[_Union[_types_pb2.SiteStatus, str]] = ..., dataset: _Optional[_Union[_types_pb2.DatasetSummary, _Mapping]] = ...) -> None: ...

class ListDatasetsRequest(_message.Message):
    __slots__ = ("country", "language")
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    country: str
    language: str
    def __init__(self, country: _Optional[str] = ..., language: _Optional[str] = ...) -> None: ...

class ListDatasetsResponse(_message.Message):
    __slots__ = ("datasets", "more")
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[SiteDataset]
    more: int
    def __init__(self, datasets: _Optional[_Iterable[_Union[SiteDataset, _Mapping]]] = ..., more: _Optional[int] = ...) -> None: ...

class CreateJobRequest(_message.Message):
    __slots__ = ("spec",)
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: LocalizationJobSpec
    def __init__(self, spec: _Optional[_Union[LocalizationJobSpec, _Mapping]] = ...) -> None: ...

class CreateJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: Job
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: Job
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ...) -> None: ...

class ApproveJobRequest(_message.Message):
    __slots__ = ("name", "country")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    name: str
    country: str
    def __init__(self, name: _Optional[str] = ..., country: _Optional[str] = ...) -> None: ...

class ApproveJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: Job
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("name", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: Job
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class ApproveVariantExportRequest(_message.Message):
    __slots__ = ("release", "allow_countries", "reason")
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    ALLOW_COUNTRIES_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    release: str
    allow_countries: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    def __init__(self, release: _Optional[str] = ..., allow_countries: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ...) -> None: ...

class ApproveVariantExportResponse(_message.Message):
    __slots__ = ("country", "approved_exports")
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    APPROVED_EXPORTS_FIELD_NUMBER: _ClassVar[int]
    country: str
    approved_exports: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, country: _Optional[str] = ..., approved_exports: _Optional[_Iterable[str]] = ...) -> None: ...
