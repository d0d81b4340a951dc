#!/usr/bin/env bash
# make demo: run the example DAGs end to end through the real scheduler and
# triggerer (podflow standalone), on a local PostgreSQL and — unless
# KUBECONFIG is set — the local Kubernetes cluster, then show each task's
# state and the XCom-driven output.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bin=$root/bin
demo=$root/.demo
mkdir -p "$demo"
chmod 755 "$demo"
export PODFLOW_HOME=${PODFLOW_HOME:-$demo/home}
export PODFLOW_LOG_LEVEL=${PODFLOW_LOG_LEVEL:-warn}
dags=$root/examples/dags
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "validate the example DAGs"
"$bin/podflow" validate "$dags"

pod_dags=1
if [ -z "${KUBECONFIG:-}" ]; then
  if [ ! -x "$bin/localcluster" ]; then
    echo "no KUBECONFIG and no bin/localcluster: run 'make localcluster' (or set KUBECONFIG); running the bash examples only"
    pod_dags=0
  else
    step "start the local Kubernetes cluster (pods run as processes on this machine)"
    rm -rf "$demo/cluster"
    "$bin/localcluster" up --dir "$demo/cluster" >"$demo/localcluster.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 120); do
      grep -q "ready" "$demo/localcluster.log" 2>/dev/null && [ -s "$demo/cluster/kubeconfig" ] && break
      kill -0 "${pids[-1]}" 2>/dev/null || { cat "$demo/localcluster.log"; echo "localcluster exited"; exit 1; }
      sleep 0.5
    done
    export KUBECONFIG=$demo/cluster/kubeconfig
    "$bin/kubectl" get nodes
  fi
fi
if [ "$pod_dags" = 1 ]; then
  kubectl=$(command -v "$bin/kubectl" || command -v kubectl)
  step "apply the Secrets, ConfigMaps and volume the pod examples use"
  "$kubectl" apply -f "$root/examples/k8s/demo-resources.yaml"
fi

step "start podflow standalone (scheduler + workers + triggerer + REST API)"
# A free port for the API: 127.0.0.1:8080 (the default) may be taken here.
"$bin/podflow" standalone --dags-folder "$dags" --webserver-addr 127.0.0.1:0 >"$demo/standalone.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do
  "$bin/podflow" db check >/dev/null 2>&1 && break
  kill -0 "${pids[-1]}" 2>/dev/null || { cat "$demo/standalone.log"; echo "standalone exited"; exit 1; }
  sleep 0.5
done

run() { # DAG_ID [trigger flags...]: trigger, wait, show tasks; echo the run id
  local dag=$1; shift
  step "trigger $dag $*"
  local out
  out=$("$bin/podflow" trigger "$dag" --wait "$@" 2>/dev/null) || true
  echo "$out"
  RUN_ID=$(echo "$out" | sed -n 's/^triggered .* run \(.*\)$/\1/p')
  "$bin/podflow" tasks "$dag" "$RUN_ID"
}

run etl_xcom
echo "-- the XCom-driven output (load's log):"
"$bin/podflow" logs etl_xcom "$RUN_ID" load | grep -E "loading|rows" || true
run params_and_trigger_rules --conf '{"name": "Ada"}'
run nightly_berlin

# Dynamic DAGs (#14): mapping, branching, task groups. Each run must succeed.
expect_success() { # DAG_ID: the last run's first line says success
  local first
  first=$("$bin/podflow" tasks "$1" "$RUN_ID" | sed -n 1p)
  case "$first" in
    *": success") ;;
    *) echo "run $RUN_ID of $1 did not succeed: $first"; exit 1 ;;
  esac
}
run mapping --conf '{"days": 6}'
expect_success mapping
echo "-- collect's log (the 6 instances' values, in map_index order):"
"$bin/podflow" logs mapping "$RUN_ID" collect | grep -E "collected|rows for|third" || true
echo "-- one instance's log (process --map-index 2):"
"$bin/podflow" logs mapping "$RUN_ID" process --map-index 2 | grep "rows for" || true
run branching --conf '{"mode": "full"}'
expect_success branching
run task_groups
expect_success task_groups
"$bin/podflow" dags show "$dags/task_groups.yaml" | sed -n '/task groups:/,$p'

# Assets (#16): the producer's success records asset events; the consumer,
# scheduled on both assets, gets an asset_triggered run by itself.
consumer_runs() { "$bin/podflow" runs list assets_consumer 2>/dev/null | grep -c asset_triggered || true; }
before=$(consumer_runs)
run assets_producer
expect_success assets_producer
step "the asset events, and the consumer run they triggered"
"$bin/podflow" assets list
"$bin/podflow" assets events s3://warehouse/orders/ --limit 3
consumer_run=""
for _ in $(seq 1 120); do
  if [ "$(consumer_runs)" -gt "$before" ]; then
    consumer_run=$("$bin/podflow" runs list assets_consumer | grep asset_triggered | grep -E "success|failed" | awk '{print $2}' | head -1)
    [ -n "$consumer_run" ] && break
  fi
  sleep 0.5
done
[ -n "$consumer_run" ] || { echo "assets_consumer was not triggered by the producer's asset events"; exit 1; }
RUN_ID=$consumer_run
"$bin/podflow" tasks assets_consumer "$RUN_ID"
expect_success assets_consumer
"$bin/podflow" logs assets_consumer "$RUN_ID" report | grep "updated by" || true
if [ "$pod_dags" = 1 ]; then
  run example_kubernetes_xcom
  echo "-- pod_task_xcom_result's log (the pod's XCom, pulled by a template):"
  "$bin/podflow" logs example_kubernetes_xcom "$RUN_ID" pod_task_xcom_result | grep -v "^\s*$" | tail -5
  run example_kubernetes_async
  "$bin/podflow" logs example_kubernetes_async "$RUN_ID" pod_task_xcom_result_async | tail -5
  run example_kubernetes
  step "the manifest of a pod task, without a cluster (podflow dry-run)"
  "$bin/podflow" dry-run example_kubernetes_dry_run dry_run_demo --dags-folder "$dags" | head -40
fi
step "the REST API: an API key, then trigger and wait through HTTP (podflow trigger --api)"
api=""
for _ in $(seq 1 60); do
  api=$(sed -n 's#^podflow standalone: REST API at \(http://[^ ]*\)/api/v1.*#\1#p' "$demo/standalone.log" | tail -1)
  [ -n "$api" ] && break
  sleep 0.5
done
[ -n "$api" ] || { cat "$demo/standalone.log"; echo "the REST API did not start"; exit 1; }
key=$("$bin/podflow" api-keys create --role op --name "demo-$(date +%s)" | grep -o 'pfk_[A-Za-z0-9_-]*' | head -1)
PODFLOW_API_TOKEN=$key "$bin/podflow" trigger etl_xcom --api "$api" --wait
if command -v curl >/dev/null; then
  echo "-- curl $api/api/v1/dags/etl_xcom/dagRuns?limit=2"
  curl -fsS -H "Authorization: Bearer $key" "$api/api/v1/dags/etl_xcom/dagRuns?limit=2&order_by=-logical_date"; echo
fi

step "done — history stays in the local PostgreSQL under $PODFLOW_HOME (try: PODFLOW_HOME=$PODFLOW_HOME bin/podflow runs list)"
