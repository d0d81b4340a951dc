package kubernetes

import (
	"errors"
	"strings"
	"testing"
)

func TestCappedBufferKeepsAtMostMax(t *testing.T) {
	b := &cappedBuffer{max: 10}
	if n, err := b.Write([]byte("12345")); n != 5 || err != nil {
		t.Fatalf("first write = %d, %v", n, err)
	}
	n, err := b.Write([]byte(strings.Repeat("x", 1000)))
	if n != 5 || !errors.Is(err, errOutputTooLarge) {
		t.Fatalf("overflowing write = %d, %v; want 5, errOutputTooLarge", n, err)
	}
	if b.String() != "12345xxxxx" {
		t.Errorf("kept %q", b.String())
	}
	if n, err := b.Write([]byte("y")); n != 0 || err == nil {
		t.Errorf("write to a full buffer = %d, %v", n, err)
	}
}

func TestReadScriptReadsAtMostLimitPlusOne(t *testing.T) {
	if !strings.Contains(readAndStopScript, "head -c 1048577 ") {
		t.Errorf("readAndStopScript = %q, want head -c 1048577", readAndStopScript)
	}
}
