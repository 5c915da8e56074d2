"""`make bench`: every benchmark, each in its own process (they start servers and fleets), in turn.

python -m benchmarks            # all
python -m benchmarks placement  # some
"""

from __future__ import annotations

import subprocess
import sys

ALL = [
    "placement",
    "store_throughput",
    "rollout",
    "halt_propagation",
    "failover",
    "heartbeat_writes",
    "input_checks",
    "directive_signing",
    "audit_log",
    "deploy_proofs",
    "job_placement",
]


def main(names: list[str]) -> int:
    failed = 0
    for name in names or ALL:
        print(f"\n## {name}\n", flush=True)
        failed += subprocess.run([sys.executable, "-m", f"benchmarks.{name}"], check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
