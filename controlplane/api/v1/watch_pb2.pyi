from controlplane.api.v1 import jobs_pb2 as _jobs_pb2
from controlplane.api.v1 import rollouts_pb2 as _rollouts_pb2
from controlplane.api.v1 import safety_pb2 as _safety_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WatchKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WATCH_KIND_UNSPECIFIED: _ClassVar[WatchKind]
    WATCH_KIND_ROLLOUT: _ClassVar[WatchKind]
    WATCH_KIND_SAFETY_ACTION: _ClassVar[WatchKind]
    WATCH_KIND_JOB: _ClassVar[WatchKind]
WATCH_KIND_UNSPECIFIED: WatchKind
WATCH_KIND_ROLLOUT: WatchKind
WATCH_KIND_SAFETY_ACTION: WatchKind
WATCH_KIND_JOB: WatchKind

class WatchRequest(_message.Message):
    __slots__ = ("kind", "name", "after_revision")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    AFTER_REVISION_FIELD_NUMBER: _ClassVar[int]
    kind: WatchKind
    name: str
    after_revision: int
    def __init__(self, kind: _Optional[_Union[WatchKind, str]] = ..., name: _Optional[str] = ..., after_revision: _Optional[int] = ...) -> None: ...

class WatchResponse(_message.Message):
    __slots__ = ("revision", "deleted", "rollout", "safety_action", "job")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    SAFETY_ACTION_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    revision: int
    deleted: bool
    rollout: _rollouts_pb2.Rollout
    safety_action: _safety_pb2.SafetyAction
    job: _jobs_pb2.Job
    def __init__(self, revision: _Optional[int] = ..., deleted: _Optional[bool] = ..., rollout: _Optional[_Union[_rollouts_pb2.Rollout, _Mapping]] = ..., safety_action: _Optional[_Union[_safety_pb2.SafetyAction, _Mapping]] = ..., job: _Optional[_Union[_jobs_pb2.Job, _Mapping]] = ...) -> None: ...
