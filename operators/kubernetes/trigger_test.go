package kubernetes

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

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

// A progress event names the running pod and carries the log cursors
// through the database; one that names no running pod is refused.
func TestProgressEventRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 30, 12, 0, 0, 123456789, time.UTC)
	args := TriggerArgs{Namespace: "ns", Name: "p", LoggingIntervalSeconds: 5,
		LogCursors: LogCursors{"base": {TS: at, AtLast: 2}}}
	ev, err := progressEvent(args)
	if err != nil || ev.Status != operators.EventProgress {
		t.Fatalf("progressEvent = %+v, %v", ev, err)
	}
	raw, _ := json.Marshal(ev)
	decoded, err := operators.DecodeEvent(raw)
	if err != nil {
		t.Fatal(err)
	}
	pe, err := progressOf(decoded)
	if err != nil || pe.Namespace != "ns" || pe.Name != "p" || !pe.LogCursors["base"].TS.Equal(at) || pe.LogCursors["base"].AtLast != 2 {
		t.Errorf("progressOf = %+v, %v; want ns/p with the base cursor", pe, err)
	}
	for _, detail := range []string{`{"status":"succeeded","namespace":"ns","name":"p"}`, `{"status":"running"}`, `[1]`} {
		if pe, err := progressOf(operators.Event{Status: operators.EventProgress, Detail: json.RawMessage(detail)}); err == nil {
			t.Errorf("progress detail %s read as %+v, want an error", detail, pe)
		}
	}
}
