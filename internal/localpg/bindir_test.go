package localpg

import (
	"errors"
	"strings"
	"testing"
)

func TestBinDir(t *testing.T) {
	dir, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("BinDir: %s", dir)
	t.Setenv("PODFLOW_PG_BIN", t.TempDir())
	_, err = BinDir()
	if !errors.Is(err, ErrNoPostgres) || !strings.Contains(err.Error(), "PODFLOW_PG_BIN") {
		t.Fatalf("BinDir with an empty PODFLOW_PG_BIN: %v, want ErrNoPostgres naming PODFLOW_PG_BIN", err)
	}
}

func TestVersionOrder(t *testing.T) {
	if !versionLess(versionOf("/usr/lib/postgresql/9.6/bin"), versionOf("/usr/lib/postgresql/15/bin")) ||
		!versionLess(versionOf("/usr/lib/postgresql/15/bin"), versionOf("/usr/pgsql-16/bin")) {
		t.Fatal("version order wrong")
	}
}
