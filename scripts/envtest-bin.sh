#!/usr/bin/env bash
# Builds a real kube-apiserver for the envtest tier (tests/envtest) from Debian bookworm's
# `kubernetes` source package with Debian's Go 1.19, and caches it outside the work tree:
#   ${STARGATE_CACHE:-~/.cache/stargate}/kube-apiserver-<version>/kube-apiserver
# No prebuilt kube-apiserver can be downloaded on the project's machines, so this is the only way
# to get one. Reused when present (prints its path and exits at once). A cold build takes ~4.5 min
# on 2 idle cores (more when they are shared) and needs ~3 GB of disk for the tree and Go's cache,
# which are removed afterwards. Needs root for apt-get on a fresh Debian machine.
# Prints the binary's path on its last line of stdout.
set -euo pipefail
VERSION="${ENVTEST_K8S_VERSION:-1.20.2}"
DEB_VERSION="1.20.5+really1.20.2-1.1+deb12u1"
CACHE="${STARGATE_CACHE:-$HOME/.cache/stargate}"
OUT="$CACHE/kube-apiserver-$VERSION"
BIN="$OUT/kube-apiserver"
if [ -x "$BIN" ]; then
  echo "$BIN"
  exit 0
fi
log() { echo "envtest-bin: $*" >&2; }
need_apt=()
command -v go >/dev/null 2>&1 || need_apt+=(golang-go)
[ -d /usr/share/gocode/src/github.com/modern-go/reflect2 ] || need_apt+=(golang-github-modern-go-reflect2-dev)
command -v dpkg-source >/dev/null 2>&1 || need_apt+=(dpkg-dev)
# Kubernetes' build copies generator binaries with rsync (hack/lib/golang.sh).
command -v rsync >/dev/null 2>&1 || need_apt+=(rsync)
command -v make >/dev/null 2>&1 || need_apt+=(make)
src_list=/etc/apt/sources.list.d/stargate-deb-src.sources
if [ ${#need_apt[@]} -gt 0 ] || [ ! -e "$src_list" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "needs root to run apt-get (packages: ${need_apt[*]:-} and a deb-src entry); or build by hand as described in scripts/envtest-bin.sh"
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if [ ! -e "$src_list" ]; then
    # The same archive as the machine's debian.sources, for source packages only.
    cat >"$src_list" <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  log "apt-get update"
  apt-get update -qq
  if [ ${#need_apt[@]} -gt 0 ]; then
    log "apt-get install ${need_apt[*]}"
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  fi
fi
export PATH="/usr/lib/go/bin:$PATH"
mkdir -p "$CACHE"
WORK="$(mktemp -d "$CACHE/build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
log "apt-get source kubernetes=$DEB_VERSION (in $WORK)"
apt-get source -qq "kubernetes=$DEB_VERSION" >/dev/null 2>&1 || apt-get source -qq kubernetes >/dev/null
SRC_DIR="$(find . -maxdepth 1 -mindepth 1 -type d -name 'kubernetes-*' | head -n 1)"
cd "$SRC_DIR"
# reflect2 1.0.1 (vendored) crashes at run time under Go >= 1.18 (unsafe map iteration); Debian's
# 1.0.2 fixes it and has the same API. modules.txt keeps naming 1.0.1 so `-mod=vendor` stays
# consistent with go.mod.
rm -rf vendor/github.com/modern-go/reflect2
cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 vendor/github.com/modern-go/reflect2
rm -rf vendor/github.com/modern-go/reflect2/.git* vendor/github.com/modern-go/reflect2/debian
export GOCACHE="$WORK/gocache" GOPATH="$WORK/gopath" GOFLAGS="-mod=vendor" GO111MODULE=on
export KUBE_GIT_VERSION="v$VERSION" KUBE_GIT_TREE_STATE=clean
log "make WHAT=cmd/kube-apiserver (go $(go version | awk '{print $3}'); several minutes)"
start=$(date +%s)
make WHAT=cmd/kube-apiserver >"$WORK/build.log" 2>&1 || { tail -n 60 "$WORK/build.log" >&2; exit 1; }
built="$(find _output -type f -name kube-apiserver -perm -u+x | head -n 1)"
[ -n "$built" ] || { log "no kube-apiserver in _output"; exit 1; }
mkdir -p "$OUT"
install -m 0755 "$built" "$BIN.tmp"
mv "$BIN.tmp" "$BIN"
log "built $("$BIN" --version) in $(( $(date +%s) - start )) s"
echo "$BIN"
