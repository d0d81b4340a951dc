#!/usr/bin/env bash
# The docker-compose stack, run for real on a Docker engine, checked as a user
# would (README: "Run with docker compose"): the image builds from the
# Dockerfile, the services turn healthy, the examples are listed and run,
# two schedulers and two triggerers run a 50-task DAG exactly once, a
# PostgreSQL restart mid-run does not lose the run, pod tasks reach a
# Kubernetes cluster through the kubeconfig mount, and `down -v` leaves
# nothing behind.
#
#   make test-compose                      # or scripts/compose-test.sh
#
# Needs: a Docker engine (DOCKER_HOST or the default socket), the compose v2
# plugin (`docker compose`), socat, curl, jq; debootstrap and Go 1.26 when the
# base images must be made here (scripts/docker-standins.sh); bin/localcluster
# and bin/kubectl (make localcluster) for the pod tasks.
#
# COMPOSE_SERVICES: the services brought up and checked. The default is every
# service of the default profile; `COMPOSE_SERVICES="postgres migrate scheduler
# triggerer"` leaves out the webserver. PODFLOW_COMPOSE_KUBE=0 leaves out the
# pod tasks (and the local cluster); LOCALCLUSTER and KUBECTL name the binaries.
COMPOSE_SERVICES=${COMPOSE_SERVICES:-"postgres migrate scheduler triggerer webserver"}
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# A project name of its own, so a user's `podflow` project is never touched.
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-podflowtest$$}
P=$COMPOSE_PROJECT_NAME
# An image tag of its own too (removed at the end; the build cache stays), so
# a user's podflow:local is never replaced.
export PODFLOW_IMAGE=${PODFLOW_IMAGE:-podflow:compose-test-$P}
LOCALCLUSTER=${LOCALCLUSTER:-$ROOT/bin/localcluster}
KUBECTL=${KUBECTL:-$ROOT/bin/kubectl}
WORK=$(mktemp -d /tmp/podflow-compose-test.XXXXXX)
START=$SECONDS
pids=()

log() { printf '%s [%4ds] %s\n' "compose-test" "$((SECONDS - START))" "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }
has() { [[ " $COMPOSE_SERVICES " == *" $1 "* ]]; }
dc() { docker compose "$@"; }
# dcq ARGS: docker compose ARGS, its progress output shown only on failure.
dcq() { docker compose "$@" >"$WORK/compose.log" 2>&1 || { tail -60 "$WORK/compose.log" >&2; fail "docker compose $*"; }; }
# exec in the first container of a service, without a TTY.
dx() { local s=$1; shift; docker compose exec -T "$s" "$@"; }

cleanup() {
  local rc=$?
  if [ $rc -ne 0 ]; then
    log "failed; the stack's state and last logs follow"
    dc ps -a >&2 || true
    dc logs --no-color --tail 40 >&2 || true
  fi
  dc down -v --remove-orphans >/dev/null 2>&1 || true
  env -u PODFLOW_KUBECONFIG_DIR docker compose down -v --remove-orphans >/dev/null 2>&1 || true
  docker image rm "$PODFLOW_IMAGE" >/dev/null 2>&1 || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT

command -v docker >/dev/null || fail "docker (the CLI) is missing"
docker info >/dev/null 2>&1 || fail "no Docker engine at ${DOCKER_HOST:-the default socket}"
docker compose version >/dev/null 2>&1 || fail "the compose v2 plugin (docker compose) is missing"
for c in socat curl jq; do command -v $c >/dev/null || fail "$c is missing"; done
log "engine $(docker version -f '{{.Server.Version}}'), $(docker compose version --short | sed 's/^/compose /'), project $P, services: $COMPOSE_SERVICES"

# --- images -----------------------------------------------------------------
t=$SECONDS
scripts/docker-standins.sh base
POSTGRES_IMAGE=$(scripts/docker-standins.sh postgres)
export POSTGRES_IMAGE
log "base images ready ($((SECONDS - t)) s); PostgreSQL image $POSTGRES_IMAGE"

# The DAGs folder: the examples plus the test's own DAG, readable by the
# image's user (10001).
export PODFLOW_DAGS_DIR=$WORK/dags
mkdir -p "$PODFLOW_DAGS_DIR"
cp examples/dags/*.yaml "$PODFLOW_DAGS_DIR/"
chmod 755 "$WORK" "$PODFLOW_DAGS_DIR"; chmod 644 "$PODFLOW_DAGS_DIR"/*
PODFLOW_WEBSERVER_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
  || echo $((20000 + RANDOM % 20000)))
export PODFLOW_WEBSERVER_PORT
export PODFLOW_COMMIT; PODFLOW_COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown)

# --- up, healthy ----------------------------------------------------------------
# The image is built by up --build, as a user's first start builds it.
t=$SECONDS
# shellcheck disable=SC2086
dcq up -d --build --wait $COMPOSE_SERVICES
up_s=$((SECONDS - t))
image=$PODFLOW_IMAGE
size_mb=$(( $(docker image inspect -f '{{.Size}}' "$image") / 1000000 ))
# Time to healthy: from the first container's start to the last first passing
# healthcheck (the engine's health log keeps the last five).
healthy_s=$(for id in $(dc ps -q); do docker inspect "$id"; done | jq -s '
  def t: sub("\\.[0-9]+"; "") | sub("(Z|[+-][0-9:]+)$"; "Z") | fromdate;
  [.[][] | {start: (.State.StartedAt | t),
            ok: ([.State.Health.Log[]? | select(.ExitCode == 0) | .End | t] | min)}]
  | ([.[].ok | select(. != null)] | max) - ([.[].start] | min)')
log "up -d --build --wait: ${up_s} s (image build included); image $image ${size_mb} MB; healthy ${healthy_s} s after the first container started"

# --- image hygiene ----------------------------------------------------------
# The issue's goal is 120 MB; three ~66 MB Go binaries on debian-slim make
# ~293 MB today (README). The ceiling catches growth beyond that.
[ "$size_mb" -le "${PODFLOW_IMAGE_MAX_MB:-320}" ] || fail "image $image is ${size_mb} MB, over ${PODFLOW_IMAGE_MAX_MB:-320} MB"
user=$(docker image inspect -f '{{.Config.User}}' "$image")
[ "$user" = "10001:10001" ] || fail "image user is '$user', want 10001:10001"
ver=$(docker run --rm "$image" podflow --version)
[[ "$ver" == *"commit ${PODFLOW_COMMIT:0:12}"* ]] || fail "podflow --version says '$ver', not commit $PODFLOW_COMMIT"
tools=$(docker run --rm "$image" bash -c 'for t in go gcc cc make git apt-get dpkg-deb; do command -v $t; done; true' | grep -v -E 'apt-get|dpkg-deb' || true)
[ -z "$tools" ] || fail "build tools in the final image: $tools"
log "image: user 10001, '$ver', no go/gcc/make/git"


# healthy SERVICE [N]: N containers of SERVICE running and healthy.
healthy() {
  local s=$1 n=${2:-1} ids ok=0 id
  ids=$(dc ps -q "$s")
  for id in $ids; do
    [ "$(docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id")" = "running healthy" ] && ok=$((ok + 1))
  done
  [ "$ok" -eq "$n" ] || fail "$s: $ok of $n containers running and healthy"
}
for s in scheduler triggerer webserver; do has $s && healthy $s; done
has postgres && healthy postgres
[ "$(docker inspect -f '{{.State.ExitCode}}' "$(dc ps -a -q migrate)")" = 0 ] || fail "migrate did not exit 0"
[ "$(dx scheduler id -u)" = 10001 ] || fail "the scheduler does not run as 10001"

# --- the examples -------------------------------------------------------------
dx scheduler podflow dags list >"$WORK/dags.txt"
for f in examples/dags/*.yaml; do
  id=$(sed -n 's/^dag_id: *//p' "$f")
  grep -qw -- "$id" "$WORK/dags.txt" || { cat "$WORK/dags.txt" >&2; fail "dags list lacks $id"; }
done
log "dags list shows the $(ls examples/dags/*.yaml | wc -l) examples"
dx scheduler podflow trigger etl_xcom --wait >"$WORK/etl.txt" 2>&1 || { cat "$WORK/etl.txt" >&2; fail "trigger etl_xcom --wait"; }
grep -q "success" "$WORK/etl.txt" || { cat "$WORK/etl.txt" >&2; fail "etl_xcom did not succeed"; }
log "trigger etl_xcom --wait: $(tail -1 "$WORK/etl.txt")"

# --- the webserver, as a user reaches it ----------------------------------------
if has webserver; then
  api=http://127.0.0.1:$PODFLOW_WEBSERVER_PORT/api/v1
  curl -fsS "$api/version" >"$WORK/version.json" || fail "GET $api/version"
  pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  printf '%s\n' "$pw" | dx webserver podflow users create admin --role admin --password-stdin >/dev/null \
    || fail "podflow users create admin"
  token=$(curl -fsS -H 'Content-Type: application/json' \
    -d "$(jq -n --arg p "$pw" '{username: "admin", password: $p}')" "$api/auth/token" | jq -r .access_token)
  [ -n "$token" ] && [ "$token" != null ] || fail "POST $api/auth/token gave no access_token"
  curl -fsS -H "Authorization: Bearer $token" "$api/dags?limit=100" >"$WORK/api-dags.json" || fail "GET $api/dags"
  for f in examples/dags/*.yaml; do
    id=$(sed -n 's/^dag_id: *//p' "$f")
    grep -q "\"$id\"" "$WORK/api-dags.json" || fail "GET /api/v1/dags lacks $id"
  done
  log "webserver: /api/v1/version $(jq -c . "$WORK/version.json"), a token for admin, /api/v1/dags lists the examples"
fi

# --- side effects, counted on the host -------------------------------------------
# Tasks write one line per try to a TCP listener on the host side of the
# project's network; socat appends each connection to a file.
gw=$(docker network inspect -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}' "${P}_default")
[ -n "$gw" ] || fail "no gateway on network ${P}_default"
hits=$WORK/hits.txt; : >"$hits"
hits_port=$((40000 + RANDOM % 10000))
# backlog: 50 tasks connect at once; socat's default accept queue of 5
# overflows under load and the kernel may drop a connection the task saw
# succeed (one side effect of 50 went missing so on a loaded machine).
socat -u "TCP-LISTEN:$hits_port,bind=$gw,reuseaddr,fork,backlog=512" "OPEN:$hits,creat,append" &
pids+=($!)

# settle_hits RUN N: a task's line reaches the file a moment after its
# connection closed (socat forks, then appends), so wait until N distinct
# tasks of RUN are in (at most 30 s), then a second more for late extras.
settle_hits() {
  local i
  for i in $(seq 60); do
    [ "$(grep "^$1 " "$hits" | awk '{print $2}' | sort -u | wc -l)" -ge "$2" ] && break
    sleep 0.5
  done
  sleep 1
}

cat >"$PODFLOW_DAGS_DIR/compose_fanout.yaml" <<EOF
# 50 independent tasks; each try reports "run task try host" to the test.
dag_id: compose_fanout
schedule: null
start_date: 2026-01-01
catchup: false
max_active_tasks: 50
default_args:
  retries: 3
  retry_delay: 1s
tasks:
$(for i in $(seq -w 1 50); do cat <<T
  - task_id: t$i
    operator: bash
    bash_command: 'sleep {{ dag_run.conf.get("sleep", 1) }}; echo "{{ run_id }} {{ ti.task_id }} {{ ti.try_number }} \$HOSTNAME" >/dev/tcp/$gw/$hits_port'
T
done)
EOF
chmod 644 "$PODFLOW_DAGS_DIR/compose_fanout.yaml"

# --- two schedulers, two triggerers: 50 tasks exactly once ---------------------------
t=$SECONDS
# shellcheck disable=SC2086
dcq up -d --wait --scale scheduler=2 --scale triggerer=2 $COMPOSE_SERVICES
healthy scheduler 2; healthy triggerer 2
log "scaled to 2 schedulers and 2 triggerers, healthy in $((SECONDS - t)) s"
for i in $(seq 60); do dx scheduler podflow dags list | grep -qw compose_fanout && break; sleep 1; done
dx scheduler podflow trigger compose_fanout --conf '{"sleep": 1}' --wait >"$WORK/fanout.txt" 2>&1 \
  || { cat "$WORK/fanout.txt" >&2; fail "compose_fanout run 1"; }
run1=$(sed -n 's/^triggered compose_fanout run //p' "$WORK/fanout.txt")
settle_hits "$run1" 50
n=$(grep -c "^$run1 " "$hits" || true)
tasks=$(grep "^$run1 " "$hits" | awk '{print $2}' | sort -u | wc -l)
hosts=$(grep "^$run1 " "$hits" | awk '{print $4}' | sort -u | wc -l)
[ "$n" -eq 50 ] && [ "$tasks" -eq 50 ] || { grep "^$run1 " "$hits" | sort >&2; fail "run $run1: $n side effects of $tasks distinct tasks, want 50 of 50"; }
log "run $run1: 50 tasks, 50 side effects, exactly once, spread over $hosts scheduler container(s)"

# --- PostgreSQL restarted mid-run ------------------------------------------------------
dx scheduler podflow trigger compose_fanout --conf '{"sleep": 3}' >"$WORK/restart.txt"
run2=$(sed -n 's/^triggered compose_fanout run //p' "$WORK/restart.txt")
for i in $(seq 120); do [ "$(grep -c "^$run2 " "$hits" || true)" -ge 5 ] && break; sleep 0.5; done
done_before=$(grep -c "^$run2 " "$hits" || true)
[ "$done_before" -lt 50 ] || fail "run $run2 finished before the restart"
t=$SECONDS
dcq restart postgres
log "restarted postgres with $done_before of 50 tasks done ($((SECONDS - t)) s)"
state=
for i in $(seq 300); do
  state=$(dx scheduler podflow runs list compose_fanout -o json 2>/dev/null | jq -r --arg r "$run2" '.[] | select(.dag_run_id == $r) | .state' || true)
  case "$state" in success|failed) break ;; esac
  sleep 1
done
[ "$state" = success ] || fail "run $run2 after the restart: '$state'"
settle_hits "$run2" 50
tasks=$(grep "^$run2 " "$hits" | awk '{print $2}' | sort -u | wc -l)
n=$(grep -c "^$run2 " "$hits" || true)
[ "$tasks" -eq 50 ] || fail "run $run2: side effects of $tasks tasks, want 50"
log "run $run2 finished ($state) after the restart: 50 tasks, $n side effects ($((n - 50)) repeated by retries)"
healthy scheduler 2; healthy triggerer 2

# --- pod tasks against the local cluster ---------------------------------------------
if [ "${PODFLOW_COMPOSE_KUBE:-1}" = 1 ]; then
  [ -x "$LOCALCLUSTER" ] || fail "$LOCALCLUSTER is missing (make localcluster; or PODFLOW_COMPOSE_KUBE=0 to leave pod tasks out)"
  t=$SECONDS
  "$LOCALCLUSTER" up --dir "$WORK/cluster" >"$WORK/cluster.log" 2>&1 &
  pids+=($!)
  for i in $(seq 120); do grep -q "localcluster ready" "$WORK/cluster.log" && break; sleep 0.5; done
  grep -q "localcluster ready" "$WORK/cluster.log" || { tail -20 "$WORK/cluster.log" >&2; fail "localcluster did not start"; }
  kc=$WORK/cluster/kubeconfig
  "$KUBECTL" --kubeconfig "$kc" apply -f examples/k8s/demo-resources.yaml >/dev/null
  # The apiserver listens on 127.0.0.1: forward the project network's host
  # side to it, and give the containers a kubeconfig naming that address
  # (the certificate is for 127.0.0.1, so tls-server-name says so).
  server=$("$KUBECTL" --kubeconfig "$kc" config view --minify -o jsonpath='{.clusters[0].cluster.server}')
  kube_port=$((50000 + RANDOM % 10000))
  socat "TCP-LISTEN:$kube_port,bind=$gw,reuseaddr,fork" "TCP:${server#https://}" 2>/dev/null &
  pids+=($!)
  export PODFLOW_KUBECONFIG_DIR=$WORK/kube
  mkdir -p "$PODFLOW_KUBECONFIG_DIR"
  cp "$kc" "$PODFLOW_KUBECONFIG_DIR/config"
  "$KUBECTL" --kubeconfig "$PODFLOW_KUBECONFIG_DIR/config" config set-cluster \
    "$("$KUBECTL" --kubeconfig "$kc" config view --minify -o jsonpath='{.clusters[0].name}')" \
    --server "https://$gw:$kube_port" --tls-server-name 127.0.0.1 >/dev/null
  chmod 755 "$PODFLOW_KUBECONFIG_DIR"; chmod 644 "$PODFLOW_KUBECONFIG_DIR/config"
  # shellcheck disable=SC2086
  dcq up -d --wait --scale scheduler=2 --scale triggerer=2 $COMPOSE_SERVICES
  for dag in example_kubernetes example_kubernetes_xcom; do
    dx scheduler podflow trigger $dag --wait >"$WORK/$dag.txt" 2>&1 || { cat "$WORK/$dag.txt" >&2; fail "trigger $dag --wait"; }
    log "pod tasks: trigger $dag --wait: $(tail -1 "$WORK/$dag.txt")"
  done
  log "pod tasks from the stack ran on the local cluster through the kubeconfig mount ($((SECONDS - t)) s)"
fi

# --- down -v leaves nothing ---------------------------------------------------------------
# down -v removes the volumes the configuration in force uses: the stack ran
# with the default kubeconfig volume before PODFLOW_KUBECONFIG_DIR replaced
# it, so take it down as first started (README).
unset PODFLOW_KUBECONFIG_DIR
dcq down -v --remove-orphans
left=$(docker ps -a -q --filter "label=com.docker.compose.project=$P"; \
       docker network ls -q --filter "label=com.docker.compose.project=$P"; \
       docker volume ls -q --filter "label=com.docker.compose.project=$P"; \
       docker volume ls -q | grep "^${P}_" || true)
[ -z "$left" ] || fail "down -v left: $left"
log "down -v: no container, network or volume of $P left"
log "PASS in $((SECONDS - START)) s (up --build --wait ${up_s} s; image ${size_mb} MB; healthy ${healthy_s} s after start)"
