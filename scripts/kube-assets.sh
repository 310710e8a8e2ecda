#!/usr/bin/env bash
# Builds the kube-apiserver and etcd that controller-runtime's envtest runs
# (internal/testenv/kube) from the Go module proxy, and caches them by version
# outside the work tree. Prints the directory to point KUBEBUILDER_ASSETS at.
#
#   scripts/kube-assets.sh            # build if absent (cold: 20-70 min), else <1 s
#   scripts/kube-assets.sh --print-dir   # only print the directory; build nothing
#   KUBE_ASSETS_DIR=... overrides the cache directory.
#
# `go install pkg@version` refuses both binaries because their go.mod files
# carry replace directives, so each one is built from a tiny helper module
# with a `tool` directive:
#   - kube-apiserver: requires k8s.io/kubernetes and replaces every staging
#     module that kubernetes's go.mod points at ./staging with its published
#     v0.<minor>.<patch> release;
#   - etcd: the main package is the root of go.etcd.io/etcd/server/v3.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.7.3}
STAGING_VERSION=v0.${K8S_VERSION#v1.}
DIR=${KUBE_ASSETS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/secretbroker/kube/k8s-${K8S_VERSION#v}-etcd-${ETCD_VERSION#v}}

if [ "${1:-}" = --print-dir ] || { [ -x "$DIR/kube-apiserver" ] && [ -x "$DIR/etcd" ]; }; then
  echo "$DIR"
  exit 0
fi
command -v go >/dev/null || { echo "kube-assets: Go is required" >&2; exit 1; }
mkdir -p "$DIR"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gover=$(go env GOVERSION); gover=${gover#go}

log() { echo "kube-assets: $*" >&2; }

build_etcd() {
  [ -x "$DIR/etcd" ] && return
  local m="$work/etcd" start=$SECONDS
  mkdir -p "$m"
  cat >"$m/go.mod" <<MOD
module secretbroker.local/kubeassets/etcd

go $gover

tool go.etcd.io/etcd/server/v3

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
  (cd "$m" && go mod tidy >&2 && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$DIR/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$DIR/etcd.tmp" "$DIR/etcd"
  log "etcd $ETCD_VERSION built in $((SECONDS - start)) s"
}

build_apiserver() {
  [ -x "$DIR/kube-apiserver" ] && return
  local m="$work/apiserver" start=$SECONDS
  mkdir -p "$m"
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
  [ -f "$gomod" ] || { log "cannot download k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
  {
    cat <<MOD
module secretbroker.local/kubeassets/apiserver

go $gover

tool k8s.io/kubernetes/cmd/kube-apiserver

require k8s.io/kubernetes $K8S_VERSION

MOD
    # Both "replace X => ./staging/..." lines and the block form.
    grep -E '=>[[:space:]]*\./staging/' "$gomod" |
      sed -E 's/^[[:space:]]*(replace[[:space:]]+)?([^[:space:]]+).*/\2/' |
      sort -u | while read -r mod; do
        echo "replace $mod => $mod $STAGING_VERSION"
      done
  } >"$m/go.mod"
  grep -c '^replace' "$m/go.mod" | xargs -I{} echo "kube-assets: {} staging modules replaced with $STAGING_VERSION" >&2
  (cd "$m" && go mod tidy >&2 && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$DIR/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
  mv "$DIR/kube-apiserver.tmp" "$DIR/kube-apiserver"
  log "kube-apiserver $K8S_VERSION built in $((SECONDS - start)) s"
}

log "building into $DIR (cold: 20-70 minutes)"
build_etcd
build_apiserver
echo "$DIR"
