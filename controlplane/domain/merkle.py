"""RFC 9162 (Certificate Transparency v2) Merkle trees: hashing, proofs and their verification.

Pure functions, no I/O. The tree over leaves d[0..n) is RFC 9162 section 2.1.1's MTH with SHA-256:
a leaf hashes as SHA-256(0x00 || data), an inner node as SHA-256(0x01 || left || right), and a
tree of n > 1 leaves splits at the largest power of two below n.

Proofs are built from *perfect subtrees*: node (height h, index i) is the root over the leaves
[i * 2^h, (i + 1) * 2^h). Every element of an inclusion or consistency proof is the MTH of a leaf
range, and every such range is a run of perfect subtrees folded from the right (``range_nodes``),
so whoever stores perfect-subtree hashes (tiles, controlplane/domain/tiles.py) can answer a proof
with O(log n) reads. Verification follows RFC 9162 sections 2.1.3.2 and 2.1.4.2 to the letter,
with transparency-dev/merkle's conventions at the edges (a proof from size 0 is meaningless; a
proof between equal sizes is empty), and is tested against that project's reference data.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence

HASH_SIZE = 32
#: MTH of the empty tree: SHA-256 of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()

#: A perfect subtree: (height, index) covers leaves [index << height, (index + 1) << height).
Node = tuple[int, int]


class ProofError(ValueError):
    """A proof does not verify, or its parameters are impossible; the message says which."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (n >= 2): RFC 9162's k."""
    return 1 << ((n - 1).bit_length() - 1)


def perfect_root(hashes: Sequence[bytes]) -> bytes:
    """The root over 2^k sibling hashes of one height (a perfect subtree), k >= 0."""
    level = list(hashes)
    if not level or len(level) & (len(level) - 1):
        raise ValueError(f"a perfect subtree has a power-of-two width, not {len(level)}")
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def fold(hashes: Sequence[bytes]) -> bytes:
    """The MTH of a range from its perfect subtrees, left to right (largest first)."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def range_nodes(begin: int, end: int) -> list[Node]:
    """The perfect subtrees, left to right, whose ``fold`` is MTH(d[begin:end]).

    ``begin`` must be aligned as in every range RFC 9162's proofs name (a multiple of the largest
    power of two not above end - begin); anything else is a caller bug.
    """
    nodes: list[Node] = []
    while begin < end:
        n = end - begin
        k = n if n & (n - 1) == 0 else _split(n)
        if begin % k:
            raise ValueError(f"range [{begin}, {end}) is not aligned")
        height = k.bit_length() - 1
        nodes.append((height, begin >> height))
        begin += k
    return nodes


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose MTHs form PATH(index, d[0:size]), in proof order (leaf first)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    out: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
    out.reverse()
    return out


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The leaf ranges whose MTHs form PROOF(first, d[0:second]) (RFC 9162 2.1.4.1), in order."""
    if not 0 < first <= second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    out: list[tuple[int, int]] = []
    lo, hi, m, whole = 0, second, first, True
    while True:  # SUBPROOF(m, d[lo:hi], whole)
        n = hi - lo
        if m == n:
            if not whole:
                out.append((lo, hi))
            break
        k = _split(n)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    out.reverse()
    return out


def proof_nodes(ranges: Sequence[tuple[int, int]]) -> list[list[Node]]:
    """For each proof element, the perfect subtrees to fold (what a tile reader must supply)."""
    return [range_nodes(a, b) for a, b in ranges]


def build_proof(ranges: Sequence[tuple[int, int]], node: Callable[[Node], bytes]) -> list[bytes]:
    """Proof hashes from a reader of perfect-subtree hashes."""
    return [fold([node(n) for n in nodes]) for nodes in proof_nodes(ranges)]


def _check_hashes(what: str, hashes: Sequence[bytes]) -> None:
    for i, h in enumerate(hashes):
        if len(h) != HASH_SIZE:
            raise ProofError(f"{what}[{i}] is {len(h)} bytes, not {HASH_SIZE}")


def root_from_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes:
    """The root that ``path`` proves ``leaf`` (a leaf hash) is at ``index`` of (RFC 9162 2.1.3.2)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    _check_hashes("leaf hash", [leaf])
    _check_hashes("inclusion path", path)
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise ProofError("inclusion path is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("inclusion path is shorter than the tree is deep")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes], root: bytes) -> None:
    """Raise ProofError unless ``path`` proves ``leaf`` is leaf ``index`` of the tree ``root``."""
    if not hmac.compare_digest(root_from_inclusion(index, size, leaf, path), root):
        raise ProofError(f"leaf {index} is not in the tree of size {size} with that root")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, path: Sequence[bytes]
) -> None:
    """Raise ProofError unless the tree ``second_root`` of size ``second`` extends the tree
    ``first_root`` of size ``first`` (RFC 9162 2.1.4.2)."""
    _check_hashes("consistency path", path)
    if not 0 < first <= second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    if first == second:
        if path:
            raise ProofError("a proof between equal sizes is empty")
        if not hmac.compare_digest(first_root, second_root):
            raise ProofError(f"two different roots for size {first}")
        return
    if not path:
        raise ProofError("consistency path is empty")
    _check_hashes("root", [first_root, second_root])
    hashes = list(path)
    if first & (first - 1) == 0:  # an exact power of two: the old root is a node of the new tree
        hashes.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = hashes[0]
    for c in hashes[1:]:
        if sn == 0:
            raise ProofError("consistency path is longer than needed")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("consistency path is shorter than needed")
    if not hmac.compare_digest(fr, first_root):
        raise ProofError(f"the proof does not lead to the root of size {first}")
    if not hmac.compare_digest(sr, second_root):
        raise ProofError(f"the proof does not lead to the root of size {second}")
