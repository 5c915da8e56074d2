"""Range-check every number in a wire message against ``controlplane.domain.limits.LIMITS``.

Walks the message through nested messages, repeated fields, map values and oneof members (what is
set), so one call at the API edge covers a whole request or site message. Enums must hold a value
the API defines (proto3 accepts any integer on the wire). A set number whose field has no range in
the table is refused: fail closed, and ``tests/unit/test_limits.py`` names the field to add.

Errors name the field by its path from the message, e.g. ``deploy.replicas`` or
``spec.waves[1].bake_seconds``; map keys are shown escaped (``capacity['h100'].total``), since a
site chooses them.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from controlplane.domain.limits import LIMITS
from controlplane.errors import InvalidArgument

_PACKAGE = "stargate.federation.v1."
_NUMBER_TYPES = frozenset(
    {
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED32,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED32,
        FieldDescriptor.TYPE_SFIXED64,
        FieldDescriptor.TYPE_DOUBLE,
        FieldDescriptor.TYPE_FLOAT,
    }
)


def key(message: Any, field: Any) -> str:
    """The ``LIMITS`` key of a field: ``Message.field`` (full name outside our package)."""
    return f"{message.full_name.removeprefix(_PACKAGE)}.{field.name}"


def is_number(field: FieldDescriptor) -> bool:
    return field.type in _NUMBER_TYPES


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _check_value(message: Descriptor, field: FieldDescriptor, value: Any, path: str) -> None:
    if field.type == FieldDescriptor.TYPE_ENUM:
        if field.enum_type.values_by_number.get(value) is None:
            raise InvalidArgument(path, f"{value} is not a value of {field.enum_type.name}")
        return
    rng = LIMITS.get(key(message, field))
    if rng is None:
        if value:
            raise InvalidArgument(path, "no range is defined for this number (controlplane/domain/limits.py)")
        return
    rng.check(path, value)


def check(msg: Any, path: str = "") -> None:
    """Raise InvalidArgument naming the first number of ``msg`` that is out of its range."""
    desc: Descriptor = msg.DESCRIPTOR
    for field, value in msg.ListFields():
        where = f"{path}{field.name}"
        if _is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            for k, v in value.items():
                entry = f"{where}[{str(k)[:40]!r}]"
                if value_field.message_type is not None:
                    check(v, entry + ".")
                elif is_number(value_field) or value_field.type == FieldDescriptor.TYPE_ENUM:
                    _check_value(field.message_type, value_field, v, entry)
        elif field.message_type is not None:
            if field.is_repeated:
                for i, item in enumerate(value):
                    check(item, f"{where}[{i}].")
            else:
                check(value, where + ".")
        elif is_number(field) or field.type == FieldDescriptor.TYPE_ENUM:
            if field.is_repeated:
                for i, item in enumerate(value):
                    _check_value(desc, field, item, f"{where}[{i}]")
            else:
                _check_value(desc, field, value, where)
