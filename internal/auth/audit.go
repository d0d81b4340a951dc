package auth

import "github.com/podflow/podflow/internal/store"

// AuditEvent starts the audit-log entry for a change p makes through the
// API from remote (r.RemoteAddr): the actor is p.Actor(), the source the
// caller's address without its port. The caller fills in the DAG, run,
// task and extra, and records it in the change's transaction.
func AuditEvent(p Principal, remote, event string) store.EventLog {
	return store.EventLog{Actor: p.Actor(), Source: remoteHost(remote), Event: event}
}
