package operators_test

import (
	"testing"
	"time"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/operators"
)

func TestNewTaskContext(t *testing.T) {
	d := &dag.DAG{ID: "etl", Params: map[string]any{"table": "events", "limit": 10}}
	task := &dag.Task{ID: "load"}
	logical := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	end := logical.Add(24 * time.Hour)
	tests := []struct {
		name             string
		run              operators.TaskRun
		wantParams       map[string]any
		wantConfLen      int
		wantStart, wantE time.Time
	}{
		{"manual run without conf: defaults, interval is the logical date",
			operators.TaskRun{RunID: "manual__x", TryNumber: 1, LogicalDate: logical},
			map[string]any{"table": "events", "limit": 10}, 0, logical, logical},
		{"conf overrides params",
			operators.TaskRun{RunID: "manual__x", TryNumber: 2, LogicalDate: logical, Conf: map[string]any{"table": "orders"}},
			map[string]any{"table": "orders", "limit": 10}, 1, logical, logical},
		{"scheduled run keeps its data interval",
			operators.TaskRun{RunID: "scheduled__x", TryNumber: 1, LogicalDate: logical, DataIntervalStart: logical, DataIntervalEnd: end},
			map[string]any{"table": "events", "limit": 10}, 0, logical, end},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := operators.NewTaskContext(d, task, tt.run, nil, nil)
			tpl := tc.Template
			if tc.RunID != tt.run.RunID || tpl.RunID != tt.run.RunID || tc.TryNumber != tt.run.TryNumber || tpl.TryNumber != tt.run.TryNumber {
				t.Errorf("run id/try: context %s/%d, template %s/%d; want %s/%d", tc.RunID, tc.TryNumber, tpl.RunID, tpl.TryNumber, tt.run.RunID, tt.run.TryNumber)
			}
			if tpl.DagID != "etl" || tpl.TaskID != "load" || tc.DAG != d || tc.Task != task {
				t.Errorf("dag/task: %s.%s", tpl.DagID, tpl.TaskID)
			}
			if len(tpl.Params) != len(tt.wantParams) {
				t.Errorf("params %v; want %v", tpl.Params, tt.wantParams)
			}
			for k, v := range tt.wantParams {
				if tpl.Params[k] != v {
					t.Errorf("param %s = %v; want %v", k, tpl.Params[k], v)
				}
			}
			if tpl.Conf == nil || len(tpl.Conf) != tt.wantConfLen {
				t.Errorf("conf %v; want %d keys, never nil", tpl.Conf, tt.wantConfLen)
			}
			if !tpl.DataIntervalStart.Equal(tt.wantStart) || !tpl.DataIntervalEnd.Equal(tt.wantE) || !tpl.LogicalDate.Equal(logical) {
				t.Errorf("interval %v – %v (logical %v); want %v – %v", tpl.DataIntervalStart, tpl.DataIntervalEnd, tpl.LogicalDate, tt.wantStart, tt.wantE)
			}
		})
	}
}
