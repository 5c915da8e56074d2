"""Process-wide settings for the long-running daemons: a control-plane replica and a site operator.

Garbage collection: CPython collects the young generation every 700 net allocations and, now and
then, the whole heap. A replica holding 1,000 site links allocates that much many times per halt;
measured on ``benchmarks/halt_propagation.py`` with the default settings, full collections paused
the event loop for 150-240 ms in 2 rounds out of 6 (at 1,000 sites), and middle-generation collections
for up to 30 ms each. Reference counting frees almost everything here; the collector only finds cycles.
So: freeze what start-up allocated (configuration, stubs, modules: never garbage) out of the
collector's reach, and collect the young generation every 20,000 allocations instead of 700 (the
same amount of cyclic garbage is found, in fewer, larger passes). With both, no collection over
10 ms was seen in those rounds (halt p50 / p99 at 1,000 sites: 356 / 555 ms with the freeze alone,
~280 / ~380 ms with both).

The price is fewer but longer passes when a burst allocates a lot: in the benchmark's process,
which also enrolled 1,000 sites (keys, channels), single passes of 0.6-0.75 s were seen during
enrollment and the connect storm that follows (the default settings paused 0.3-0.45 s there, more
often). Lease TTLs (5 s by default) leave room for that; a replica that must never pause that
long wants a smaller GEN0_THRESHOLD.
"""

from __future__ import annotations

import gc

#: Net allocations between young-generation collections (CPython's default: 700).
GEN0_THRESHOLD = 20_000


def tune_gc() -> None:
    """Call once, after start-up allocations and before serving."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
