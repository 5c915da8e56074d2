from controlplane.api.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LogConsistency(_message.Message):
    __slots__ = ("first", "second", "path")
    FIRST_FIELD_NUMBER: _ClassVar[int]
    SECOND_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    first: int
    second: int
    path: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, first: _Optional[int] = ..., second: _Optional[int] = ..., path: _Optional[_Iterable[bytes]] = ...) -> None: ...

class LogProof(_message.Message):
    __slots__ = ("leaf_index", "leaf", "inclusion_path", "checkpoint", "consistency")
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    LEAF_FIELD_NUMBER: _ClassVar[int]
    INCLUSION_PATH_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    leaf_index: int
    leaf: bytes
    inclusion_path: _containers.RepeatedScalarFieldContainer[bytes]
    checkpoint: str
    consistency: LogConsistency
    def __init__(self, leaf_index: _Optional[int] = ..., leaf: _Optional[bytes] = ..., inclusion_path: _Optional[_Iterable[bytes]] = ..., checkpoint: _Optional[str] = ..., consistency: _Optional[_Union[LogConsistency, _Mapping]] = ...) -> None: ...

class LogProofRequest(_message.Message):
    __slots__ = ("site_id", "directive_id")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    DIRECTIVE_ID_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    directive_id: str
    def __init__(self, site_id: _Optional[str] = ..., directive_id: _Optional[str] = ...) -> None: ...

class LogProofResponse(_message.Message):
    __slots__ = ("directive_id", "proof", "error")
    DIRECTIVE_ID_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    directive_id: str
    proof: LogProof
    error: str
    def __init__(self, directive_id: _Optional[str] = ..., proof: _Optional[_Union[LogProof, _Mapping]] = ..., error: _Optional[str] = ...) -> None: ...
