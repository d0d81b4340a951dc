package store_test

import (
	"slices"
	"testing"
)

// DeactivateRemovedFiles deactivates only DAGs under the folder whose file
// is gone and whose dag_id no present file defines; an emptied folder (no
// files: a nil list) deactivates all of its DAGs; saving a DAG again
// reactivates it; removed broken files' errors go.
func TestDeactivateRemovedFiles(t *testing.T) {
	b := setup(t)
	for _, d := range []struct{ id, path string }{
		{"a", "/dags/a.yaml"}, {"b", "/dags/sub/b.yaml"}, {"moved", "/dags/old.yaml"}, {"other", "/elsewhere/o.yaml"}, {"near", "/dags2/n.yaml"},
	} {
		if err := b.st.SetDagCurrent(b.ctx, d.id, d.path, "h-"+d.id, "@daily", false); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.st.SetFileBroken(b.ctx, "/dags/junk.yaml", "hj", "junk.yaml:1:1: bad"); err != nil {
		t.Fatal(err)
	}
	active := func() []string {
		rows, err := b.st.Dags(b.ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rows {
			if r.Active {
				out = append(out, r.DagID)
			}
		}
		return out
	}

	// b.yaml removed; old.yaml removed but "moved" is defined by a present file.
	ids, err := b.st.DeactivateRemovedFiles(b.ctx, "/dags", []string{"/dags/a.yaml", "/dags/new.yaml", "/dags/junk.yaml"}, []string{"a", "moved"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []string{"b"}) || !slices.Equal(active(), []string{"a", "moved", "near", "other"}) {
		t.Errorf("deactivated %v, active %v; want b, and a moved near other", ids, active())
	}
	if files, _ := b.st.BrokenFiles(b.ctx); len(files) != 1 {
		t.Errorf("junk.yaml is present: its errors must stay: %v", files)
	}

	// The folder emptied: every DAG under /dags/ (not /dags2/) goes, and junk's errors.
	ids, err = b.st.DeactivateRemovedFiles(b.ctx, "/dags", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"a", "moved"}) || !slices.Equal(active(), []string{"near", "other"}) {
		t.Errorf("emptied folder: deactivated %v, active %v", ids, active())
	}
	if files, _ := b.st.BrokenFiles(b.ctx); len(files) != 0 {
		t.Errorf("removed junk.yaml's errors stay: %v", files)
	}

	// Saved again (same version): active.
	if err := b.st.SetDagCurrent(b.ctx, "a", "/dags/a.yaml", "h-a", "@daily", false); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(active(), "a") {
		t.Errorf("a saved again but inactive: %v", active())
	}
}
