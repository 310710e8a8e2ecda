#!/usr/bin/env bash
# The one test command (README.md, .ci/run): installs what the tests need on
# a fresh Debian 12 machine, then runs every test of every Go module.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { # need COMMAND DEBIAN-PACKAGE
  command -v "$1" >/dev/null 2>&1 && return
  echo "installing $2 (for $1)"
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
command -v go >/dev/null || { echo "Go is required: https://go.dev/doc/install" >&2; exit 1; }
need mkfifo coreutils
need ps procps
need script bsdutils
need git git
need docker docker.io
need docker-compose docker-compose   # examples/compose end-to-end test
need rpmbuild rpm                    # lint/scan: a real rpm database
need python3 python3                 # lint/scan: real compiled .pyc files

if ! docker info >/dev/null 2>&1; then
  # A fresh machine may have the engine installed but not started.
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO systemctl start docker >/dev/null 2>&1 || $SUDO service docker start >/dev/null 2>&1 || true
  for _ in $(seq 20); do docker info >/dev/null 2>&1 && break; sleep 1; done
fi
if ! docker info >/dev/null 2>&1; then
  if [ "${CI:-}" = true ]; then
    echo "docker info fails: the container tests need a running Docker Engine under CI" >&2
    exit 1
  fi
  echo "warning: no Docker Engine reachable; the container tests will skip" >&2
fi

# kube-apiserver and etcd for internal/testenv/kube (envtest), built from the
# Go module proxy once (20-70 minutes cold) and cached by version outside the
# work tree; a second run takes under a second.
if KUBEBUILDER_ASSETS=$(scripts/kube-assets.sh); then
  export KUBEBUILDER_ASSETS
else
  echo "warning: scripts/kube-assets.sh failed; the Kubernetes tests will skip (fail under CI=true)" >&2
fi

# Every module: the main one first, then the test-only ones (heavy
# dependencies such as the in-process Vault live there, out of the main
# module's graph).
status=0
for mod in $(find . -name go.mod -not -path './.git/*' | sort); do
  dir=$(dirname "$mod")
  echo "== go test in $dir"
  # A test module replaces the main module with ../.., so a dependency added
  # there must be added here too (scripts/tidy.sh); say so before building.
  if [ "$dir" = . ]; then
    # The main module: the engine's packages under the race detector, the
    # rest (commands, lint, the 1Password provider whose real-SDK tests are
    # too slow under -race) without it.
    race=$(go list ./pipeline ./broker ./process ./tmpfs ./spec ./secret ./policy ./identity ./internal/cli ./providers/... | grep -v /providers/onepassword)
    rest=$(go list ./... | grep -vxF "$race")
    (go mod tidy -diff >/dev/null || { echo "go.mod/go.sum out of date; run scripts/tidy.sh" >&2; exit 1; }) &&
      go vet ./... && go test -race -count=1 -timeout 45m $race && go test -count=1 -timeout 45m $rest || status=1
    # 1Password under -race all the same, without the real-SDK tests (-short
    # skips them; compiling the SDK's core under -race overruns their
    # deadline): its Connect path reads in parallel (a data race there was
    # found this way). About 4 s.
    go test -race -short -count=1 ./providers/onepassword || status=1
    # A build that leaves a provider out must build, and must leave nothing
    # of its scheme behind (providers/builtin's registry test).
    for tags in novault noawssm noonepassword; do
      go build -tags "$tags" ./... && go test -count=1 -tags "$tags" ./providers/builtin || status=1
    done
    continue
  fi
  (cd "$dir" && { go mod tidy -diff >/dev/null || { echo "$dir: go.mod/go.sum out of date; run scripts/tidy.sh" >&2; exit 1; }; } && go vet ./... && go test -count=1 -timeout 45m ./...) || status=1
done
exit $status
