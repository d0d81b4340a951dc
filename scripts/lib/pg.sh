# Sourced by the bench scripts that start a throwaway PostgreSQL under
# $work: finds PostgreSQL's bin directory (PG_BIN, else pg_config's, else
# the newest /usr/lib/postgresql/*/bin) and defines as_pg, which runs a
# command as postgres when we are root (PostgreSQL refuses to run as root).

if [[ -z "${PG_BIN:-}" ]]; then
	if command -v pg_config >/dev/null && [[ -x "$(pg_config --bindir)/initdb" ]]; then
		PG_BIN=$(pg_config --bindir)
	else
		PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
	fi
fi
[[ -x "$PG_BIN/initdb" ]] || { echo "no initdb in PG_BIN=$PG_BIN" >&2; exit 1; }

as_pg() {
	if [[ $(id -u) == 0 ]]; then
		chown -R postgres "$work"
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}
