import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Checkpoint(_message.Message):
    __slots__ = ("tree_size", "root_hash", "note", "cosigners", "signed_at")
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    ROOT_HASH_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    COSIGNERS_FIELD_NUMBER: _ClassVar[int]
    SIGNED_AT_FIELD_NUMBER: _ClassVar[int]
    tree_size: int
    root_hash: bytes
    note: str
    cosigners: _containers.RepeatedScalarFieldContainer[str]
    signed_at: _timestamp_pb2.Timestamp
    def __init__(self, tree_size: _Optional[int] = ..., root_hash: _Optional[bytes] = ..., note: _Optional[str] = ..., cosigners: _Optional[_Iterable[str]] = ..., signed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetLogInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetLogInfoResponse(_message.Message):
    __slots__ = ("origin", "verifier_key", "tree_size", "alarm")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    VERIFIER_KEY_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    ALARM_FIELD_NUMBER: _ClassVar[int]
    origin: str
    verifier_key: str
    tree_size: int
    alarm: str
    def __init__(self, origin: _Optional[str] = ..., verifier_key: _Optional[str] = ..., tree_size: _Optional[int] = ..., alarm: _Optional[str] = ...) -> None: ...

class GetCheckpointRequest(_message.Message):
    __slots__ = ("tree_size", "min_cosignatures")
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    MIN_COSIGNATURES_FIELD_NUMBER: _ClassVar[int]
    tree_size: int
    min_cosignatures: int
    def __init__(self, tree_size: _Optional[int] = ..., min_cosignatures: _Optional[int] = ...) -> None: ...

class GetCheckpointResponse(_message.Message):
    __slots__ = ("checkpoint",)
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    checkpoint: Checkpoint
    def __init__(self, checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ...) -> None: ...

class ListCheckpointsRequest(_message.Message):
    __slots__ = ("after_size",)
    AFTER_SIZE_FIELD_NUMBER: _ClassVar[int]
    after_size: int
    def __init__(self, after_size: _Optional[int] = ...) -> None: ...

class ListCheckpointsResponse(_message.Message):
    __slots__ = ("checkpoints",)
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    checkpoints: _containers.RepeatedCompositeFieldContainer[Checkpoint]
    def __init__(self, checkpoints: _Optional[_Iterable[_Union[Checkpoint, _Mapping]]] = ...) -> None: ...

class GetInclusionProofRequest(_message.Message):
    __slots__ = ("sequence", "tree_size", "min_cosignatures")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    MIN_COSIGNATURES_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    tree_size: int
    min_cosignatures: int
    def __init__(self, sequence: _Optional[int] = ..., tree_size: _Optional[int] = ..., min_cosignatures: _Optional[int] = ...) -> None: ...

class GetInclusionProofResponse(_message.Message):
    __slots__ = ("leaf_index", "tree_size", "leaf_hash", "inclusion_path", "checkpoint", "leaf")
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    LEAF_HASH_FIELD_NUMBER: _ClassVar[int]
    INCLUSION_PATH_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    LEAF_FIELD_NUMBER: _ClassVar[int]
    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    inclusion_path: _containers.RepeatedScalarFieldContainer[bytes]
    checkpoint: Checkpoint
    leaf: bytes
    def __init__(self, leaf_index: _Optional[int] = ..., tree_size: _Optional[int] = ..., leaf_hash: _Optional[bytes] = ..., inclusion_path: _Optional[_Iterable[bytes]] = ..., checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ..., leaf: _Optional[bytes] = ...) -> None: ...

class GetConsistencyProofRequest(_message.Message):
    __slots__ = ("first", "second")
    FIRST_FIELD_NUMBER: _ClassVar[int]
    SECOND_FIELD_NUMBER: _ClassVar[int]
    first: int
    second: int
    def __init__(self, first: _Optional[int] = ..., second: _Optional[int] = ...) -> None: ...

class GetConsistencyProofResponse(_message.Message):
    __slots__ = ("first", "second", "consistency_path")
    FIRST_FIELD_NUMBER: _ClassVar[int]
    SECOND_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_PATH_FIELD_NUMBER: _ClassVar[int]
    first: int
    second: int
    consistency_path: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, first: _Optional[int] = ..., second: _Optional[int] = ..., consistency_path: _Optional[_Iterable[bytes]] = ...) -> None: ...

class AddCosignatureRequest(_message.Message):
    __slots__ = ("tree_size", "cosignature")
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    COSIGNATURE_FIELD_NUMBER: _ClassVar[int]
    tree_size: int
    cosignature: str
    def __init__(self, tree_size: _Optional[int] = ..., cosignature: _Optional[str] = ...) -> None: ...

class AddCosignatureResponse(_message.Message):
    __slots__ = ("checkpoint",)
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    checkpoint: Checkpoint
    def __init__(self, checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ...) -> None: ...

class Witness(_message.Message):
    __slots__ = ("name", "verifier_key", "added_at", "added_by")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERIFIER_KEY_FIELD_NUMBER: _ClassVar[int]
    ADDED_AT_FIELD_NUMBER: _ClassVar[int]
    ADDED_BY_FIELD_NUMBER: _ClassVar[int]
    name: str
    verifier_key: str
    added_at: _timestamp_pb2.Timestamp
    added_by: str
    def __init__(self, name: _Optional[str] = ..., verifier_key: _Optional[str] = ..., added_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., added_by: _Optional[str] = ...) -> None: ...

class AddWitnessRequest(_message.Message):
    __slots__ = ("verifier_key",)
    VERIFIER_KEY_FIELD_NUMBER: _ClassVar[int]
    verifier_key: str
    def __init__(self, verifier_key: _Optional[str] = ...) -> None: ...

class AddWitnessResponse(_message.Message):
    __slots__ = ("witness",)
    WITNESS_FIELD_NUMBER: _ClassVar[int]
    witness: Witness
    def __init__(self, witness: _Optional[_Union[Witness, _Mapping]] = ...) -> None: ...

class RemoveWitnessRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RemoveWitnessResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListWitnessesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListWitnessesResponse(_message.Message):
    __slots__ = ("witnesses", "signed_list")
    WITNESSES_FIELD_NUMBER: _ClassVar[int]
    SIGNED_LIST_FIELD_NUMBER: _ClassVar[int]
    witnesses: _containers.RepeatedCompositeFieldContainer[Witness]
    signed_list: str
    def __init__(self, witnesses: _Optional[_Iterable[_Union[Witness, _Mapping]]] = ..., signed_list: _Optional[str] = ...) -> None: ...
