"""State behind one interface (``Store``) with a memory and an etcd backend."""

from controlplane.store.base import (
    Compare,
    Delete,
    EventType,
    KeyValue,
    Op,
    Put,
    RangeResult,
    Store,
    TxnResult,
    WatchEvent,
)

__all__ = [
    "Compare",
    "Delete",
    "EventType",
    "KeyValue",
    "Op",
    "Put",
    "RangeResult",
    "Store",
    "TxnResult",
    "WatchEvent",
]
