#!/usr/bin/env bash
# deploy/docker/images.sh — build every service image with podman from deploy/docker/Dockerfile,
# then run each against the local stack until its /readyz answers 200 (`make images`).
#
#   deploy/docker/images.sh [SERVICE...]     default: all six
#
# Works on machines with no Docker engine and no registry to pull from (see shared INFRA.md):
#   - podman and runc come from apt when missing;
#   - podman runs containers through a runtime wrapper that drops process.rlimits from the
#     bundle (the sandbox forbids setrlimit in a container's init), written to
#     $FLYWHEEL_DIR/podman/runc-no-rlimits;
#   - the builder image is imported from the local Go toolchain (localhost/go-builder:<go version>)
#     and passed as GO_IMAGE, since golang:1.26 cannot be pulled;
#   - containers run with --network host against the stack's loopback ports.
#
# Configuration (environment):
#   FLYWHEEL_STACK_DIR and FLYWHEEL_STACK_*_PORT   which local stack (deploy/local/stack; default:
#                                                  the dev stack in .flywheel/stack on the dev ports)
#   FLYWHEEL_IMAGES_PORT_BASE [38080]   the containers listen on base+1 … base+6 (serving's gRPC on
#                                       base+14), so they never clash with `make up` on 8081-8086
#   FLYWHEEL_IMAGES_TAG [dev]           images are localhost/flywheel/<service>:<tag>
#   FLYWHEEL_IMAGES_READY_TIMEOUT [180] seconds each container has to answer /readyz 200
#   FLYWHEEL_IMAGES_SKIP_BUILD [0]      1: run the images already built
#
# The stack is left as found: started (and stopped at the end) only if none of it was running.
# Containers are named flywheel-images-<service>-<pid> and removed on exit, whatever happens.
set -euo pipefail

PROG="images"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd -P)"
STACK="$REPO_ROOT/deploy/local/stack"
DIR="${FLYWHEEL_DIR:-$REPO_ROOT/.flywheel}"
WORK="$DIR/podman"
WRAPPER="$WORK/runc-no-rlimits"

PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then PATH="$PATH:/usr/local/go/bin"; fi
export PATH

ALL=(registry ingest features serving monitor trainer)
declare -A PORT=([ingest]=8081 [features]=8082 [registry]=8083 [serving]=8084 [monitor]=8085 [trainer]=8086)
PORT_BASE="${FLYWHEEL_IMAGES_PORT_BASE:-38080}"
TAG="${FLYWHEEL_IMAGES_TAG:-dev}"
READY_TIMEOUT="${FLYWHEEL_IMAGES_READY_TIMEOUT:-180}"
SKIP_BUILD="${FLYWHEEL_IMAGES_SKIP_BUILD:-0}"
RUN_ID="$$"

say() { echo "$PROG: $*"; }
die() { echo "$PROG: error: $*" >&2; exit 1; }

case "$PORT_BASE" in ''|*[!0-9]*) die "FLYWHEEL_IMAGES_PORT_BASE='$PORT_BASE' is not a number" ;; esac
case "$READY_TIMEOUT" in ''|*[!0-9]*|0) die "FLYWHEEL_IMAGES_READY_TIMEOUT='$READY_TIMEOUT' must be a positive number of seconds" ;; esac

SERVICES=()
if [ $# -eq 0 ]; then SERVICES=("${ALL[@]}"); else
  for s in "$@"; do
    [ -n "${PORT[$s]:-}" ] || die "unknown service '$s' (one of: ${ALL[*]})"
    SERVICES+=("$s")
  done
fi

image_of() { echo "localhost/flywheel/$1:$TAG"; }
host_port() { echo $((PORT_BASE + ${PORT[$1]} - 8080)); }
grpc_port() { echo $((PORT_BASE + 14)); }

# ------------------------------------------------------------------ podman, runc, the wrapper
install_podman() { # podman, runc, and python3-yaml for deploy/compose/check.py
  local missing=()
  command -v podman >/dev/null 2>&1 || missing+=(podman)
  [ -x /usr/sbin/runc ] || missing+=(runc)
  /usr/bin/python3 -c 'import yaml' 2>/dev/null || missing+=(python3-yaml)
  [ ${#missing[@]} -gt 0 ] || return 0
  command -v apt-get >/dev/null 2>&1 || die "${missing[*]} missing and there is no apt-get: install them"
  local sudo; sudo="$(command -v sudo || true)"
  say "installing ${missing[*]} with apt-get"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The sandbox forbids setrlimit in a container's init, which runc does for every rlimit the
# OCI config lists. The wrapper deletes process.rlimits from the bundle's config.json before
# `create`/`run`, then execs the real runc with the same arguments.
write_wrapper() {
  mkdir -p "$WORK"
  cat >"$WRAPPER.tmp" <<'EOF'
#!/bin/sh
# podman --runtime wrapper written by deploy/docker/images.sh: drops process.rlimits from the
# OCI bundle (the sandbox forbids setrlimit in a container's init), then runs the real runc.
bundle=.
cmd=
prev=
for a in "$@"; do
  case "$prev" in --bundle|-b) bundle="$a" ;; esac
  case "$a" in
    --bundle=*) bundle="${a#--bundle=}" ;;
    create|run) [ -z "$cmd" ] && cmd="$a" ;;
  esac
  prev="$a"
done
if [ -n "$cmd" ] && [ -f "$bundle/config.json" ]; then
  py=/usr/bin/python3; [ -x "$py" ] || py=python3
  "$py" - "$bundle/config.json" <<'PY' || exit 1
import json, os, sys
path = sys.argv[1]
with open(path) as f:
    spec = json.load(f)
if spec.get("process", {}).pop("rlimits", None) is not None:
    with open(path + ".tmp", "w") as f:
        json.dump(spec, f)
    os.replace(path + ".tmp", path)
PY
fi
exec /usr/sbin/runc "$@"
EOF
  chmod +x "$WRAPPER.tmp"
  mv "$WRAPPER.tmp" "$WRAPPER"
}

# ------------------------------------------------------------------ the builder image
GO_VERSION=""
BUILDER=""
import_builder() {
  command -v go >/dev/null 2>&1 || die "no go on PATH or in /usr/local/go/bin: the builder image is made from the local toolchain"
  local goroot; goroot="$(go env GOROOT)"
  [ "$goroot" = /usr/local/go ] || die "the builder image is imported from /usr/local/go, but go runs from $goroot"
  GO_VERSION="$(go env GOVERSION)"
  BUILDER="localhost/go-builder:$GO_VERSION"
  if podman image exists "$BUILDER"; then say "builder image $BUILDER present"; return; fi
  say "importing $BUILDER from /usr/local/go and /etc/ssl/certs"
  local t0=$SECONDS
  tar -C / -cf - usr/local/go etc/ssl/certs |
    podman import --change 'ENV PATH=/usr/local/go/bin:/usr/bin:/bin' \
      --change 'ENV GOROOT=/usr/local/go' --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
      - "$BUILDER" >/dev/null
  podman tag "$BUILDER" localhost/go-builder:latest
  say "imported $BUILDER in $((SECONDS - t0)) s"
}

# ------------------------------------------------------------------ checks before building
# The image workspace (deploy/docker/go.work) must hold every service module and every local
# module they replace, and give the services the dependency versions the repository's go.work
# gives them (what `make build` and the tests use).
check_workspace() {
  local tmp mods m s
  tmp="$(mktemp -d)"
  mods=$(sed -n 's/^\t\.\/\(.*\)$/\1/p' "$SCRIPT_DIR/go.work")
  for s in "${ALL[@]}"; do
    grep -qx "services/$s" <<<"$mods" || die "deploy/docker/go.work does not use ./services/$s"
    for m in $(sed -n 's|^\t*github.com/flywheel-ml/flywheel/[^ ]* => \(\.\./.*\)$|\1|p' "$REPO_ROOT/services/$s/go.mod"); do
      m="$(cd "$REPO_ROOT/services/$s/$m" && pwd -P)"; m="${m#"$REPO_ROOT"/}"
      grep -qx "$m" <<<"$mods" || die "services/$s needs ./$m, which deploy/docker/go.work does not use"
    done
  done
  for m in $mods; do
    grep -q "^COPY $m/go.mod " "$SCRIPT_DIR/Dockerfile" || die "deploy/docker/Dockerfile does not copy $m/go.mod before 'go mod download'"
    mkdir -p "$tmp/$(dirname "$m")"; ln -s "$REPO_ROOT/$m" "$tmp/$m"
  done
  cp "$SCRIPT_DIR/go.work" "$tmp/go.work"; cp "$REPO_ROOT/go.work.sum" "$tmp/go.work.sum"
  for s in "${SERVICES[@]}"; do
    local f='{{with .Module}}{{.Path}} {{.Version}}{{end}}'
    if ! diff <(cd "$REPO_ROOT" && go list -deps -f "$f" "./services/$s/cmd/$s" | sort -u) \
              <(cd "$tmp" && go list -deps -f "$f" "./services/$s/cmd/$s" | sort -u) >"$tmp/diff"; then
      cat "$tmp/diff" >&2
      rm -rf "$tmp"
      die "$s: the image workspace resolves other dependency versions than go.work (< go.work, > deploy/docker/go.work)"
    fi
  done
  rm -rf "$tmp"
  say "image workspace: same dependency versions as go.work for ${SERVICES[*]}"
  # The healthcheck module is in the image workspace only (not in go.work): test it here.
  (cd "$SCRIPT_DIR/healthcheck" && GOWORK=off go vet . && GOWORK=off go test -count=1 .) || die "the healthcheck probe's tests failed"
}

# ------------------------------------------------------------------ build
declare -A BUILD_SECS SIZE
build_images() {
  local s t0
  for s in "${SERVICES[@]}"; do
    say "building $(image_of "$s")"
    t0=$SECONDS
    if ! podman --runtime "$WRAPPER" build --network host --layers \
        -f "$SCRIPT_DIR/Dockerfile" --build-arg "GO_IMAGE=$BUILDER" --build-arg "SERVICE=$s" \
        -t "$(image_of "$s")" "$REPO_ROOT" >"$WORK/build-$s.log" 2>&1; then
      tail -n 40 "$WORK/build-$s.log" >&2
      die "building $s failed (full log: $WORK/build-$s.log)"
    fi
    BUILD_SECS[$s]=$((SECONDS - t0))
    say "built $(image_of "$s") in ${BUILD_SECS[$s]} s"
  done
}

# ------------------------------------------------------------------ the stack
STACK_STARTED=0
stack_up() {
  local out
  out="$("$STACK" status 2>&1 || true)"
  if ! grep -q ' running ' <<<"$out"; then STACK_STARTED=1; fi
  "$STACK" up
  STACK_DIR="${FLYWHEEL_STACK_DIR:-$REPO_ROOT/.flywheel/stack}"
  case "$STACK_DIR" in /*) ;; *) STACK_DIR="$PWD/$STACK_DIR" ;; esac
  STACK_ENV="${STACK_DIR%/}/env"
  [ -f "$STACK_ENV" ] || die "the stack wrote no $STACK_ENV"
}

# ------------------------------------------------------------------ run until ready
http_status() { # port path -> status code, 000 when nothing answers
  local code
  { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || { echo 000; return; }
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
  code=$(timeout 5 head -n1 <&3 | awk '{print $2}')
  exec 3<&- 3>&-
  echo "${code:-000}"
}

port_free() { ! { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null; }

CONTAINERS=()
cleanup() {
  local rc=$? c
  for c in "${CONTAINERS[@]}"; do
    podman --runtime "$WRAPPER" stop -t 15 "$c" >/dev/null 2>&1 || true
    podman rm -f "$c" >/dev/null 2>&1 || true
  done
  if [ "$STACK_STARTED" = 1 ]; then say "stopping the stack this run started"; "$STACK" down >/dev/null || true; fi
  exit $rc
}

declare -A STARTED_AT READY_SECS
start_container() { # service
  local s="$1" name="flywheel-images-$1-$RUN_ID" port env=()
  port="$(host_port "$s")"
  port_free "$port" || die "port $port (for $s) is taken; set FLYWHEEL_IMAGES_PORT_BASE"
  local upper="${s^^}"
  env+=(-e "FLYWHEEL_${upper}_ADDR=127.0.0.1:$port")
  case "$s" in
    serving)
      port_free "$(grpc_port)" || die "port $(grpc_port) (serving gRPC) is taken; set FLYWHEEL_IMAGES_PORT_BASE"
      env+=(-e "FLYWHEEL_SERVING_GRPC_ADDR=127.0.0.1:$(grpc_port)" -e "FLYWHEEL_SERVING_REGISTRY_URL=http://127.0.0.1:$(host_port registry)") ;;
    monitor) env+=(-e "FLYWHEEL_MONITOR_REGISTRY_URL=http://127.0.0.1:$(host_port registry)") ;;
    trainer) env+=(-e "FLYWHEEL_TRAINER_REGISTRY_URL=http://127.0.0.1:$(host_port registry)") ;;
  esac
  CONTAINERS+=("$name")
  STARTED_AT[$s]=$(date +%s.%N)
  podman --runtime "$WRAPPER" run -d --name "$name" --network host --env-file "$STACK_ENV" "${env[@]}" \
    "$(image_of "$s")" >/dev/null || die "podman run $s failed"
  say "started $name on 127.0.0.1:$port"
}

wait_ready() { # service
  local s="$1" name="flywheel-images-$1-$RUN_ID" port deadline state code
  port="$(host_port "$s")"
  deadline=$((SECONDS + READY_TIMEOUT))
  while :; do
    code="$(http_status "$port" /readyz)"
    if [ "$code" = 200 ]; then break; fi
    state="$(podman inspect -f '{{.State.Status}}' "$name" 2>/dev/null || echo missing)"
    if [ "$state" != running ]; then
      podman logs --tail 40 "$name" >&2 || true
      die "$s: the container is $state before /readyz answered 200 (log above)"
    fi
    if [ $SECONDS -ge $deadline ]; then
      podman logs --tail 40 "$name" >&2 || true
      echo "last /readyz ($code): $(curl -s -m 2 "http://127.0.0.1:$port/readyz" 2>/dev/null | head -c 400)" >&2
      die "$s: /readyz on 127.0.0.1:$port did not answer 200 within ${READY_TIMEOUT} s (log above)"
    fi
    sleep 0.2
  done
  READY_SECS[$s]=$(awk -v a="${STARTED_AT[$s]}" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  say "$s ready in ${READY_SECS[$s]} s"
}

# ------------------------------------------------------------------ main
install_podman
write_wrapper
import_builder
check_workspace
if [ "$SKIP_BUILD" != 1 ]; then build_images; fi
for s in "${SERVICES[@]}"; do
  podman image exists "$(image_of "$s")" || die "$(image_of "$s") is not built"
  SIZE[$s]="$(podman image inspect -f '{{.Size}}' "$(image_of "$s")")"
done

# The compose file against what the built images read (their -h lists every variable).
if [ ${#SERVICES[@]} -eq ${#ALL[@]} ]; then
  "$REPO_ROOT/deploy/compose/check.py" --help-cmd "podman --runtime $WRAPPER run --rm --network none localhost/flywheel/{service}:$TAG -h"
fi

trap cleanup EXIT
trap 'exit 130' INT TERM
stack_up
# The registry first: serving, monitor and trainer read it during start-up.
order=()
for s in "${SERVICES[@]}"; do [ "$s" = registry ] && order+=(registry); done
for s in "${SERVICES[@]}"; do [ "$s" != registry ] && order+=("$s"); done
if [ "${order[0]}" = registry ]; then start_container registry; wait_ready registry; order=("${order[@]:1}"); fi
if [ ${#order[@]} -gt 0 ]; then
  if [ -z "${READY_SECS[registry]:-}" ]; then
    say "note: no registry container in this run; serving, monitor and trainer look for one on 127.0.0.1:$(host_port registry)"
  fi
  for s in "${order[@]}"; do start_container "$s"; done
  for s in "${order[@]}"; do wait_ready "$s"; done
fi

echo
printf '%-10s %-34s %10s %8s %8s\n' SERVICE IMAGE SIZE BUILD READY
for s in "${SERVICES[@]}"; do
  b="${BUILD_SECS[$s]:-}"
  printf '%-10s %-34s %8.1fMB %8s %7ss\n' "$s" "$(image_of "$s")" "$(awk -v b="${SIZE[$s]}" 'BEGIN { print b / 1e6 }')" \
    "${b:+${b}s}${b:-skipped}" "${READY_SECS[$s]}"
done
say "every image built and reached ready; stopping the containers"
