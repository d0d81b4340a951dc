package dag

import (
	"maps"
	"strings"
	"testing"
	"time"
)

func TestParseConf(t *testing.T) {
	tests := []struct {
		name, conf, wantErr string
	}{
		{"empty is {}", "", ""},
		{"object", `{"table": "events", "n": 3}`, ""},
		{"nested within the limit", strings.Repeat(`{"a":`, MaxConfDepth) + "1" + strings.Repeat("}", MaxConfDepth), ""},
		{"too deep", strings.Repeat(`{"a":`, MaxConfDepth+1) + "1" + strings.Repeat("}", MaxConfDepth+1), "nested more than 32 levels"},
		{"deep arrays", `{"a":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + "}", "nested more than 32 levels"},
		{"too big", `{"a":"` + strings.Repeat("x", MaxConfBytes) + `"}`, "over the limit"},
		{"array", `[1, 2]`, "must be a JSON object"},
		{"not JSON", `{"a": }`, "not valid JSON"},
		{"two values", `{"a": 1} {"b": 2}`, "more than one JSON value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf, err := ParseConf([]byte(tt.conf))
			if tt.wantErr == "" {
				if err != nil || conf == nil {
					t.Fatalf("ParseConf = %v, %v", conf, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfOverride(t *testing.T) {
	const head = "dag_id: d\nparams: {namespace: prod, table: events}\n"
	const tasks = "tasks:\n  - {task_id: t, operator: bash, bash_command: echo}\n"
	conf := map[string]any{"namespace": "kube-system", "table": "orders", "extra": 1}
	tests := []struct {
		name, setting string
		wantParams    map[string]any
		wantErr       string // of CheckConf
	}{
		{"default: conf overrides every param, as Airflow", "",
			map[string]any{"namespace": "kube-system", "table": "orders", "extra": 1}, ""},
		{"false: no param", "allow_conf_override: false\n",
			map[string]any{"namespace": "prod", "table": "events"}, "param namespace, table"},
		{"list: only those", "allow_conf_override: [table]\n",
			map[string]any{"namespace": "prod", "table": "orders"}, "param namespace "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustParse(t, head+tt.setting+tasks)
			if got := d.RunParams(conf); !maps.Equal(got, tt.wantParams) {
				t.Errorf("RunParams = %v, want %v", got, tt.wantParams)
			}
			err := d.CheckConf(conf)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("CheckConf = %v, want %q", err, tt.wantErr)
			}
			if err := d.CheckConf(map[string]any{"extra": 1}); err != nil {
				t.Errorf("a conf key that is no param was refused: %v", err)
			}
		})
	}
}

func TestAllowConfOverrideNamesUnknownParams(t *testing.T) {
	_, errs := parse(t, "dag_id: d\nparams: {table: events}\nallow_conf_override: [tabel]\n"+
		"tasks:\n  - {task_id: t, operator: bash, bash_command: echo}\n")
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `dag.yaml:3:23: allow_conf_override: "tabel" is not a param of this DAG; did you mean table?`) {
		t.Errorf("errors = %v", errs)
	}
}

func TestRunIDFormat(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	if got := RunID("manual", at); got != "manual__2026-01-02T03:04:05.000006Z" {
		t.Errorf("RunID = %q", got)
	}
}
