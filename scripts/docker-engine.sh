#!/usr/bin/env bash
# A Docker engine of the test's own, for CI machines without one (no systemd):
# dockerd with its own data root, exec root, socket and pidfile, so it never
# meets another engine on the machine; and the compose v2 plugin when the
# machine has none.
#
#   scripts/docker-engine.sh install   # docker.io, debootstrap, socat (apt); compose v2 (Go module proxy)
#   eval "$(scripts/docker-engine.sh start)"   # starts dockerd, prints `export DOCKER_HOST=…`
#   scripts/docker-engine.sh stop      # stops that dockerd by its pid
set -euo pipefail

STATE=${PODFLOW_DOCKER_STATE:-/var/lib/podflow-compose-test}
RUN=${PODFLOW_DOCKER_RUN:-/run/podflow-compose-test}
COMPOSE_VERSION=${COMPOSE_VERSION:-v2.35.1}
PLUGIN_DIR=${DOCKER_PLUGIN_DIR:-/usr/local/lib/docker/cli-plugins}
GO=${GO:-go}

install() {
  local need=()
  command -v dockerd >/dev/null || need+=(docker.io)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  command -v socat >/dev/null || need+=(socat)
  command -v jq >/dev/null || need+=(jq)
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  if ! docker compose version >/dev/null 2>&1; then
    # go install refuses compose (exclude lines in its go.mod): build inside
    # the module's source, as its Makefile does.
    local work src
    work=$(mktemp -d)
    src=$(cd "$work" && GOFLAGS=-mod=mod $GO mod download -json "github.com/docker/compose/v2@$COMPOSE_VERSION" \
      | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
    cp -r "$src" "$work/src"; chmod -R u+w "$work/src"
    mkdir -p "$PLUGIN_DIR"
    (cd "$work/src" && CGO_ENABLED=0 $GO build -trimpath \
      -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" \
      -o "$PLUGIN_DIR/docker-compose" ./cmd)
    rm -rf "$work"
    echo "installed compose $COMPOSE_VERSION as $PLUGIN_DIR/docker-compose" >&2
  fi
}

start() {
  mkdir -p "$STATE" "$RUN"
  local sock=$RUN/docker.sock
  if [ -f "$RUN/docker.pid" ] && kill -0 "$(cat "$RUN/docker.pid")" 2>/dev/null; then
    echo "export DOCKER_HOST=unix://$sock"; return
  fi
  dockerd --storage-driver=overlay2 --data-root "$STATE/docker" --exec-root "$RUN/exec" \
    -H "unix://$sock" --pidfile "$RUN/docker.pid" >"$RUN/dockerd.log" 2>&1 &
  local i
  for i in $(seq 60); do
    DOCKER_HOST=unix://$sock docker version >/dev/null 2>&1 && break
    sleep 0.5
  done
  DOCKER_HOST=unix://$sock docker version >/dev/null 2>&1 || { tail -20 "$RUN/dockerd.log" >&2; exit 1; }
  echo "export DOCKER_HOST=unix://$sock"
}

stop() {
  [ -f "$RUN/docker.pid" ] || return 0
  local pid; pid=$(cat "$RUN/docker.pid")
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
  echo "dockerd $pid did not stop in 30 s" >&2; return 1
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
