package timesensor

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/podflow/podflow/operators"
)

// TriggerKind is the trigger kind of a time wait.
const TriggerKind = "time"

// Args are a time trigger's arguments.
type Args struct {
	Moment time.Time `json:"moment"`
}

// Trigger is the "time" trigger kind: it fires at the moment.
type Trigger struct{}

var (
	_ operators.Trigger  = Trigger{}
	_ operators.Deferrer = Delta{}
	_ operators.Deferrer = DateTime{}
)

// Kind is "time".
func (Trigger) Kind() string { return TriggerKind }

// Run waits until the moment.
func (Trigger) Run(ctx context.Context, raw json.RawMessage) (operators.Event, error) {
	var a Args
	if err := json.Unmarshal(raw, &a); err != nil {
		return operators.Event{}, fmt.Errorf("time trigger args %q: %w", raw, err)
	}
	t := time.NewTimer(time.Until(a.Moment))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return operators.Event{}, ctx.Err()
	case <-t.C:
		return operators.Event{Status: operators.EventSuccess}, nil
	}
}
