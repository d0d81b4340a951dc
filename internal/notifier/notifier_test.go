package notifier_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/podflow/podflow/internal/localenv/pgtest"
	"github.com/podflow/podflow/internal/notifier"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func receive(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("no wake-up: %s", what)
	}
}

func TestSubscribersOfAChannelAreWoken(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	n := notifier.New(cfg, nil, "chan_a", "chan_b")
	a1, _ := n.Subscribe("chan_a")
	a2, _ := n.Subscribe("chan_a")
	b, _ := n.Subscribe("chan_b")
	if _, err := n.Subscribe("chan_c"); err == nil {
		t.Error("subscribed to a channel the notifier does not listen on")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// The first wake-up after connecting, for every subscriber.
	receive(t, a1.C, "a1 after connecting")
	receive(t, a2.C, "a2 after connecting")
	receive(t, b.C, "b after connecting")

	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	a2.Close()
	// Notifications are delivered once LISTEN is in place; send until the
	// subscriber wakes (the wake-up above may precede nothing else).
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := conn.Exec(context.Background(), "SELECT pg_notify('chan_a', 'x')"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-a1.C:
		case <-time.After(50 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("a1 never woken by a notification")
			}
			continue
		}
		break
	}
	select {
	case <-b.C:
		t.Error("a notification on chan_a woke chan_b's subscriber")
	case <-a2.C:
		t.Error("a closed subscription was woken")
	case <-time.After(200 * time.Millisecond):
	}
}
