package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/podflow/podflow/internal/api/gen"
	"github.com/podflow/podflow/internal/store"
)

// podEventsTimeout bounds the read of a pod's events from Kubernetes.
const podEventsTimeout = 10 * time.Second

// GetPodEvents reads the events of a pod task's pod (the one its latest try
// ran) from Kubernetes. Event messages pass the secret masker like
// everything else the API shows.
func (s *Server) GetPodEvents(ctx context.Context, req gen.GetPodEventsRequestObject) (gen.GetPodEventsResponseObject, error) {
	ti, err := s.taskInstance(ctx, s.st.Q, req.DagId, req.DagRunId, req.TaskId, req.Params.MapIndex)
	if err != nil {
		return nil, err
	}
	if ti.ExternalName == "" {
		return nil, fmt.Errorf("task %s of run %s has no pod (not a pod task, or its pod was not created yet): %w", ti.TaskID, ti.RunID, store.ErrNotFound)
	}
	if s.podEvents == nil {
		return nil, newProblem(http.StatusServiceUnavailable, "this server has no Kubernetes access to read the events of pod %s/%s "+
			"(give the webserver a kubeconfig: KUBECONFIG, or run it in the cluster with a service account that may list events)", ti.ExternalNS, ti.ExternalName)
	}
	// A cluster that does not answer must not hold the page.
	kctx, cancel := context.WithTimeout(ctx, podEventsTimeout)
	defer cancel()
	events, err := s.podEvents(kctx, ti.ExternalNS, ti.ExternalName)
	if err != nil {
		return nil, newProblem(http.StatusServiceUnavailable, "%s", s.mask(ctx, err.Error()))
	}
	out := gen.GetPodEvents200JSONResponse{Namespace: ti.ExternalNS, PodName: ti.ExternalName, Events: make([]gen.PodEvent, 0, len(events))}
	for _, e := range events {
		out.Events = append(out.Events, gen.PodEvent{Time: e.Time, Type: e.Type, Reason: e.Reason, Message: s.mask(ctx, e.Message), Count: e.Count})
	}
	return out, nil
}
