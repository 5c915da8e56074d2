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

from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import FieldDescriptor

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


def _is_map(field: Any) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


# How each field of a message type is checked, worked out once per type (a heartbeat has ~130 set
# fields: looking ranges up per field per message cost ~200 us; with the plan, a few tens).
_MESSAGE, _NUMBER, _ENUM, _SKIP = range(4)


@dataclass(frozen=True, slots=True)
class _Field:
    kind: int
    #: The Range of a number (None: no range), the defined values of an enum.
    arg: Any
    repeated: bool
    is_map: bool
    enum: str = ""


_PLANS: dict[str, dict[str, _Field]] = {}


def _plan(desc: Any) -> dict[str, _Field]:
    plan = _PLANS.get(desc.full_name)
    if plan is not None:
        return plan
    plan = {}
    for f in desc.fields:
        is_map = _is_map(f)
        target, owner = (f.message_type.fields_by_name["value"], f.message_type) if is_map else (f, desc)
        repeated = is_map or f.is_repeated
        if target.message_type is not None:
            plan[f.name] = _Field(_MESSAGE, None, repeated, is_map)
        elif target.type == FieldDescriptor.TYPE_ENUM:
            values = frozenset(target.enum_type.values_by_number)
            plan[f.name] = _Field(_ENUM, values, repeated, is_map, target.enum_type.name)
        elif is_number(target):
            plan[f.name] = _Field(_NUMBER, LIMITS.get(key(owner, target)), repeated, is_map)
        else:
            plan[f.name] = _Field(_SKIP, None, repeated, is_map)
    _PLANS[desc.full_name] = plan
    return plan


def _value(f: _Field, value: Any, path: str) -> None:
    if f.kind == _ENUM:
        if value not in f.arg:
            raise InvalidArgument(path, f"{value} is not a value of {f.enum}")
    elif f.arg is None:
        if value:
            raise InvalidArgument(path, "no range is defined for this number (controlplane/domain/limits.py)")
    elif type(value) is bool or not f.arg.lo <= value <= f.arg.hi:  # NaN fails the comparison too
        f.arg.check(path, value)


def check(msg: Any, path: str = "") -> None:
    """Raise InvalidArgument naming the first number of ``msg`` that is out of its range."""
    plan = _plan(msg.DESCRIPTOR)
    for field, value in msg.ListFields():
        f = plan[field.name]
        if f.kind == _SKIP:
            continue
        where = path + field.name
        if f.is_map:
            for k, v in value.items():
                entry = f"{where}[{str(k)[:40]!r}]"
                if f.kind == _MESSAGE:
                    check(v, entry + ".")
                else:
                    _value(f, v, entry)
        elif f.kind == _MESSAGE:
            if f.repeated:
                for i, item in enumerate(value):
                    check(item, f"{where}[{i}].")
            else:
                check(value, where + ".")
        elif f.repeated:
            for i, item in enumerate(value):
                _value(f, item, f"{where}[{i}]")
        else:
            _value(f, value, where)
