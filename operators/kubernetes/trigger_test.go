package kubernetes

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/podflow/podflow/operators"
)

// A pod's final state becomes a trigger event and back, unchanged; the
// event's status is the contract's.
func TestPodTriggerEventRoundTrip(t *testing.T) {
	t.Parallel()
	zero, one := int32(0), int32(1)
	for _, tc := range []struct {
		pe   PodEvent
		want operators.EventStatus
	}{
		{PodEvent{Status: PodSucceeded, Namespace: "ns", Name: "p", ExitCode: &zero, Reason: "Completed"}, operators.EventSuccess},
		{PodEvent{Status: PodFailed, Namespace: "ns", Name: "p", ExitCode: &one, Reason: "Error", Message: "boom"}, operators.EventFailed},
		{DeletedEvent("ns", "p"), operators.EventError},
		{PodEvent{Status: PodError, Namespace: "ns", Name: "p", Reason: ReasonStartupTimeout, Message: "no start"}, operators.EventError},
	} {
		ev, err := podTriggerEvent(tc.pe)
		if err != nil || ev.Status != tc.want || ev.Message != tc.pe.Message {
			t.Errorf("%s: event %+v, %v; want status %s", tc.pe.Status, ev, err, tc.want)
			continue
		}
		raw, _ := json.Marshal(ev)
		decoded, err := operators.DecodeEvent(raw)
		if err != nil {
			t.Fatal(err)
		}
		back, err := podEventOf(decoded)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(back)
		b, _ := json.Marshal(tc.pe)
		if string(a) != string(b) {
			t.Errorf("round trip: %s, want %s", a, b)
		}
	}
}

func TestPodEventOf(t *testing.T) {
	t.Parallel()
	// An error the triggerer wrote itself has no pod state.
	pe, err := podEventOf(operators.ErrorEvent("cluster unreachable"))
	if err != nil || pe.Status != PodError || pe.Message != "cluster unreachable" {
		t.Errorf("triggerer error: %+v, %v", pe, err)
	}
	for _, ev := range []operators.Event{
		{Status: operators.EventSuccess},
		{Status: operators.EventFailed, Detail: json.RawMessage(`{"status":"running"}`)},
		{Status: operators.EventFailed, Detail: json.RawMessage(`[1]`)},
	} {
		if pe, err := podEventOf(ev); err == nil {
			t.Errorf("%+v: read as %+v, want an error", ev, pe)
		}
	}
	if _, err := podEventOf(operators.Event{Status: operators.EventSuccess}); !strings.Contains(err.Error(), "without the pod's state") {
		t.Errorf("error %v", err)
	}
}
