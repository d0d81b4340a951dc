package scheduler

import (
	"testing"
	"time"

	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/store"
)

func TestOutcomeLine(t *testing.T) {
	at := time.Date(2026, 11, 28, 9, 0, 0, 0, time.FixedZone("CET", 3600))
	for _, tc := range []struct {
		name       string
		out        store.Outcome
		skipReason string
		want       string
	}{
		{"success", store.Outcome{State: runstate.Success}, "", "task succeeded"},
		{"skipped with a reason", store.Outcome{State: runstate.Skipped}, "bash command exited with code 99 (skip_on_exit_code)",
			"task skipped: bash command exited with code 99 (skip_on_exit_code)"},
		{"skipped by its result", store.Outcome{State: runstate.Skipped}, "", "task skipped"},
		{"failed", store.Outcome{State: runstate.Failed, Error: "bash command failed with exit code 3"}, "",
			"task failed: bash command failed with exit code 3"},
		{"up for retry", store.Outcome{State: runstate.UpForRetry, Error: "exit code 3", RetryAt: at}, "",
			"task failed: exit code 3 (up for retry at 2026-11-28T08:00:00Z)"},
		{"deferred without deadline", store.Outcome{State: runstate.Deferred, Trigger: &store.NewTrigger{Kind: "pod"}}, "",
			"task deferred to a pod trigger; the worker slot is free until it fires"},
		{"deferred with deadline", store.Outcome{State: runstate.Deferred, Trigger: &store.NewTrigger{Kind: "time", Deadline: at}}, "",
			"task deferred to a time trigger; the worker slot is free until it fires (deadline 2026-11-28T08:00:00Z)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := outcomeLine(tc.out, tc.skipReason); got != tc.want {
				t.Errorf("outcomeLine = %q, want %q", got, tc.want)
			}
		})
	}
}
