"""Tiles: how the log's Merkle tree is stored so that any proof costs O(log n) reads. Pure.

As in C2SP tlog-tiles (and Rekor v2), the perfect-subtree hashes at every 8th height are grouped
into tiles of 256: the tile at (level L, index K) holds the hashes of the nodes of height 8L with
indices [256K, 256K + 256), 32 bytes each, concatenated. Level 0 holds the leaf hashes. Any node
of height h is computed from at most 128 hashes of one tile at level h // 8, so an inclusion proof
at 10^6 leaves (20 hashes) reads at most 2 tiles per level, 3 levels. Full tiles never change; the
last tile of a level grows until it is full (stored under the same key, rewritten as it grows).

``TreeEdge`` is what an appender keeps: the last, incomplete tile of each level and the tree's
frontier (the compact range [0, size)), so appending k leaves costs ~3k hashes and the root ~log n.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controlplane.domain.merkle import EMPTY_ROOT, HASH_SIZE, Node, fold, node_hash, perfect_root

HEIGHT = 8
WIDTH = 1 << HEIGHT

#: (level, index) of a tile.
TileRef = tuple[int, int]


class TileError(ValueError):
    """A stored tile is shorter than the tree size says it must be (missing or damaged data)."""


def hashes_at(size: int, level: int) -> int:
    """How many hashes level ``level`` holds in a tree of ``size`` leaves."""
    return size >> (HEIGHT * level)


def levels(size: int) -> int:
    """How many tile levels a tree of ``size`` leaves has (0 for the empty tree)."""
    n = 0
    while hashes_at(size, n):
        n += 1
    return n


def split(data: bytes) -> list[bytes]:
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def node_tile(node: Node) -> tuple[TileRef, int, int]:
    """The tile that holds what ``node`` is computed from: (tile, first hash, hash count)."""
    height, index = node
    level, sub = divmod(height, HEIGHT)
    first = index << sub  # in units of level-``level`` hashes
    return (level, first >> HEIGHT), first & (WIDTH - 1), 1 << sub


def tiles_for(nodes: Sequence[Node], size: int) -> dict[TileRef, int]:
    """The tiles (and how many hashes of each) needed to compute ``nodes`` of a tree of ``size``."""
    need: dict[TileRef, int] = {}
    for node in nodes:
        ref, first, count = node_tile(node)
        end = first + count
        if (ref[1] << HEIGHT) + end > hashes_at(size, ref[0]):
            raise ValueError(f"node {node} is not complete in a tree of size {size}")
        need[ref] = max(need.get(ref, 0), end)
    return need


def node_from_tiles(node: Node, tiles: Mapping[TileRef, bytes]) -> bytes:
    ref, first, count = node_tile(node)
    data = tiles[ref]
    if len(data) < (first + count) * HASH_SIZE:
        raise TileError(f"tile {ref[0]}/{ref[1]} holds {len(data) // HASH_SIZE} hashes, not {first + count}")
    return perfect_root(split(data[first * HASH_SIZE : (first + count) * HASH_SIZE]))


def edge_tiles(size: int) -> dict[TileRef, int]:
    """The last, incomplete tile of every level (and its width) of a tree of ``size`` leaves."""
    out: dict[TileRef, int] = {}
    for level in range(levels(size)):
        count = hashes_at(size, level)
        if count % WIDTH:
            out[(level, count >> HEIGHT)] = count % WIDTH
    return out


@dataclass(frozen=True)
class TreeEdge:
    size: int
    #: Per level (0 first): the hashes of its last tile when incomplete, else b"".
    partial: tuple[bytes, ...]
    #: Perfect-subtree roots for the 1-bits of ``size``, largest (leftmost) first.
    frontier: tuple[bytes, ...]

    @classmethod
    def empty(cls) -> TreeEdge:
        return cls(0, (), ())

    @classmethod
    def from_tiles(cls, size: int, tiles: Mapping[TileRef, bytes]) -> TreeEdge:
        """Rebuild the edge from the ``edge_tiles(size)`` tiles (longer tiles are cut to size)."""
        partial: list[bytes] = []
        frontier: list[bytes] = []
        for level in range(levels(size)):
            width = hashes_at(size, level) % WIDTH
            if not width:
                partial.append(b"")
                continue
            ref = (level, hashes_at(size, level) >> HEIGHT)
            data = tiles.get(ref, b"")
            if len(data) < width * HASH_SIZE:
                raise TileError(f"tile {level}/{ref[1]} holds {len(data) // HASH_SIZE} hashes, not {width}")
            data = data[: width * HASH_SIZE]
            partial.append(data)
            hashes, start, part = split(data), 0, []
            for bit in reversed(range(HEIGHT)):  # the width's 1-bits, largest subtree first
                if width >> bit & 1:
                    part.append(perfect_root(hashes[start : start + (1 << bit)]))
                    start += 1 << bit
            frontier[:0] = part  # higher levels hold larger (leftmost) subtrees
        return cls(size, tuple(partial), tuple(frontier))

    def root(self) -> bytes:
        return fold(self.frontier) if self.size else EMPTY_ROOT

    def append(self, leaves: Sequence[bytes]) -> tuple[TreeEdge, dict[TileRef, bytes]]:
        """The edge after appending ``leaves`` (leaf hashes) and the tiles to store for it."""
        partial = [bytearray(p) for p in self.partial]
        frontier = list(self.frontier)
        touched: dict[TileRef, bytes] = {}
        size = self.size
        for leaf in leaves:
            frontier.append(leaf)
            s = size
            while s & 1:  # merge equal-height subtrees (one merge per trailing 1-bit of size)
                right = frontier.pop()
                frontier[-1] = node_hash(frontier[-1], right)
                s >>= 1
            h, level, position = leaf, 0, size
            while True:  # add h at ``position`` of ``level``; a tile that fills feeds the next level
                if level == len(partial):
                    partial.append(bytearray())
                buf = partial[level]
                buf += h
                ref = (level, position >> HEIGHT)
                if position % WIDTH != WIDTH - 1:
                    touched[ref] = b""  # written below, as it stands after the last leaf
                    break
                touched[ref] = bytes(buf)
                h = perfect_root(split(bytes(buf)))
                partial[level] = bytearray()
                level, position = level + 1, position >> HEIGHT
            size += 1
        for ref, data in touched.items():
            if not data:
                touched[ref] = bytes(partial[ref[0]])
        edge = TreeEdge(size, tuple(bytes(p) for p in partial), tuple(frontier))
        return edge, touched
