package dag

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// writeFiles writes files (path -> content) under dir.
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func simpleDAG(id string) string {
	return "dag_id: " + id + "\ntasks:\n  - {task_id: a, operator: empty}\n"
}

func TestLoadFolderKeepsGoodDAGsBesideBrokenFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"good.yaml":         simpleDAG("good"),
		"nested/deeper.yml": simpleDAG("deeper"),
		"broken.yaml":       "dag_id: broken\ntasks:\n  - {task_id: a, operator: nope}\n",
		"syntax.yaml":       "dag_id: [\n",
		"notes.txt":         "not a DAG",
		".hidden/skip.yaml": "not: [even valid",
		"nested/.swap.yaml": "not: [even valid",
		"z_last/UPPER.YAML": simpleDAG("upper"),
	})
	folder := NewParser(testRegistry()).LoadFolder(dir)
	var ids []string
	for _, d := range folder.DAGs {
		ids = append(ids, d.ID)
	}
	if got := strings.Join(ids, ","); got != "good,deeper,upper" {
		t.Errorf("DAGs = %s, want good,deeper,upper", got)
	}
	if len(folder.Errors) != 2 {
		t.Fatalf("errors in %d files, want 2: %v", len(folder.Errors), folder.AllErrors())
	}
	broken := filepath.Join(dir, "broken.yaml")
	if errs := folder.Errors[broken]; len(errs) != 1 || errs[0].Error() != broken+`:3:28: operator: unknown operator "nope"; known operators: bash, empty` {
		t.Errorf("broken.yaml errors = %v", errs)
	}
	if errs := folder.Errors[filepath.Join(dir, "syntax.yaml")]; len(errs) != 1 || !strings.Contains(errs[0].Msg, "invalid YAML") {
		t.Errorf("syntax.yaml errors = %v", errs)
	}
	if all := folder.AllErrors(); len(all) != 2 || all[0].Path != broken {
		t.Errorf("AllErrors = %v", all)
	}
	if folder.DAG("deeper") == nil || folder.DAG("broken") != nil {
		t.Errorf("DAG lookup is wrong")
	}
}

func TestLoadFolderDuplicateDagIDNamesBothFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a/etl.yaml": simpleDAG("etl"),
		"b/etl.yaml": "# a copy\n" + simpleDAG("etl"),
	})
	folder := NewParser(testRegistry()).LoadFolder(dir)
	if len(folder.DAGs) != 1 || folder.DAGs[0].Path != filepath.Join(dir, "a/etl.yaml") {
		t.Fatalf("DAGs = %v", folder.DAGs)
	}
	later := filepath.Join(dir, "b/etl.yaml")
	want := later + `:2:9: dag_id: "etl" is already defined in ` + filepath.Join(dir, "a/etl.yaml")
	if errs := folder.Errors[later]; len(errs) != 1 || errs[0].Error() != want {
		t.Errorf("errors = %v, want %s", errs, want)
	}
}

func TestLoadPathsFilesAndMissingPaths(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"one.yaml": simpleDAG("one"), "two.yaml": simpleDAG("two")})
	missing := filepath.Join(dir, "missing")
	folder := NewParser(testRegistry()).LoadPaths(filepath.Join(dir, "one.yaml"), dir, missing)
	if len(folder.DAGs) != 2 {
		t.Errorf("DAGs = %d, want 2 (one.yaml once)", len(folder.DAGs))
	}
	if errs := folder.Errors[missing]; len(errs) != 1 || errs[0].Error() != missing+": read DAGs: no such file or directory" {
		t.Errorf("errors = %v", errs)
	}
}

func TestParseFileMissing(t *testing.T) {
	t.Parallel()
	_, errs := NewParser(testRegistry()).ParseFile("/nonexistent/dag.yaml")
	if len(errs) != 1 || errs[0].Error() != "/nonexistent/dag.yaml: read DAG file: no such file or directory" {
		t.Errorf("errors = %v", errs)
	}
}

func TestLoadFolderRefusesOversizedFiles(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"good.yaml": simpleDAG("good"),
		"huge.yaml": simpleDAG("huge") + "# " + strings.Repeat("x", MaxFileBytes) + "\n",
	})
	folder := NewParser(testRegistry()).LoadFolder(dir)
	if folder.DAG("good") == nil {
		t.Error("the good DAG did not load")
	}
	errs := folder.Errors[filepath.Join(dir, "huge.yaml")]
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "huge.yaml:1:1: the file is over 1048576 bytes") {
		t.Errorf("errors of the oversized file = %v", errs)
	}
}

func TestLoadFolderGivesUpOnASlowFile(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"slow.yaml": simpleDAG("slow")})
	p := NewParser(testRegistry())
	p.FileBudget = time.Nanosecond // any real parse takes longer
	folder := p.LoadFolder(dir)
	errs := folder.Errors[filepath.Join(dir, "slow.yaml")]
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "parsing took longer than 1ns; the file is skipped until it changes") {
		t.Errorf("errors = %v, want the budget", errs)
	}
	p.FileBudget = 0 // the default: ample
	if folder := p.LoadFolder(dir); folder.DAG("slow") == nil {
		t.Errorf("with the default budget: %v", folder.AllErrors())
	}
}

// A FolderLoader parses again only what changed: an unchanged file is not
// parsed again and is listed in Unchanged with its dag_id and version, an
// edited, added, removed or broken file is seen at the next load,
// duplicate dag_ids are still found across unchanged and new files, and a
// forgotten file is parsed again.
func TestFolderLoaderParsesOnlyChangedFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a.yaml": simpleDAG("a"), "b.yaml": simpleDAG("b"), "c.yaml": simpleDAG("c")})
	l := &FolderLoader{Parser: NewParser(testRegistry())}
	first := l.Load(dir)
	if len(first.DAGs) != 3 || len(first.Errors) != 0 || len(first.Unchanged) != 0 {
		t.Fatalf("first load: %d DAGs, %d unchanged, %v", len(first.DAGs), len(first.Unchanged), first.AllErrors())
	}
	aPath := filepath.Join(dir, "a.yaml")
	unchangedA := []DAGFile{{Path: aPath, DagID: "a", Hash: first.DAG("a").Hash}}

	// Edit b (new size), remove c, add d and a broken e.
	writeFiles(t, dir, map[string]string{
		"b.yaml": simpleDAG("b") + "description: edited\n",
		"d.yaml": simpleDAG("d"),
		"e.yaml": "dag_id: e\ntasks: [{task_id: x, operator: nope}]\n",
	})
	if err := os.Remove(filepath.Join(dir, "c.yaml")); err != nil {
		t.Fatal(err)
	}
	second := l.Load(dir)
	if second.DAG("a") != nil || !reflect.DeepEqual(second.Unchanged, unchangedA) {
		t.Errorf("unchanged a.yaml: parsed again %v, Unchanged %+v, want %+v", second.DAG("a") != nil, second.Unchanged, unchangedA)
	}
	if b := second.DAG("b"); b == nil || b.Description != "edited" {
		t.Errorf("edited b.yaml not parsed again: %+v", b)
	}
	if second.DAG("c") != nil || second.DAG("d") == nil {
		t.Errorf("removed c / added d: c=%v d=%v", second.DAG("c") != nil, second.DAG("d") != nil)
	}
	if len(second.Errors[filepath.Join(dir, "e.yaml")]) == 0 {
		t.Errorf("broken e.yaml has no error: %v", second.AllErrors())
	}

	// A new file claiming a's dag_id is a duplicate though a.yaml was not
	// parsed again; the error points at z's dag_id.
	writeFiles(t, dir, map[string]string{"z.yaml": simpleDAG("a")})
	third := l.Load(dir)
	if errs := third.Errors[filepath.Join(dir, "z.yaml")]; len(errs) != 1 || !strings.Contains(errs.Error(), `"a" is already defined in `+aPath) || errs[0].Line != 1 {
		t.Errorf("duplicate dag_id in z.yaml not reported at its dag_id: %v", third.AllErrors())
	}
	if third.DAG("a") != nil {
		t.Error("a.yaml was parsed again")
	}
	// Unchanged z stays a duplicate.
	if errs := l.Load(dir).Errors[filepath.Join(dir, "z.yaml")]; len(errs) != 1 {
		t.Errorf("unchanged duplicate z.yaml: %v", errs)
	}

	// Fixing the broken file is seen.
	writeFiles(t, dir, map[string]string{"e.yaml": simpleDAG("e")})
	if fourth := l.Load(dir); fourth.DAG("e") == nil {
		t.Errorf("fixed e.yaml not loaded: %v", fourth.AllErrors())
	}

	// A forgotten file is parsed again though unchanged.
	l.Forget(aPath)
	if fifth := l.Load(dir); fifth.DAG("a") == nil || fifth.DAG("a").Hash != unchangedA[0].Hash {
		t.Errorf("forgotten a.yaml not parsed again: %+v", fifth.Unchanged)
	}
}
