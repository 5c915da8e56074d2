#!/usr/bin/env bash
# Debian's `prometheus` package, for the real-Prometheus integration test
# (tests/integration/test_prometheus_metrics.py). Only the binary is needed: the test starts its own
# server on a free port with its own scrape config. The package's service is neither started by the
# install nor left enabled. Idempotent; needs root (apt-get) on a fresh Debian machine.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1; then
  echo "install-prometheus: $(prometheus --version 2>&1 | head -n 1)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-prometheus: needs root to run apt-get (or install Debian's prometheus package)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d answering 101 ("action forbidden") keeps maintainer scripts from starting services
# (both invoke-rc.d and deb-systemd-invoke honour it). Only ours is removed afterwards.
policy=/usr/sbin/policy-rc.d
ours=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 0755 "$policy"
  ours=1
fi
cleanup() { if [ "$ours" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
# Where systemd runs the machine, the unit was enabled by the postinst: disable it (and stop it,
# should anything have started it); the tests never use the system service.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl disable --now prometheus.service >/dev/null 2>&1 || true
fi
echo "install-prometheus: $(prometheus --version 2>&1 | head -n 1)"
