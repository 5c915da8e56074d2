"""RFC 9162 Merkle trees: the reference implementation's data, and properties for random sizes.

tests/unit/data/merkle_reference.json is transparency-dev/merkle's testonly data and proof probes
(source commit inside the file). Properties: every proof we build verifies, equals what RFC 9162's
recursive definitions give, and any flipped bit (in the proof, the leaf, either root) or any wrong
index or size makes verification fail.
"""

from __future__ import annotations

import base64
import functools
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.domain.merkle import (
    EMPTY_ROOT,
    ProofError,
    build_proof,
    consistency_ranges,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    range_nodes,
    verify_consistency,
    verify_inclusion,
)

REF = json.loads((Path(__file__).parent / "data" / "merkle_reference.json").read_text())
LEAVES = [bytes.fromhex(x) for x in REF["leaf_inputs"]]


def b64(values: list[str] | None) -> list[bytes]:
    return [base64.b64decode(v) for v in values or []]


# --- RFC 9162 section 2.1, as written (recursive, over leaf hashes): the oracle --------------------


def mth(hashes: list[bytes]) -> bytes:
    if not hashes:
        return EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return node_hash(mth(hashes[:k]), mth(hashes[k:]))


def rfc_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = 1 << ((len(d) - 1).bit_length() - 1)
    if m < k:
        return [*rfc_path(m, d[:k]), mth(d[k:])]
    return [*rfc_path(m - k, d[k:]), mth(d[:k])]


def rfc_subproof(m: int, d: list[bytes], whole: bool) -> list[bytes]:
    if m == len(d):
        return [] if whole else [mth(d)]
    k = 1 << ((len(d) - 1).bit_length() - 1)
    if m <= k:
        return [*rfc_subproof(m, d[:k], whole), mth(d[k:])]
    return [*rfc_subproof(m - k, d[k:], False), mth(d[:k])]


BIG = [leaf_hash(str(i).encode()) for i in range(4096)]


@functools.cache
def big_node(height: int, index: int) -> bytes:
    if height == 0:
        return BIG[index]
    return node_hash(big_node(height - 1, 2 * index), big_node(height - 1, 2 * index + 1))


def big_root(size: int) -> bytes:
    return mth(BIG[:size]) if size <= 64 else build_proof([(0, size)], lambda n: big_node(*n))[0]


# --- the reference data ----------------------------------------------------------------------------


def test_reference_roots_and_nodes() -> None:
    hashes = [leaf_hash(x) for x in LEAVES]
    for size, root in enumerate(REF["root_hashes"]):
        assert mth(hashes[:size]).hex() == root
        if size:
            built = build_proof([(0, size)], lambda n: mth(hashes[n[1] << n[0] : (n[1] + 1) << n[0]]))
            assert built[0].hex() == root
    for height, level in enumerate(REF["node_hashes"]):
        for index, h in enumerate(level):
            assert mth(hashes[index << height : (index + 1) << height]).hex() == h
    assert EMPTY_ROOT.hex() == REF["empty_root"]


@pytest.mark.parametrize("probe", REF["inclusion"], ids=lambda p: p["file"].removeprefix("testdata/"))
def test_reference_inclusion_probes(probe: dict) -> None:
    args = (probe["leafIdx"], probe["treeSize"], base64.b64decode(probe["leafHash"] or ""))
    proof, root = b64(probe["proof"]), base64.b64decode(probe["root"] or "")
    if probe["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args, proof, root)
    else:
        verify_inclusion(*args, proof, root)
        # ... and the proof we build for that leaf is the reference's, element by element.
        hashes = [leaf_hash(x) for x in LEAVES]
        assert rfc_path(probe["leafIdx"], hashes[: probe["treeSize"]]) == proof
        built = build_proof(
            inclusion_ranges(probe["leafIdx"], probe["treeSize"]),
            lambda n: mth(hashes[n[1] << n[0] : (n[1] + 1) << n[0]]),
        )
        assert built == proof


@pytest.mark.parametrize("probe", REF["consistency"], ids=lambda p: p["file"].removeprefix("testdata/"))
def test_reference_consistency_probes(probe: dict) -> None:
    size1, size2 = probe["size1"], probe["size2"]
    r1, r2 = base64.b64decode(probe["root1"] or ""), base64.b64decode(probe["root2"] or "")
    proof = b64(probe["proof"])
    if probe["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, r1, r2, proof)
    else:
        verify_consistency(size1, size2, r1, r2, proof)
        hashes = [leaf_hash(x) for x in LEAVES]
        built = build_proof(
            consistency_ranges(size1, size2), lambda n: mth(hashes[n[1] << n[0] : (n[1] + 1) << n[0]])
        )
        assert built == proof == rfc_subproof(size1, hashes[:size2], True)


def test_the_probes_cover_both_outcomes() -> None:
    for kind in ("inclusion", "consistency"):
        outcomes = [p["wantErr"] for p in REF[kind]]
        assert outcomes.count(True) > 50 and outcomes.count(False) >= 4, kind


# --- properties ---------------------------------------------------------------------------------


def flip(data: bytes, bit: int) -> bytes:
    b = bytearray(data)
    b[bit // 8 % len(b)] ^= 1 << (bit % 8)
    return bytes(b)


def test_proofs_equal_the_rfc_definitions_for_every_small_tree() -> None:
    for size in range(1, 70):
        for index in range(size):
            built = build_proof(inclusion_ranges(index, size), lambda n: big_node(*n))
            assert built == rfc_path(index, BIG[:size]), (index, size)
        for first in range(1, size + 1):
            built = build_proof(consistency_ranges(first, size), lambda n: big_node(*n))
            assert built == rfc_subproof(first, BIG[:size], True), (first, size)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 3000).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))), st.data())
def test_every_inclusion_proof_verifies_and_any_flipped_bit_fails(case: tuple[int, int], data) -> None:
    size, index = case
    path = build_proof(inclusion_ranges(index, size), lambda n: big_node(*n))
    root, leaf = big_root(size), BIG[index]
    verify_inclusion(index, size, leaf, path, root)
    assert len(path) <= size.bit_length()
    targets = ["path", "leaf", "root", "index", "size"] if path else ["leaf", "root"]
    target = data.draw(st.sampled_from(targets))
    bit = data.draw(st.integers(0, 255))
    with pytest.raises(ProofError):
        if target == "path":
            i = data.draw(st.integers(0, len(path) - 1))
            verify_inclusion(index, size, leaf, [*path[:i], flip(path[i], bit), *path[i + 1 :]], root)
        elif target == "leaf":
            verify_inclusion(index, size, flip(leaf, bit), path, root)
        elif target == "root":
            verify_inclusion(index, size, leaf, path, flip(root, bit))
        elif target == "index":
            other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index))
            verify_inclusion(other, size, leaf, path, root)
        else:  # another size, with that size's root (a checkpoint binds the two together)
            other = data.draw(st.integers(index + 1, 4096).filter(lambda n: n != size))
            verify_inclusion(index, other, leaf, path, big_root(other))


@settings(max_examples=300, deadline=None)
@given(st.integers(2, 3000).flatmap(lambda n: st.tuples(st.integers(1, n - 1), st.just(n))), st.data())
def test_every_consistency_proof_verifies_and_any_flipped_bit_fails(case: tuple[int, int], data) -> None:
    first, second = case
    path = build_proof(consistency_ranges(first, second), lambda n: big_node(*n))
    r1, r2 = big_root(first), big_root(second)
    verify_consistency(first, second, r1, r2, path)
    assert path
    target = data.draw(st.sampled_from(["path", "root1", "root2", "truncate", "extend"]))
    bit = data.draw(st.integers(0, 255))
    with pytest.raises(ProofError):
        if target == "path":
            i = data.draw(st.integers(0, len(path) - 1))
            verify_consistency(first, second, r1, r2, [*path[:i], flip(path[i], bit), *path[i + 1 :]])
        elif target == "root1":
            verify_consistency(first, second, flip(r1, bit), r2, path)
        elif target == "root2":
            verify_consistency(first, second, r1, flip(r2, bit), path)
        elif target == "truncate":
            verify_consistency(first, second, r1, r2, path[:-1])
        else:
            verify_consistency(first, second, r1, r2, [*path, path[0]])


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ProofError):
        inclusion_ranges(3, 3)
    with pytest.raises(ProofError):
        consistency_ranges(0, 3)
    with pytest.raises(ProofError):
        consistency_ranges(4, 3)
    with pytest.raises(ProofError, match="bytes"):
        verify_inclusion(0, 2, b"short", [BIG[1]], big_root(2))
    with pytest.raises(ValueError, match="aligned"):
        range_nodes(3, 7)
    verify_consistency(5, 5, big_root(5), big_root(5), [])
    with pytest.raises(ProofError, match="different roots"):
        verify_consistency(5, 5, big_root(5), big_root(6), [])
