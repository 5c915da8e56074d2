from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExportRule(_message.Message):
    __slots__ = ("allow_countries", "deny_countries")
    ALLOW_COUNTRIES_FIELD_NUMBER: _ClassVar[int]
    DENY_COUNTRIES_FIELD_NUMBER: _ClassVar[int]
    allow_countries: _containers.RepeatedScalarFieldContainer[str]
    deny_countries: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, allow_countries: _Optional[_Iterable[str]] = ..., deny_countries: _Optional[_Iterable[str]] = ...) -> None: ...

class ReleaseResources(_message.Message):
    __slots__ = ("accelerator", "accelerators_per_replica")
    ACCELERATOR_FIELD_NUMBER: _ClassVar[int]
    ACCELERATORS_PER_REPLICA_FIELD_NUMBER: _ClassVar[int]
    accelerator: str
    accelerators_per_replica: int
    def __init__(self, accelerator: _Optional[str] = ..., accelerators_per_replica: _Optional[int] = ...) -> None: ...

class ModelRelease(_message.Message):
    __slots__ = ("name", "model", "version", "digest", "risk_tier", "export", "resources", "locales", "variant_of")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    RISK_TIER_FIELD_NUMBER: _ClassVar[int]
    EXPORT_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    LOCALES_FIELD_NUMBER: _ClassVar[int]
    VARIANT_OF_FIELD_NUMBER: _ClassVar[int]
    name: str
    model: str
    version: str
    digest: str
    risk_tier: int
    export: ExportRule
    resources: ReleaseResources
    locales: _containers.RepeatedScalarFieldContainer[str]
    variant_of: str
    def __init__(self, name: _Optional[str] = ..., model: _Optional[str] = ..., version: _Optional[str] = ..., digest: _Optional[str] = ..., risk_tier: _Optional[int] = ..., export: _Optional[_Union[ExportRule, _Mapping]] = ..., resources: _Optional[_Union[ReleaseResources, _Mapping]] = ..., locales: _Optional[_Iterable[str]] = ..., variant_of: _Optional[str] = ...) -> None: ...

class SignedRelease(_message.Message):
    __slots__ = ("release", "publisher", "signature", "publisher_key")
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_KEY_FIELD_NUMBER: _ClassVar[int]
    release: ModelRelease
    publisher: str
    signature: bytes
    publisher_key: bytes
    def __init__(self, release: _Optional[_Union[ModelRelease, _Mapping]] = ..., publisher: _Optional[str] = ..., signature: _Optional[bytes] = ..., publisher_key: _Optional[bytes] = ...) -> None: ...
