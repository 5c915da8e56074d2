from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class DataClass(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATA_CLASS_UNSPECIFIED: _ClassVar[DataClass]
    DATA_CLASS_METADATA: _ClassVar[DataClass]
    DATA_CLASS_AGGREGATE: _ClassVar[DataClass]
    DATA_CLASS_CONTROL: _ClassVar[DataClass]
    DATA_CLASS_CREDENTIAL: _ClassVar[DataClass]
DATA_CLASS_UNSPECIFIED: DataClass
DATA_CLASS_METADATA: DataClass
DATA_CLASS_AGGREGATE: DataClass
DATA_CLASS_CONTROL: DataClass
DATA_CLASS_CREDENTIAL: DataClass
CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
classification: _descriptor.FieldDescriptor
