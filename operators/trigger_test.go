package operators_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/operators"
)

func TestDecodeEvent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw     string
		want    operators.EventStatus
		wantErr string
	}{
		{raw: `{"status":"success"}`, want: operators.EventSuccess},
		{raw: `{"status":"failed","message":"exit 1","detail":{"exit_code":1}}`, want: operators.EventFailed},
		{raw: `{"status":"error","message":"pod deleted"}`, want: operators.EventError},
		{raw: `{"status":"timeout","message":"deadline passed"}`, want: operators.EventTimeout},
		{raw: `{"status":"succeeded"}`, wantErr: `unknown status "succeeded"`},
		{raw: `{}`, wantErr: `unknown status ""`},
		{raw: `not json`, wantErr: "invalid character"},
	} {
		ev, err := operators.DecodeEvent([]byte(tc.raw))
		switch {
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("DecodeEvent(%s) = %+v, %v; want error %q", tc.raw, ev, err, tc.wantErr)
		case tc.wantErr == "" && (err != nil || ev.Status != tc.want):
			t.Errorf("DecodeEvent(%s) = %+v, %v; want status %s", tc.raw, ev, err, tc.want)
		}
	}
}

// Every status survives the trip through the database (JSON) unchanged.
func TestEventStatusesRoundTrip(t *testing.T) {
	t.Parallel()
	for _, s := range operators.EventStatuses() {
		raw, err := json.Marshal(operators.Event{Status: s, Message: "m", Detail: json.RawMessage(`{"a":1}`)})
		if err != nil {
			t.Fatal(err)
		}
		ev, err := operators.DecodeEvent(raw)
		if err != nil || ev.Status != s || ev.Message != "m" || string(ev.Detail) != `{"a":1}` {
			t.Errorf("%s: decoded %+v, %v", s, ev, err)
		}
	}
}

type waitTrigger struct{ kind string }

func (w waitTrigger) Kind() string { return w.kind }
func (waitTrigger) Run(context.Context, json.RawMessage) (operators.Event, error) {
	return operators.Event{Status: operators.EventSuccess}, nil
}

type otherTrigger struct{ waitTrigger }

// deferring is a deferrable operator declaring the given triggers.
type deferring struct {
	name     string
	triggers []operators.Trigger
}

func (d deferring) Schema() *dag.OperatorSchema { return &dag.OperatorSchema{Name: d.name} }
func (deferring) Execute(context.Context, *operators.TaskContext) (*operators.Result, error) {
	return nil, nil
}
func (deferring) Resume(context.Context, *operators.TaskContext, string, operators.Event) (*operators.Result, error) {
	return nil, nil
}
func (d deferring) Triggers() []operators.Trigger { return d.triggers }

type plain struct{}

func (plain) Schema() *dag.OperatorSchema { return &dag.OperatorSchema{Name: "plain"} }
func (plain) Execute(context.Context, *operators.TaskContext) (*operators.Result, error) {
	return nil, nil
}

// Registering an operator registers its trigger kinds; two operators may
// share a kind with the same trigger type.
func TestRegistryCollectsTriggers(t *testing.T) {
	t.Parallel()
	r := operators.NewRegistry(plain{},
		deferring{name: "a", triggers: []operators.Trigger{waitTrigger{"wait"}, waitTrigger{"poll"}}},
		deferring{name: "b", triggers: []operators.Trigger{waitTrigger{"wait"}}})
	got := r.Triggers()
	if len(got) != 2 || got["wait"] == nil || got["poll"] == nil {
		t.Fatalf("triggers %v, want wait and poll", got)
	}
	delete(got, "wait")
	if r.Triggers()["wait"] == nil {
		t.Error("Triggers hands out the registry's own map")
	}
	if _, ok := r.Lookup("a"); !ok {
		t.Error("operator a not registered")
	}
}

func TestRegistryRejectsOneKindWithTwoTriggerTypes(t *testing.T) {
	t.Parallel()
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), `trigger kind "wait"`) {
			t.Errorf("recovered %v, want a panic naming the kind", r)
		}
	}()
	operators.NewRegistry(
		deferring{name: "a", triggers: []operators.Trigger{waitTrigger{"wait"}}},
		deferring{name: "b", triggers: []operators.Trigger{otherTrigger{waitTrigger{"wait"}}}})
}
