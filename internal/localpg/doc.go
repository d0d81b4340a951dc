// Package localpg runs PostgreSQL on this machine for podflow, so that
// `podflow standalone`, `make demo` and the tests need no database set up
// by hand. It is product code: the CLI uses it, and so does the test
// harness (internal/localenv/pgtest).
//
// Two kinds of cluster, one runner:
//
//	StartPostgres             a server tied to this process: initdb'd (or
//	  (server.go, initdb.go,  copied from a cached template, template.go) in
//	   pgctl.go, watchdog.go) a given or temporary directory, started with
//	                          pg_ctl, stopped by Stop or, should the process
//	                          die first, by a watchdog. `podflow bench` and
//	                          pgtest's throwaway clusters use it.
//
//	EnsurePersistentPostgres  the cluster `podflow standalone` keeps under
//	  (persistent.go,         the podflow home (home.go): started once, left
//	   home.go, status.go)    running for later commands, which find its URL
//	                          in home/database_url (RecordedDatabaseURL);
//	                          `podflow db status` and `podflow db stop` see
//	                          and stop it.
//
// Every cluster asks for a password on every connection (auth.go): the
// superuser's random password lives in the data directory and in the URLs
// handed out, never in a "trust" line. As root, the server programs run as
// OS user postgres (runner_unix.go). BinDir finds the server binaries.
package localpg
