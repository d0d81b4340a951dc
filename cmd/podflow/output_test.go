package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestListingFormats(t *testing.T) {
	type rec struct {
		DagID    string `json:"dag_id"`
		IsPaused bool   `json:"is_paused"`
	}
	l := listing{header: []string{"DAG_ID", "PAUSED"}, records: []rec{{"etl", true}, {"report", false}}}
	l.add("etl", "true")
	l.add("report", "false")

	var table bytes.Buffer
	if err := l.print(&table, outputTable); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(table.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "DAG_ID") || !strings.HasPrefix(lines[2], "report") {
		t.Fatalf("table:\n%s", table.String())
	}

	for _, format := range []string{outputJSON, outputYAML} {
		var out bytes.Buffer
		if err := l.print(&out, format); err != nil {
			t.Fatal(err)
		}
		b := out.Bytes()
		if format == outputYAML {
			var err error
			if b, err = yaml.YAMLToJSON(b); err != nil {
				t.Fatalf("yaml output does not parse: %v\n%s", err, out.String())
			}
		}
		var got []rec
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s output does not parse: %v\n%s", format, err, out.String())
		}
		if len(got) != 2 || got[0] != (rec{"etl", true}) || got[1].DagID != "report" {
			t.Fatalf("%s round trip: %+v", format, got)
		}
	}

	empty := listing{records: []rec(nil)}
	var out bytes.Buffer
	if err := empty.print(&out, outputJSON); err != nil || strings.TrimSpace(out.String()) != "[]" {
		t.Fatalf("empty json = %q, %v", out.String(), err)
	}
	if err := checkOutput("xml"); err == nil || !strings.Contains(err.Error(), "table, json or yaml") {
		t.Fatalf("checkOutput(xml) = %v", err)
	}
}

func TestVersionCommand(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if !strings.HasPrefix(out.String(), "podflow ") || !strings.Contains(out.String(), "commit ") {
			t.Fatalf("%v printed %q", args, out.String())
		}
	}
}
