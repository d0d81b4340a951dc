#!/usr/bin/env bash
# No-op throughput of podflow against River (a Postgres job queue in Go),
# side by side (issue #18): `podflow bench` workload (c), 200 runs × 100
# `empty` tasks, and `river bench --num-total-jobs 20000`, in alternating
# rounds on one throwaway PostgreSQL with the settings `podflow bench` uses
# (defaults, fsync on, max_connections 300). Each round gets a fresh
# database. It prints every round, the medians and their ratio; on a shared
# machine the ratio is what counts.
#
#   scripts/bench-river.sh                    # 3 rounds
#   ROUNDS=5 RIVER=/path/to/river scripts/bench-river.sh
#
# River's CLI is not vendored: set RIVER to a built `river`, or have it on
# PATH, or let the script `go install github.com/riverqueue/river/cmd/river`
# (RIVER_VERSION, default latest). If the module proxy does not have it,
# build it from a checkout: (cd river/cmd/river && go install .).
#
# Both get the same number of worker slots: River's bench runs its queue
# with MaxWorkers 2,000 (cmd/river/riverbench), so podflow's scheduler gets
# --workers 2000 here (WORKERS; `podflow bench` alone defaults to 256).
#
# Environment: ROUNDS (3), JOBS (20000 = 200 runs × 100 tasks), WORKERS
# (2000), PODFLOW (default: build ./cmd/podflow), PG_BIN (PostgreSQL's bin
# directory), PORT (55499).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
JOBS=${JOBS:-20000}
WORKERS=${WORKERS:-2000}
PORT=${PORT:-55499}
cd "$(dirname "$0")/.."

work=$(mktemp -d /tmp/bench-river.XXXXXX)
chmod 755 "$work"

. scripts/lib/pg.sh # PG_BIN, as_pg

if [[ -z "${PODFLOW:-}" ]]; then
	PODFLOW=$work/podflow
	go build -o "$PODFLOW" ./cmd/podflow
fi
if [[ -z "${RIVER:-}" ]]; then
	if command -v river >/dev/null; then
		RIVER=$(command -v river)
	else
		GOBIN=$work/bin go install "github.com/riverqueue/river/cmd/river@${RIVER_VERSION:-latest}" || {
			echo "cannot install River's CLI; build it from a checkout of github.com/riverqueue/river" \
				"(cd cmd/river && go install .) and set RIVER" >&2
			exit 1
		}
		RIVER=$work/bin/river
	fi
fi

as_pg "$PG_BIN/initdb" -D "$work/data" -U postgres --auth=trust --encoding=UTF8 --locale=C >/dev/null
as_pg "$PG_BIN/pg_ctl" start -D "$work/data" -w -l "$work/postgres.log" \
	-o "-c listen_addresses=127.0.0.1 -p $PORT -k $work -c max_connections=300" >/dev/null
cleanup() {
	as_pg "$PG_BIN/pg_ctl" stop -D "$work/data" -m fast >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

psql_() { "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PORT" -U postgres "$@"; }
url() { echo "postgres://postgres@127.0.0.1:$PORT/$1?sslmode=disable"; }

podflow_round() { # prints task instances/s of workload (c), then the same after the runs were created
	local db=podflow_$1 out
	psql_ -c "CREATE DATABASE $db"
	# (a) and (b) are cut to two tasks once: only (c) is compared.
	out=$(DATABASE_URL=$(url "$db") "$PODFLOW" bench --use-database-url --chain 2 --independent 2 --repeat 1 \
		--workers "$WORKERS" --runs $((JOBS / 100)) --tasks 100 2>/dev/null)
	psql_ -c "DROP DATABASE $db"
	echo "$(sed -n 's/^(c) .*, \([0-9]*\) task instances\/s$/\1/p' <<<"$out")" \
		"$(sed -n 's/^ *of which creating the runs .*: \([0-9]*\) task instances\/s$/\1/p' <<<"$out")"
}

river_round() { # prints jobs/s
	local db=river_$1 out
	psql_ -c "CREATE DATABASE $db"
	"$RIVER" migrate-up --database-url "$(url "$db")" >/dev/null
	out=$("$RIVER" bench --database-url "$(url "$db")" --num-total-jobs "$JOBS" 2>&1)
	psql_ -c "DROP DATABASE $db"
	sed -n 's/.*overall job\/sec \[ *\([0-9.]*\) *\].*/\1/p' <<<"$out" | tail -1
}

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

pf=() pw=() rv=()
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); podflow with $WORKERS worker slots (River's bench: 2,000)"
for i in $(seq 1 "$ROUNDS"); do
	# Alternate which goes first, so neither always runs on a warmer server.
	if ((i % 2)); then
		read -r p w < <(podflow_round "$i"); r=$(river_round "$i")
	else
		r=$(river_round "$i"); read -r p w < <(podflow_round "$i")
	fi
	[[ -n $p && -n $r ]] || { echo "round $i: a bench printed no figure" >&2; exit 1; }
	pf+=("$p") pw+=("${w:-0}") rv+=("$r")
	printf 'round %d: podflow %s task instances/s (%s after creating its runs), River %s jobs/s, ratio %.2f (load %s)\n' \
		"$i" "$p" "${w:-?}" "$r" "$(echo "$p / $r" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
done
mp=$(printf '%s\n' "${pf[@]}" | median)
mw=$(printf '%s\n' "${pw[@]}" | median)
mr=$(printf '%s\n' "${rv[@]}" | median)
printf 'median: podflow %s task instances/s, River %s jobs/s, ratio %.2f (target ≥ 0.5)\n' "$mp" "$mr" "$(echo "$mp / $mr" | bc -l)"
# River's figure starts after its jobs were inserted; podflow's (c) includes
# creating its 200 runs. Both ways, for the record:
if [[ $mw != 0 ]]; then # a podflow before #18 does not print it
	printf 'median with podflow timed after creating its runs too: %s task instances/s, ratio %.2f\n' "$mw" "$(echo "$mw / $mr" | bc -l)"
fi
