package node

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMountPointsAreCreatedSharedAndRemoved(t *testing.T) {
	root := t.TempDir()
	m := newMountPoints(t.TempDir())
	xcom := filepath.Join(root, "airflow", "xcom")
	file := filepath.Join(root, "etc", "app.conf")

	first, err := m.acquire([]mountTarget{{path: xcom}, {path: file, isFile: true}})
	if err != nil {
		t.Fatal(err)
	}
	second, err := m.acquire([]mountTarget{{path: xcom}})
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(file); err != nil || info.IsDir() {
		t.Fatalf("file mount point: %v %v", info, err)
	}
	m.release(first)
	if _, err := os.Stat(xcom); err != nil {
		t.Fatalf("mount point removed while another container still uses it: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "etc")); !os.IsNotExist(err) {
		t.Errorf("unused mount point parent still there: %v", err)
	}
	m.release(second)
	if _, err := os.Stat(filepath.Join(root, "airflow")); !os.IsNotExist(err) {
		t.Errorf("created directories left behind: %v", err)
	}
}

func TestMountPointsKeepWhatUsersWrote(t *testing.T) {
	root := t.TempDir()
	m := newMountPoints(t.TempDir())
	dir := filepath.Join(root, "data")
	held, err := m.acquire([]mountTarget{{path: dir}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	m.release(held)
	if _, err := os.Stat(filepath.Join(dir, "keep")); err != nil {
		t.Errorf("a non-empty directory was removed: %v", err)
	}
}

// Two localclusters share a mount point: when the creator cannot remove it (still in use), the other one
// removes it once it is the last user.
func TestMountPointCreatedByAnotherClusterIsRemovedByTheLastUser(t *testing.T) {
	root, registry := t.TempDir(), t.TempDir()
	creator, other := newMountPoints(registry), newMountPoints(registry)
	xcom := filepath.Join(root, "airflow", "xcom")
	createdHeld, err := creator.acquire([]mountTarget{{path: xcom}})
	if err != nil {
		t.Fatal(err)
	}
	otherHeld, err := other.acquire([]mountTarget{{path: xcom}})
	if err != nil {
		t.Fatal(err)
	}
	inUse := filepath.Join(xcom, "in-use")
	if err := os.WriteFile(inUse, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	creator.release(createdHeld)
	if _, err := os.Stat(xcom); err != nil {
		t.Fatalf("mount point in use was removed: %v", err)
	}
	if err := os.Remove(inUse); err != nil {
		t.Fatal(err)
	}
	other.release(otherHeld)
	if _, err := os.Stat(filepath.Join(root, "airflow")); !os.IsNotExist(err) {
		t.Errorf("shared mount point left behind: %v", err)
	}
	if entries, _ := os.ReadDir(registry); len(entries) != 0 {
		t.Errorf("registry not emptied: %v", entries)
	}
}
