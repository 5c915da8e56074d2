"""Reading YAML (and JSON) files people hand to the CLI, with bounds: every manifest, the sites
file of ``dev up``, stargatectl's config and the server's ``--safety-rules``.

PyYAML's ``safe_load`` has none: a ~600-byte "billion laughs" (nested aliases) took 20 s and 1 GB
before ``MemoryError``; deep nesting raised ``RecursionError``; a 5,000-digit integer raised
``ValueError`` (Python's 4,300-digit limit); a file that is not UTF-8 raised
``UnicodeDecodeError`` - each a traceback. Here every one of those is a one-line InvalidArgument
naming the file (and the line), and costs at most a bounded amount of work:

- size: at most ``MAX_BYTES`` are read;
- text: strict UTF-8 (a BOM is allowed);
- aliases: each node counts as many nodes as it expands to (an alias counts the whole node it
  names), and a document may expand to at most ``MAX_NODES`` - a billion laughs stops after ~10^5
  nodes, in milliseconds, before anything is built;
- depth: at most ``MAX_DEPTH`` nested collections (checked before recursing); no alias inside
  the node it names (a cycle: every reader of the data would recurse for ever);
- integers: at most ``MAX_INT_DIGITS`` digits (ranges are checked later, by field).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode

from controlplane.errors import InvalidArgument

MAX_BYTES = 1024 * 1024
MAX_NODES = 100_000
MAX_DEPTH = 64
MAX_INT_DIGITS = 32


class _Bound(Exception):
    def __init__(self, what: str, node_or_mark: Any) -> None:
        mark = getattr(node_or_mark, "start_mark", node_or_mark)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        super().__init__(what + line)


class _BoundedLoader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._size: dict[int, int] = {}

    def compose_document(self) -> Any:
        self._size = {}
        return super().compose_document()

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(AliasEvent):
            target = self.anchors.get(self.peek_event().anchor)
            if target is not None and id(target) not in self._size:
                raise _Bound("an alias inside the node it names (a cycle)", self.peek_event())
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Bound(f"nested deeper than {MAX_DEPTH} levels", self.peek_event())
            node: Node = super().compose_node(parent, index)  # type: ignore[misc,assignment]
        finally:
            self._depth -= 1
        if id(node) not in self._size:  # an alias returns a node already counted
            size = 1
            if isinstance(node, SequenceNode):
                size += sum(self._size[id(n)] for n in node.value)
            elif isinstance(node, MappingNode):
                size += sum(self._size[id(k)] + self._size[id(v)] for k, v in node.value)
            if size > MAX_NODES:
                raise _Bound(f"expands to more than {MAX_NODES} nodes (aliases?)", node)
            self._size[id(node)] = size
        return node

    def construct_yaml_int(self, node: Any) -> int:
        digits = sum(c.isdigit() for c in str(node.value))
        if digits > MAX_INT_DIGITS:
            raise _Bound(f"an integer of {digits} digits (at most {MAX_INT_DIGITS})", node)
        return super().construct_yaml_int(node)  # type: ignore[no-any-return]


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)


def read(path: Path, field: str, limit: int = MAX_BYTES) -> bytes:
    """At most ``limit`` bytes of ``path``; InvalidArgument naming ``field`` when it is larger or
    unreadable (never reads more than ``limit`` + 1 bytes)."""
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise InvalidArgument(field, f"cannot read {path}: {e.strerror}") from e
    if len(data) > limit:
        raise InvalidArgument(field, f"{path} is larger than {limit} bytes")
    return data


def parse_all(data: bytes, source: str, field: str) -> list[Any]:
    """Every document of ``data`` (YAML or JSON), within the bounds above."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InvalidArgument(field, f"{source} is not UTF-8 text (byte {e.start})") from e
    loader = _BoundedLoader(text)
    try:
        docs = []
        while loader.check_data():
            docs.append(loader.get_data())
        return docs
    except _Bound as e:
        raise InvalidArgument(field, f"{source}: {e}") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise InvalidArgument(field, f"{source} is not valid YAML{at}") from e
    except (ValueError, RecursionError) as e:  # e.g. a value the resolver cannot convert
        raise InvalidArgument(field, f"{source} holds a value that cannot be read") from e
    finally:
        loader.dispose()


def load_all(path: Path, field: str) -> list[Any]:
    return parse_all(read(path, field), str(path), field)


def load(path: Path, field: str) -> Any:
    """The one document of ``path`` (None for an empty file)."""
    docs = load_all(path, field)
    if len(docs) > 1:
        raise InvalidArgument(field, f"{path} holds {len(docs)} documents, expected one")
    return docs[0] if docs else None
