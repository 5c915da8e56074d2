"""The audit log's Merkle tree in the store: its tiles, its size and root, and proofs from them.

Store layout (controlplane/domain/records.py): ``audit/tree`` holds {"size", "root"} and is
written in the same transaction as the events and tiles it covers (services/audit.py);
``audit/tiles/<level>/<index:020d>`` holds a tile's hashes, raw (32 bytes each). A proof reads at
most two tiles per level (3 levels at 10^6 events), concurrently; full tiles never change, so a
replica keeps the ones it has read.

The last, growing tile of level 0 changes with every commit. Rewriting it whole cost 4.9 KB per
event at one event per commit (8.9x the hash chain's bytes, measured at 10^6 events), so it is
kept in two keys: its tile key holds the first hashes in whole strips of ``TAIL`` (rewritten once
per ``TAIL`` leaves) and ``audit/tiles/0/tail`` the rest (under ``TAIL`` hashes, rewritten by
every commit), stamped with the tile's index and where it starts. Higher levels change once per
256 leaves and are written whole.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json

from controlplane.domain import merkle, tiles
from controlplane.domain.records import AUDIT_TILES, AUDIT_TREE, tile_key
from controlplane.domain.tiles import TileRef, TreeEdge
from controlplane.errors import FailedPrecondition, InvalidArgument
from controlplane.store import Put, Store

#: Hashes per strip of level 0's growing tile (bytes per event are least at sqrt(2 * 256) = ~16).
TAIL = 16
TAIL_KEY = AUDIT_TILES + "0/tail"


class TreeDamaged(FailedPrecondition):
    """The stored tree lacks data its size says it has (the store was altered or damaged)."""


def tree_record(edge: TreeEdge) -> bytes:
    return json.dumps({"size": edge.size, "root": base64.b64encode(edge.root()).decode()}).encode()


def _tail(index: int, start: int, hashes: bytes) -> bytes:
    return index.to_bytes(8, "big") + start.to_bytes(2, "big") + hashes


def tile_puts(before: TreeEdge, touched: dict[TileRef, bytes]) -> list[Put]:
    """The writes that store the tiles an append touched (``TreeEdge.append``), level 0's
    growing tile as whole strips plus the tail."""
    puts: list[Put] = []
    for (level, index), data in touched.items():
        width = len(data) // merkle.HASH_SIZE
        if level or width == tiles.WIDTH:
            puts.append(Put(tile_key(level, index), data))
            continue
        cut = width - width % TAIL
        held = tiles.hashes_at(before.size, 0)
        was = held % tiles.WIDTH - held % TAIL if held >> tiles.HEIGHT == index else 0
        if cut != was:
            puts.append(Put(tile_key(0, index), data[: cut * merkle.HASH_SIZE]))
        puts.append(Put(TAIL_KEY, _tail(index, cut, data[cut * merkle.HASH_SIZE :])))
    return puts


class LogTree:
    #: Full tiles kept in memory (8 KiB each): 1,024 cover the proofs of any leaf among 262,144.
    CACHE_TILES = 1024

    def __init__(self, store: Store) -> None:
        self._store = store
        self._full: collections.OrderedDict[TileRef, bytes] = collections.OrderedDict()

    async def state(self) -> tuple[int, bytes]:
        """The tree's size and root as last committed (0 and the empty root before any event)."""
        kv = await self._store.get(AUDIT_TREE)
        if kv is None:
            return 0, merkle.EMPTY_ROOT
        rec = json.loads(kv.value)
        return int(rec["size"]), base64.b64decode(rec["root"])

    async def _tile(self, ref: TileRef, count: int) -> bytes:
        """A tile with at least ``count`` hashes (``b""`` when the store holds fewer)."""
        for _ in range(3):
            if ref[0] or count == tiles.WIDTH:
                kv = await self._store.get(tile_key(*ref))
                return kv.value if kv is not None else b""
            main, tail = await asyncio.gather(self._store.get(tile_key(*ref)), self._store.get(TAIL_KEY))
            data = main.value if main is not None else b""
            if len(data) >= count * merkle.HASH_SIZE or tail is None:
                return data
            index, start = int.from_bytes(tail.value[:8], "big"), int.from_bytes(tail.value[8:10], "big")
            if (index, start * merkle.HASH_SIZE) == (ref[1], len(data)):
                return data + tail.value[10:]
            # The tail moved on between the two reads (the tile grew): read both again.
        return b""

    async def read(self, need: dict[TileRef, int]) -> dict[TileRef, bytes]:
        """The tiles in ``need`` with at least that many hashes each."""
        out = {ref: self._full[ref] for ref in need if ref in self._full}
        missing = [ref for ref in need if ref not in out]
        values = await asyncio.gather(*(self._tile(ref, need[ref]) for ref in missing))
        for ref, data in zip(missing, values, strict=True):
            if len(data) < need[ref] * merkle.HASH_SIZE:
                raise TreeDamaged(
                    f"audit log tile {ref[0]}/{ref[1]} holds {len(data) // merkle.HASH_SIZE} hashes, "
                    f"the tree needs {need[ref]}: the store was altered or damaged"
                )
            out[ref] = data
            if len(data) == tiles.WIDTH * merkle.HASH_SIZE:
                self._full[ref] = data
                if len(self._full) > self.CACHE_TILES:
                    self._full.popitem(last=False)
        for ref in need:
            if ref in self._full:
                self._full.move_to_end(ref)
        return out

    async def edge(self, size: int) -> TreeEdge:
        """What an appender needs to extend the tree of ``size`` leaves."""
        if size == 0:
            return TreeEdge.empty()
        try:
            return TreeEdge.from_tiles(size, await self.read(tiles.edge_tiles(size)))
        except tiles.TileError as e:
            raise TreeDamaged(f"audit log tree: {e}") from e

    async def _proof(self, ranges: list[tuple[int, int]], size: int) -> list[bytes]:
        nodes = [n for group in merkle.proof_nodes(ranges) for n in group]
        got = await self.read(tiles.tiles_for(nodes, size))
        return merkle.build_proof(ranges, lambda n: tiles.node_from_tiles(n, got))

    def _check_size(self, field: str, size: int, have: int) -> None:
        if size > have:
            raise InvalidArgument(field, f"the log holds {have} events, not {size}")

    async def inclusion(self, index: int, size: int) -> list[bytes]:
        """The RFC 9162 inclusion path of leaf ``index`` (event ``index + 1``) in the tree of ``size``."""
        self._check_size("tree_size", size, (await self.state())[0])
        if not 0 <= index < size:
            raise InvalidArgument("sequence", f"event {index + 1} is not in a tree of {size} events")
        return await self._proof(merkle.inclusion_ranges(index, size), size)

    async def consistency(self, first: int, second: int) -> list[bytes]:
        """The RFC 9162 consistency proof between the trees of ``first`` and ``second`` leaves."""
        self._check_size("second", second, (await self.state())[0])
        if not 0 < first <= second:
            raise InvalidArgument("first", f"must be 1..second ({second}), got {first}")
        return await self._proof(merkle.consistency_ranges(first, second), second)

    async def root(self, size: int) -> bytes:
        """The root of the tree of ``size`` leaves, computed from the tiles (not the tree record)."""
        if size == 0:
            return merkle.EMPTY_ROOT
        return (await self._proof([(0, size)], size))[0]
