package api

import (
	"context"
	"encoding/json"

	"github.com/podflow/podflow/internal/api/gen"
	"github.com/podflow/podflow/internal/store"
)

// maxRunAlerts bounds the alerts one run's page lists.
const maxRunAlerts = 1000

func (s *Server) GetDagRunAlerts(ctx context.Context, req gen.GetDagRunAlertsRequestObject) (gen.GetDagRunAlertsResponseObject, error) {
	run, err := s.st.Run(ctx, req.DagId, req.DagRunId)
	if err != nil {
		return nil, err
	}
	list, err := s.st.ListAlerts(ctx, store.AlertFilter{DagID: run.DagID, RunID: run.RunID, Limit: maxRunAlerts})
	if err != nil {
		return nil, err
	}
	out := gen.GetDagRunAlerts200JSONResponse{Alerts: []gen.Alert{}, TotalEntries: len(list)}
	for _, a := range list {
		atts, err := s.st.AlertAttempts(ctx, a.ID)
		if err != nil {
			return nil, err
		}
		ga := gen.Alert{AlertId: a.ID, Event: gen.AlertEvent(a.Event), Notifier: a.Notifier, DagId: a.DagID, DagRunId: a.RunID,
			TaskId: a.TaskID, TryNumber: a.TryNumber, State: gen.AlertState(a.State), Attempts: a.Attempts,
			CreatedAt: a.CreatedAt, SentAt: a.SentAt, LastError: optional(a.LastError), Payload: map[string]any{},
			DeliveryAttempts: []gen.AlertAttempt{}}
		if err := json.Unmarshal(a.Payload, &ga.Payload); err != nil {
			return nil, err
		}
		for _, t := range atts {
			ga.DeliveryAttempts = append(ga.DeliveryAttempts, gen.AlertAttempt{Attempt: t.Attempt, At: t.At,
				DurationMs: int(t.Duration.Milliseconds()), StatusCode: optionalInt(t.StatusCode),
				Response: optional(t.Response), Error: optional(t.Error)})
		}
		out.Alerts = append(out.Alerts, ga)
	}
	return out, nil
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func optionalInt(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}
