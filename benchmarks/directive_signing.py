"""The cost of signing every directive end to end, per directive and for 1,000 sites, beside what
the same directive costs anyway (measured in the same run).

- An ordinary Deploy as queued (services/directives.py): the record converted to the wire message
  and serialized (baseline), then signed with the directive key over the site id and sequence
  (``pki/directive_key.py``), and at the site verified.
- A halt as the link sends it (server/safety_link.py): the lane message is built once and
  shared by every link (baseline: nothing per site); with the directive key each link copies it
  and signs it for its site, and each site verifies that signature beside the safety key's.

    python -m benchmarks.directive_signing [--sites 1000]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable

from controlplane.api.v1 import types_pb2 as tpb
from controlplane.domain.records import DirectiveRecord
from controlplane.pki import directive_key as dk
from controlplane.services.directive_wire import signed, unsigned_pb

PAYLOAD = {
    "deployment_name": "atlas",
    "model": "atlas",
    "version": "1.2.0",
    "digest": "sha256:" + "ab" * 32,
    "replicas": 2,
    "release": "atlas-1.2.0",
    "risk_tier": 2,
    "signed_release": {
        "release": {
            "name": "atlas-1.2.0",
            "model": "atlas",
            "version": "1.2.0",
            "digest": "sha256:" + "ab" * 32,
        },
        "publisher": "acme",
        "signature": "QUJD" * 22,
        "publisher_key": "QUJD" * 11,
    },
}


def timed(fn: Callable[[], object], n: int, loops: int = 5) -> float:
    """Median over ``loops`` of the mean microseconds per call of ``n`` calls."""
    out = []
    for _ in range(loops):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        out.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sites", type=int, default=1000)
    args = ap.parse_args()
    n = args.sites
    key = dk.DirectiveKey.generate()
    now = time.time()
    recs = [
        DirectiveRecord(
            f"site-{i}", 7, str(uuid.uuid4()), "Deploy", PAYLOAD, now, now + 86400, "spiffe://t/user/a"
        )
        for i in range(n)
    ]
    it = iter(range(10**9))

    def build() -> None:
        unsigned_pb(recs[next(it) % n]).SerializeToString()

    def sign() -> None:
        signed(recs[next(it) % n], key)

    wires = [unsigned_pb(signed(r, key)) for r in recs]
    for w, r in zip(wires, recs, strict=True):
        key.sign(r.site_id, w)

    def verify() -> None:
        i = next(it) % n
        assert dk.check(key.public, recs[i].site_id, wires[i]) is None

    halt = tpb.Directive(id="h", kind=tpb.DIRECTIVE_KIND_HALT, safety_sequence=3, signature=b"s" * 64)
    halt.halt.release, halt.halt.scope, halt.halt.model = "atlas-1.2.0", "global", "atlas"
    shared = halt

    def per_link() -> None:
        d = tpb.Directive()
        d.CopyFrom(shared)
        key.sign(f"site-{next(it) % n}", d)

    rows = [
        ("Deploy: record -> wire message, serialized (baseline)", timed(build, n)),
        ("Deploy: the same + directive-key signature (as queued now)", timed(sign, n)),
        ("Deploy: verify at the site", timed(verify, n)),
        ("Halt: per link, copy + sign for its site", timed(per_link, n)),
    ]
    print(f"| per directive ({n} sites) | us | for {n} sites, ms |")
    print("|---|---:|---:|")
    for name, us in rows:
        print(f"| {name} | {us:.1f} | {us * n / 1000:.1f} |")


if __name__ == "__main__":
    main()
