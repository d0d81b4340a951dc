package dag

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// benchDAG is a realistic DAG file: schedule, default_args, params and ten
// bash tasks with templates (each bash_command unique, the env template
// shared by all), env and upstreams.
func benchDAG(i int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `dag_id: generated_%04d
description: Generated DAG number %d
schedule: "%d 3 * * *"
timezone: Europe/Berlin
start_date: 2026-01-01
catchup: false
max_active_runs: 1
tags: [generated, bench]
params: {table: events_%d, limit: 100}
default_args:
  retries: 2
  retry_delay: 30s
  execution_timeout: 1h
tasks:
`, i, i, i%60, i)
	for t := 0; t < 10; t++ {
		fmt.Fprintf(&b, `  - task_id: task_%d
    operator: bash
    bash_command: |
      echo "run {{ run_id }} of dag %d for {{ ds }} on {{ params.table }}"
      echo {{ ti.xcom_pull('task_%d') }}
    env:
      TABLE: "{{ params.table }}"
      STEP: "%d"
`, t, i, max(t-1, 0), t)
		if t > 0 {
			fmt.Fprintf(&b, "    upstream: [task_%d]\n", t-1)
		}
		if t%3 == 0 {
			b.WriteString("    trigger_rule: all_done\n    retries: 0\n")
		}
	}
	return b.String()
}

// benchFolder writes 1,000 generated DAG files of 10 tasks each.
func benchFolder(b *testing.B) string {
	dir := b.TempDir()
	files := map[string]string{}
	for i := 0; i < 1000; i++ {
		files[filepath.Join(fmt.Sprintf("team_%02d", i%20), fmt.Sprintf("dag_%04d.yaml", i))] = benchDAG(i)
	}
	writeFiles(b, dir, files)
	return dir
}

func loadBenchFolder(b *testing.B, p *Parser, dir string) {
	folder := p.LoadFolder(dir)
	if len(folder.DAGs) != 1000 || len(folder.Errors) != 0 {
		b.Fatalf("%d DAGs, errors: %v", len(folder.DAGs), folder.AllErrors())
	}
}

// BenchmarkLoadFolder1000 parses and validates a folder of 1,000 DAG files
// with 10 tasks each, cold: a new parser each time, so every template is
// compiled. Goal: under 1 s per op.
func BenchmarkLoadFolder1000(b *testing.B) {
	dir := benchFolder(b)
	for b.Loop() {
		loadBenchFolder(b, NewParser(testRegistry()), dir)
	}
}

// BenchmarkLoadFolder1000Warm is the scheduler's periodic reload: the same
// parser again, which remembers the templates it has checked.
func BenchmarkLoadFolder1000Warm(b *testing.B) {
	dir := benchFolder(b)
	p := NewParser(testRegistry())
	loadBenchFolder(b, p, dir)
	for b.Loop() {
		loadBenchFolder(b, p, dir)
	}
}

// BenchmarkParseBytes parses one generated DAG file.
func BenchmarkParseBytes(b *testing.B) {
	data := []byte(benchDAG(1))
	for b.Loop() {
		if _, errs := NewParser(testRegistry()).ParseBytes("dag.yaml", data); len(errs) > 0 {
			b.Fatal(errs)
		}
	}
}
