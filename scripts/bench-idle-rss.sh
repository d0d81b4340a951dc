#!/usr/bin/env bash
# Idle memory of the real scheduler daemon with many DAGs (issue #21): the
# `scheduler` binary, in its own process, with DAGS (3000) DAGs of 10 tasks
# (3 bash, 7 empty, the storm workload of `podflow bench --many-dags`) on a
# throwaway PostgreSQL. It waits until the first sync's run of every DAG has
# succeeded, pauses the DAGs (so no boundary storms in the middle), and reads
# the daemon's VmRSS (split into anonymous memory and the binary's file
# pages) and Go heap (from its /metrics) every 30 s for SAMPLES readings;
# then it edits one DAG file EDITS (100) times, each waited for until the
# scheduler saved the new version, and reads them again. No GC is forced:
# this is what `ps` shows.
#
#   scripts/bench-idle-rss.sh                 # 3000 DAGs, 100 edits
#   DAGS=1000 EDITS=0 scripts/bench-idle-rss.sh
#
# Environment: DAGS (3000), EDITS (100), SAMPLES (4), WORKERS (32), PG_BIN
# (PostgreSQL's bin directory), PORT (55498), HEALTH_PORT (18099).
set -euo pipefail

DAGS=${DAGS:-3000}
EDITS=${EDITS:-100}
SAMPLES=${SAMPLES:-4}
WORKERS=${WORKERS:-32}
PORT=${PORT:-55498}
HEALTH_PORT=${HEALTH_PORT:-18099}
cd "$(dirname "$0")/.."

work=$(mktemp -d /tmp/bench-idle-rss.XXXXXX)
chmod 755 "$work"

. scripts/lib/pg.sh # PG_BIN, as_pg

go build -o "$work/scheduler" ./cmd/scheduler
go build -o "$work/podflow" ./cmd/podflow
as_pg "$PG_BIN/initdb" -D "$work/data" -U postgres --auth=trust --encoding=UTF8 --locale=C >/dev/null
as_pg "$PG_BIN/pg_ctl" start -D "$work/data" -w -l "$work/postgres.log" \
	-o "-c listen_addresses=127.0.0.1 -p $PORT -k $work -c max_connections=300" >/dev/null
pid=
cleanup() {
	[[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	as_pg "$PG_BIN/pg_ctl" stop -D "$work/data" -m fast >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

psql_() { "$PG_BIN/psql" -X -q -tA -h 127.0.0.1 -p "$PORT" -U postgres -d podflow "$@"; }
"$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PORT" -U postgres -c "CREATE DATABASE podflow" postgres
export DATABASE_URL="postgres://postgres@127.0.0.1:$PORT/podflow?sslmode=disable"
"$work/podflow" db migrate >/dev/null

dags=$work/dags
mkdir -p "$dags"
storm_dag() { # the workload of podflow bench --many-dags (internal/bench/storm.go)
	printf "dag_id: storm_%05d\nschedule: '*/5 * * * *'\nstart_date: 2026-01-01T00:00:00Z\ncatchup: false\nis_paused_upon_creation: false\n%stasks:\n" "$1" "${2:-}"
	echo "  - {task_id: b0, operator: bash, bash_command: 'true', do_xcom_push: false}"
	for j in 0 1 2 3 4 5 6; do echo "  - {task_id: e$j, operator: empty, upstream: [b0]}"; done
	echo "  - {task_id: b1, operator: bash, bash_command: 'true', do_xcom_push: false, upstream: [e0, e1, e2, e3, e4, e5, e6]}"
	echo "  - {task_id: b2, operator: bash, bash_command: 'true', do_xcom_push: false, upstream: [b1]}"
}
for ((i = 0; i < DAGS; i++)); do storm_dag "$i" >"$dags/$(printf storm_%05d.yaml "$i")"; done

"$work/scheduler" --dags-folder "$dags" --workers "$WORKERS" --health-addr "127.0.0.1:$HEALTH_PORT" >"$work/scheduler.log" 2>&1 &
pid=$!
t0=$SECONDS
until [[ $(psql_ -c "SELECT count(*) FROM dag_runs WHERE state = 'success'" 2>/dev/null || echo 0) -ge $DAGS ]]; do
	kill -0 "$pid" 2>/dev/null || { tail -20 "$work/scheduler.log" >&2; exit 1; }
	((SECONDS - t0 < 900)) || { echo "the first sync's $DAGS runs did not all succeed in 15 min" >&2; exit 1; }
	sleep 1
done
echo "$DAGS DAGs of 10 tasks: the first sync's runs all succeeded $((SECONDS - t0)) s after the scheduler started"
psql_ -c "UPDATE dags SET is_paused = true" >/dev/null

mib() { awk -v k="$1" '$1 == k":" {printf "%.1f", $2 / 1024}' "/proc/$pid/status"; }
metric() { curl -s "127.0.0.1:$HEALTH_PORT/metrics" | awk -v k="$1" '$1 == k {printf "%.1f", $2 / 1048576}'; }
readings() { # label; prints SAMPLES readings 30 s apart and the lowest RSS
	local low=
	for ((s = 1; s <= SAMPLES; s++)); do
		sleep 30
		local rss anon file
		rss=$(mib VmRSS) anon=$(mib RssAnon) file=$(mib RssFile)
		printf '  %s +%3ds: RSS %s MiB (anonymous %s, binary file pages %s); Go heap: live %s MiB, in use %s MiB, next GC at %s MiB\n' \
			"$1" $((s * 30)) "$rss" "$anon" "$file" "$(metric go_memstats_heap_alloc_bytes)" \
			"$(metric go_memstats_heap_inuse_bytes)" "$(metric go_memstats_next_gc_bytes)"
		if [[ -z $low ]] || (($(echo "$rss < $low" | bc))); then low=$rss; fi
	done
	echo "  $1: lowest RSS $low MiB"
}
readings idle

if ((EDITS > 0)); then
	for ((e = 1; e <= EDITS; e++)); do
		before=$(psql_ -c "SELECT hash FROM dags WHERE dag_id = 'storm_00000'")
		storm_dag 0 "description: edit $e
" >"$dags/storm_00000.yaml"
		t1=$SECONDS
		until [[ $(psql_ -c "SELECT hash FROM dags WHERE dag_id = 'storm_00000'") != "$before" ]]; do
			((SECONDS - t1 < 30)) || { echo "edit $e not saved in 30 s" >&2; exit 1; }
			sleep 0.2
		done
	done
	echo "$EDITS edits of storm_00000.yaml saved"
	readings "after $EDITS edits"
fi
