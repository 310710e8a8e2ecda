#!/usr/bin/env bash
# Precision of `inject lint` on real content: images built FROM scratch out of
# real Debian packages (downloaded with apt-get, unpacked with dpkg-deb, with
# dpkg's status and md5sums as dpkg would leave them) and two trees of the Go
# module cache (with their .ziphash). None holds a planted secret, so every
# finding is either a false alarm or something shipped on purpose (test keys,
# examples). Prints findings per image for inject lint (by class) and, when
# they are installed, trivy (secret scanner only, offline, on the same image
# archive) and gitleaks (on the unpacked tree); then the wall time of each on
# fs:/usr.
#
# trivy and gitleaks are found on PATH or in ~/.cache/secretbroker-bench/,
# where they can be built from the Go module proxy:
#   GOBIN=~/.cache/secretbroker-bench GOEXPERIMENT=jsonv2 \
#     go install github.com/aquasecurity/trivy/cmd/trivy@v0.74.0
#   GOBIN=~/.cache/secretbroker-bench go install github.com/zricethezav/gitleaks/v8@latest
#
# Needs apt-get (Debian, after `apt-get update`), dpkg-deb, docker, python3.
# The images are not kept (they are built in a temp dir; KEEP=1 keeps it).
#   WORK=dir   work directory (default: a temp dir)
#   DEBS=dir   where .deb files are cached between runs (default: WORK/debs)
#   ONLY="python node"  build and scan only these images
#   USR=0      skip the fs:/usr timing
#   TIMEOUT=s  per scanner and target (default 1200)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${WORK:-$(mktemp -d)}
debs=${DEBS:-$work/debs}
timeout=${TIMEOUT:-1200}
mkdir -p "$work" "$debs"
if [[ -z ${KEEP:-} && -z ${WORK:-} ]]; then trap 'rm -rf "$work"' EXIT; fi
for t in apt-get dpkg-deb docker python3; do
  command -v "$t" >/dev/null || { echo "lint-debian: needs $t" >&2; exit 1; }
done

images=(
  "base:base-files bash coreutils libgnutls30 ca-certificates"
  "python:python3 python3-pip python3-cryptography"
  "node:nodejs npm"
  "tomcat:openjdk-17-jre-headless tomcat10"
  "nginx:nginx openssl"
  "postgres:postgresql"
  "git:git openssh-client openssh-server gnupg"
  "golang:golang-go"
)
# Two module trees of this repository's own module graph.
modules=(golang.org/x/crypto github.com/google/go-containerregistry)

CGO_ENABLED=0 go build -trimpath -o "$work/inject" ./cmd/inject
tool() { command -v "$1" || { [[ -x $HOME/.cache/secretbroker-bench/$1 ]] && echo "$HOME/.cache/secretbroker-bench/$1"; } || true; }
trivy=$(tool trivy)
gitleaks=$(tool gitleaks)
# trivy offline, secret scanner only: no vulnerability or Java database, no
# version check; its cache stays in the work directory. Its own default
# timeout (5 min) ends a scan of /usr on a loaded machine early: ours bounds it.
trivy_flags=(-q --timeout "${timeout}s" --scanners secret --offline-scan --skip-db-update --skip-java-db-update --skip-version-check --cache-dir "$work/trivy-cache" --format json)

# closure PKG... prints the packages apt would install on an empty system
# (no Recommends), as name=version.
closure() {
  apt-get -s -o Dir::State::status=/dev/null -o APT::Install-Recommends=false install "$@" 2>/dev/null |
    sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) .*/\1=\2/p'
}

# rootfs DIR PKG=VER...: unpack each package and record it as dpkg does.
rootfs() {
  local root=$1
  shift
  mkdir -p "$root/var/lib/dpkg/info"
  : >"$root/var/lib/dpkg/status"
  local need=()
  for pv in "$@"; do
    local f
    f=$(compgen -G "$debs/${pv%%=*}_*.deb" | head -n 1 || true)
    [[ -n $f ]] || need+=("$pv")
  done
  if ((${#need[@]})); then (cd "$debs" && apt-get download -q "${need[@]}" >/dev/null 2>&1) || {
    echo "lint-debian: apt-get download failed for some of: ${need[*]}" >&2
    exit 1
  }; fi
  local ctl=$work/ctl
  for pv in "$@"; do
    local p=${pv%%=*} f
    f=$(compgen -G "$debs/${p}_*.deb" | head -n 1)
    dpkg-deb -x "$f" "$root"
    rm -rf "$ctl" && dpkg-deb -e "$f" "$ctl"
    [[ -f $ctl/md5sums ]] && cp "$ctl/md5sums" "$root/var/lib/dpkg/info/$p.md5sums"
    { dpkg-deb -f "$f" | sed '1a Status: install ok installed'; echo; } >>"$root/var/lib/dpkg/status"
  done
}

# modtree DIR MODULE: the module's tree and its cache/download entry, as
# `go mod download` leaves them.
modtree() {
  local root=$1 m=$2 v dir
  v=$(go list -m -f '{{.Version}}' "$m")
  dir=$(go env GOMODCACHE)
  go mod download "$m@$v"
  mkdir -p "$root/root/go/pkg/mod/$(dirname "$m")" "$root/root/go/pkg/mod/cache/download/$m/@v"
  cp -r "$dir/$m@$v" "$root/root/go/pkg/mod/$m@$v"
  cp "$dir/cache/download/$m/@v/$v".{ziphash,mod,info} "$root/root/go/pkg/mod/cache/download/$m/@v/" 2>/dev/null || true
}

# count FORMAT FILE: findings in a report ("-" when the tool failed).
count() {
  python3 - "$@" <<'EOF'
import json, sys
kind, path = sys.argv[1], sys.argv[2]
try:
    d = json.load(open(path))
except Exception:
    print("-"); sys.exit()
if kind == "lint":
    fs = d.get("findings") or []
    by = {}
    for f in fs:
        by[f["class"]] = by.get(f["class"], 0) + 1
    files = len({f["path"] for f in fs})
    print(f'{by.get("secret",0)}/{by.get("fixture",0)}/{by.get("shipped",0)} in {files} files')
elif kind == "trivy":
    rs = d.get("Results") or []
    n = sum(len(r.get("Secrets") or []) for r in rs)
    print(f'{n} in {sum(1 for r in rs if r.get("Secrets"))} files')
else:
    print(f'{len(d)} in {len({x["File"] for x in d})} files')
EOF
}

run_lint() { # TARGET OUT: prints "exit CODE"
  set +e
  timeout "$timeout" "$work/inject" lint --quiet --format json -o "$2" "$1" 2>"$2.err"
  echo $?
  set -e
}

printf '%-12s %6s %8s  %-32s %-16s %-16s\n' image pkgs size 'lint secret/fixture/shipped' trivy gitleaks
names=()
for spec in "${images[@]}"; do names+=("${spec%%:*}"); done
for m in "${modules[@]}"; do names+=("gomod:$m"); done
for name in "${names[@]}"; do
  short=${name#gomod:}
  short=${short##*/}
  [[ $name == gomod:* ]] && short=gomod-$short
  if [[ -n ${ONLY:-} && " $ONLY " != *" $short "* ]]; then continue; fi
  root=$work/root-$short
  rm -rf "$root"
  if [[ $name == gomod:* ]]; then
    modtree "$root" "${name#gomod:}"
    npkg=-
  else
    for spec in "${images[@]}"; do [[ ${spec%%:*} == "$name" ]] && pkgs=${spec#*:}; done
    mapfile -t pv < <(closure $pkgs)
    rootfs "$root" "${pv[@]}"
    npkg=${#pv[@]}
  fi
  tar -C "$root" -c . | docker import - "lint-debian-$short:bench" >/dev/null
  docker save -o "$work/$short.tar" "lint-debian-$short:bench"
  docker rmi -f "lint-debian-$short:bench" >/dev/null
  size=$(du -sh "$root" | cut -f1)
  code=$(run_lint "docker-archive:$work/$short.tar" "$work/$short.lint.json")
  l="$(count lint "$work/$short.lint.json") (exit $code)"
  t=n/a g=n/a
  [[ -n $trivy ]] || trivy=$(tool trivy) # it may have finished building meanwhile
  if [[ -n $trivy ]]; then
    timeout "$timeout" "$trivy" image "${trivy_flags[@]}" -o "$work/$short.trivy.json" --input "$work/$short.tar" 2>"$work/$short.trivy.err" || true
    t=$(count trivy "$work/$short.trivy.json")
  fi
  if [[ -n $gitleaks ]]; then
    timeout "$timeout" "$gitleaks" dir --no-banner --exit-code 0 --report-format json --report-path "$work/$short.gitleaks.json" "$root" >/dev/null 2>&1 || true
    g=$(count gitleaks "$work/$short.gitleaks.json")
  fi
  printf '%-12s %6s %8s  %-32s %-16s %-16s\n' "$short" "$npkg" "$size" "$l" "$t" "$g"
  rm -rf "$root" "$work/$short.tar"
done
echo "lint: class secret fails the build by default; fixture and shipped are listed (JSON in $work when KEEP=1)"

if [[ ${USR:-1} != 0 ]]; then
  [[ -n $trivy ]] || trivy=$(tool trivy)
  echo
  echo "fs:/usr ($(du -sh /usr 2>/dev/null | cut -f1)), wall time; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  s=$(date +%s.%N)
  code=$(run_lint fs:/usr "$work/usr.lint.json")
  printf '  inject lint: %6.1fs  %s (exit %s)\n' "$(echo "$(date +%s.%N) - $s" | bc)" "$(count lint "$work/usr.lint.json")" "$code"
  if [[ -n $trivy ]]; then
    s=$(date +%s.%N)
    timeout "$timeout" "$trivy" fs "${trivy_flags[@]}" -o "$work/usr.trivy.json" /usr 2>"$work/usr.trivy.err" || true
    printf '  trivy:       %6.1fs  %s\n' "$(echo "$(date +%s.%N) - $s" | bc)" "$(count trivy "$work/usr.trivy.json")"
  fi
  if [[ -n $gitleaks ]]; then
    s=$(date +%s.%N)
    timeout "$timeout" "$gitleaks" dir --no-banner --exit-code 0 --report-format json --report-path "$work/usr.gitleaks.json" /usr >/dev/null 2>&1 || true
    printf '  gitleaks:    %6.1fs  %s\n' "$(echo "$(date +%s.%N) - $s" | bc)" "$(count gitleaks "$work/usr.gitleaks.json")"
  fi
fi
