package node

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/node/api"
)

func TestContainerLogServesTailTimestampsAndFollow(t *testing.T) {
	l, err := newContainerLog(filepath.Join(t.TempDir(), "0.log"))
	if err != nil {
		t.Fatal(err)
	}
	out, errOut := l.stream("stdout"), l.stream("stderr")
	_, _ = out.Write([]byte("one\ntw"))
	_, _ = errOut.Write([]byte("oops\n"))
	_, _ = out.Write([]byte("o\n"))

	read := func(opts api.ContainerLogOpts) string {
		r, err := l.read(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(r)
		return string(data)
	}
	if got := read(api.ContainerLogOpts{}); got != "one\noops\ntwo\n" {
		t.Errorf("all: %q", got)
	}
	if got := read(api.ContainerLogOpts{Tail: 1}); got != "two\n" {
		t.Errorf("tail 1: %q", got)
	}
	if got := read(api.ContainerLogOpts{LimitBytes: 5}); got != "one\no" {
		t.Errorf("limit 5: %q", got)
	}
	if got := read(api.ContainerLogOpts{Timestamps: true}); len(got) < 30 || got[4] != '-' {
		t.Errorf("timestamps: %q", got)
	}

	followed := make(chan string, 1)
	go func() { followed <- read(api.ContainerLogOpts{Follow: true}) }()
	_, _ = out.Write([]byte("three\nfour"))
	out.flush()
	l.finish()
	select {
	case got := <-followed:
		if got != "one\noops\ntwo\nthree\nfour" {
			t.Errorf("follow: %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end when the log finished")
	}
}

func TestContainerLogKeepsAMissingFinalNewline(t *testing.T) {
	l, err := newContainerLog(filepath.Join(t.TempDir(), "0.log"))
	if err != nil {
		t.Fatal(err)
	}
	out := l.stream("stdout")
	_, _ = out.Write([]byte("line\nno newline"))
	out.flush()
	l.finish()
	r, err := l.read(context.Background(), api.ContainerLogOpts{})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(r)
	if string(data) != "line\nno newline" {
		t.Errorf("got %q", data)
	}
}
