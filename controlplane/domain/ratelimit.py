"""Token buckets per peer, in bounded memory. Pure: the caller passes the time.

Used for unauthenticated callers (failed enrollments): each attempt takes a token (given back when
it succeeds), a peer with none left is refused before any work is done (no store read, no CSR
parse, no audit write of its own: see services/refusals.py), and tokens come back at ``rate`` per
second up to ``burst``. The table holds at most ``max_peers`` buckets: a full bucket carries no
state worth keeping, so the least recently used ones go first (an evicted peer comes back with a
full bucket, which is what it would have had anyway once refilled). IPv6 peers are grouped by
/64, the unit one host controls.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass


def peer_host(peer: str) -> str:
    """The address part of a gRPC peer string (``ipv4:1.2.3.4:5678`` -> ``ipv4:1.2.3.4``; IPv6 by
    /64: ``ipv6:[2001:db8:1:2::5]:443`` -> ``ipv6:2001:db8:1:2::/64``), without the port, which
    changes with every connection."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return f"ipv4:{rest.rpartition(':')[0] or rest}"
    if kind == "ipv6":
        host = rest.rpartition("]")[0].lstrip("[") if "]" in rest else rest
        groups = _expand_v6(host)
        return f"ipv6:{':'.join(groups[:4])}::/64" if groups else f"ipv6:{host[:64]}"
    return peer[:80]


def _expand_v6(host: str) -> list[str]:
    head, sep, tail = host.partition("::")
    left = [g for g in head.split(":") if g]
    right = [g for g in tail.split(":") if g] if sep else []
    if len(left) + len(right) > 8 or not all(0 < len(g) <= 4 for g in left + right):
        return []
    return left + ["0"] * (8 - len(left) - len(right)) + right


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    def __init__(self, *, rate: float = 1.0, burst: float = 10.0, max_peers: int = 10_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_peers = max_peers
        self._buckets: collections.OrderedDict[str, _Bucket] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _refilled(self, peer: str, now: float) -> _Bucket | None:
        b = self._buckets.get(peer)
        if b is not None:
            b.tokens = min(self.burst, b.tokens + max(0.0, now - b.at) * self.rate)
            b.at = now
            self._buckets.move_to_end(peer)
        return b

    def allowed(self, peer: str, now: float) -> bool:
        """Whether ``peer`` may be served now (it has a token left; taking none)."""
        b = self._refilled(peer, now)
        return b is None or b.tokens >= 1.0

    def retry_after(self, peer: str, now: float) -> float:
        """Seconds until ``peer`` has a token again (0 when it has one)."""
        b = self._refilled(peer, now)
        return 0.0 if b is None or b.tokens >= 1.0 else (1.0 - b.tokens) / self.rate

    def refund(self, peer: str, now: float) -> None:
        """Give back the token ``take`` charged (an attempt that succeeded after all)."""
        b = self._refilled(peer, now)
        if b is not None:
            b.tokens = min(self.burst, b.tokens + 1.0)

    def take(self, peer: str, now: float) -> None:
        """Charge one token (an attempt: charged before it runs, so that concurrent attempts cannot
        all pass ``allowed`` before any of them is charged; ``refund`` it when it succeeds)."""
        b = self._refilled(peer, now)
        if b is None:
            while len(self._buckets) >= self.max_peers:
                self._buckets.popitem(last=False)
            b = self._buckets[peer] = _Bucket(self.burst, now)
        b.tokens = max(0.0, b.tokens - 1.0)
