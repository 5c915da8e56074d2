"""Tiles and the appender's edge: whatever the batch sizes, the stored tiles hold exactly the
perfect-subtree hashes, the edge's root is the RFC 9162 root at every size, the edge rebuilt from
the stored edge tiles is the same edge, and a proof needs O(log n) tiles."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.domain import tiles
from controlplane.domain.merkle import (
    build_proof,
    consistency_ranges,
    inclusion_ranges,
    leaf_hash,
    proof_nodes,
)
from controlplane.domain.tiles import TileError, TreeEdge, edge_tiles, node_from_tiles, tiles_for
from tests.unit.test_merkle import BIG, big_node, big_root


def grow(batches: list[int]) -> tuple[TreeEdge, dict[tuple[int, int], bytes], list[TreeEdge]]:
    edge, store, edges, n = TreeEdge.empty(), {}, [TreeEdge.empty()], 0
    for k in batches:
        edge, written = edge.append(BIG[n : n + k])
        store.update(written)
        n += k
        edges.append(edge)
    return edge, store, edges


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 300), min_size=1, max_size=13))
def test_any_batching_stores_the_same_tiles_and_roots(batches: list[int]) -> None:
    edge, store, edges = grow(batches)
    one_by_one, store1, _ = grow([1] * edge.size)
    assert store == store1 and edge == one_by_one
    for e in edges:
        assert e.root() == big_root(e.size)
        assert TreeEdge.from_tiles(e.size, store) == e  # tiles longer than that size are cut


def test_tiles_hold_the_perfect_subtree_hashes() -> None:
    edge, store, _ = grow([700, 900, 2000])
    size = edge.size
    for (level, index), data in store.items():
        for j, h in enumerate(tiles.split(data)):
            assert h == big_node(8 * level, index * 256 + j)
    # A full tile at level 0 is 256 leaf hashes; the last tile of each level is the partial one.
    assert len(store[(0, 0)]) == 256 * 32 and len(store[(1, 0)]) == (size // 256) * 32
    assert edge_tiles(size) == {(0, size // 256): size % 256, (1, 0): size // 256}


def test_proofs_from_tiles_read_few_tiles() -> None:
    edge, store, _ = grow([3600])
    for _ in range(200):
        size = random.randint(1, edge.size)
        index = random.randrange(size)
        for ranges in (inclusion_ranges(index, size), consistency_ranges(index + 1, size)):
            nodes = [n for group in proof_nodes(ranges) for n in group]
            need = tiles_for(nodes, size)
            assert len(need) <= 2 * tiles.levels(size)
            got = build_proof(ranges, lambda n: node_from_tiles(n, store))
            assert got == build_proof(ranges, lambda n: big_node(*n))


def test_a_short_tile_is_reported_not_misread() -> None:
    _, store, _ = grow([300])
    damaged = dict(store)
    damaged[(0, 1)] = store[(0, 1)][:-32]
    with pytest.raises(TileError, match="tile 0/1 holds 43 hashes, not 44"):
        TreeEdge.from_tiles(300, damaged)
    with pytest.raises(TileError):
        node_from_tiles((0, 299), damaged)
    with pytest.raises(ValueError, match="not complete"):
        tiles_for([(2, 75)], 300)  # leaves 300-303 do not exist yet


def test_leaf_hashes_are_over_the_data() -> None:
    assert BIG[7] == leaf_hash(b"7")
