package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/podflow/podflow/internal/api/gen"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/store"
)

// The two streaming operations. Both answer their errors (unknown run,
// task, try; a bad token) before the stream starts, then write through the
// generated code's response hook and hold no database connection between
// reads: the server's Watcher wakes them.

func (s *Server) WaitDagRun(ctx context.Context, req gen.WaitDagRunRequestObject) (gen.WaitDagRunResponseObject, error) {
	run, err := s.st.Run(ctx, req.DagId, req.DagRunId)
	if err != nil {
		return nil, err
	}
	interval := 5 * time.Second
	if req.Params.Interval != nil {
		interval = time.Duration(float64(*req.Params.Interval) * float64(time.Second))
	}
	return &waitStream{s: s, ctx: ctx, run: run, interval: interval, results: deref(req.Params.Result)}, nil
}

type waitStream struct {
	s        *Server
	ctx      context.Context
	run      store.Run
	interval time.Duration
	results  []string
}

func runEnded(state string) bool { return state == runstate.RunSuccess || state == runstate.RunFailed }

func (ws *waitStream) VisitWaitDagRunResponse(w http.ResponseWriter) error {
	watch := ws.s.watch.WatchRun(ws.run.PK)
	defer watch.Close()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	flush := func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	state := ws.run.State
	tick := time.NewTicker(ws.interval)
	defer tick.Stop()
	for {
		line := gen.DAGRunWaitLine{State: gen.DagRunState(state)}
		if runEnded(state) && len(ws.results) > 0 {
			results := ws.s.runResults(ws.ctx, ws.run, ws.results)
			line.Results = &results
		}
		if err := enc.Encode(line); err != nil {
			return nil // the client went away
		}
		flush()
		if runEnded(state) {
			return nil
		}
	wait:
		for {
			select {
			case <-ws.ctx.Done():
				return nil
			case <-tick.C:
				break wait // a line at least every interval
			case next := <-watch.C:
				if next == "" {
					return nil // the run was deleted
				}
				if next != state {
					state = next
					break wait
				}
			}
		}
	}
}

// runResults are the return_value XComs of the named tasks of a run.
func (s *Server) runResults(ctx context.Context, run store.Run, taskIDs []string) map[string]any {
	out := map[string]any{}
	for _, id := range taskIDs {
		v, ok, err := s.st.XCom(ctx, run.DagID, run.RunID, id, "return_value")
		if err != nil || !ok {
			out[id] = nil
			continue
		}
		out[id] = v
	}
	return out
}

// logPageSize is how many lines a log read takes at most.
const logPageSize = 1000

func (s *Server) GetLog(ctx context.Context, req gen.GetLogRequestObject) (gen.GetLogResponseObject, error) {
	ti, err := s.taskInstance(ctx, s.st.Q, req.DagId, req.DagRunId, req.TaskId, req.Params.MapIndex)
	if err != nil {
		return nil, err
	}
	if req.TryNumber > ti.TryNumber {
		return nil, fmt.Errorf("task %s of run %s has no try %d (it is at try %d): %w", ti.TaskID, ti.RunID, req.TryNumber, ti.TryNumber, store.ErrNotFound)
	}
	var after int64
	if t := deref(req.Params.Token); t != "" {
		if after, err = strconv.ParseInt(t, 10, 64); err != nil || after < 0 {
			return nil, newProblem(http.StatusBadRequest, "query parameter \"token\": %q is not a continuation token this API gave", t)
		}
	}
	limit := logPageSize
	if req.Params.Limit != nil {
		limit = *req.Params.Limit
	}
	if strings.Contains(callerOf(ctx).accept, "text/event-stream") {
		return &logStream{s: s, ctx: ctx, ti: ti, try: req.TryNumber, after: after}, nil
	}
	live := tryLive(ti, req.TryNumber) // read before the lines: a try that had ended has flushed them
	if deref(req.Params.Tail) || req.Params.Before != nil {
		return s.logBefore(ctx, ti, req, limit)
	}
	lines, err := s.st.LogPage(ctx, ti.ID, req.TryNumber, after, limit)
	if err != nil {
		return nil, err
	}
	out := gen.GetLog200JSONResponse{Content: make([]gen.LogLine, 0, len(lines))}
	for _, l := range lines {
		out.Content = append(out.Content, gen.LogLine{LineNumber: l.ID, Timestamp: l.At, Source: l.Source, Line: s.mask(ctx, l.Line)})
		after = l.ID
	}
	if live || len(lines) == limit {
		token := strconv.FormatInt(after, 10)
		out.ContinuationToken = &token
	}
	return out, nil
}

// logBefore reads backwards: the tail of a log, or the lines before a
// previous_token. Its continuation_token is where a follow goes on from
// (always set on a tail read, so a live follow picks up after the tail).
func (s *Server) logBefore(ctx context.Context, ti store.TaskInstance, req gen.GetLogRequestObject, limit int) (gen.GetLogResponseObject, error) {
	var before int64
	if t := deref(req.Params.Before); t != "" {
		var err error
		if before, err = strconv.ParseInt(t, 10, 64); err != nil || before < 1 {
			return nil, newProblem(http.StatusBadRequest, "query parameter \"before\": %q is not a previous_token this API gave", t)
		}
	}
	lines, err := s.st.LogPageBefore(ctx, ti.ID, req.TryNumber, before, limit)
	if err != nil {
		return nil, err
	}
	out := gen.GetLog200JSONResponse{Content: make([]gen.LogLine, 0, len(lines))}
	for _, l := range lines {
		out.Content = append(out.Content, gen.LogLine{LineNumber: l.ID, Timestamp: l.At, Source: l.Source, Line: s.mask(ctx, l.Line)})
	}
	if len(lines) == limit {
		prev := strconv.FormatInt(lines[0].ID, 10)
		out.PreviousToken = &prev
	}
	if deref(req.Params.Tail) {
		last := before
		if len(lines) > 0 {
			last = lines[len(lines)-1].ID
		}
		token := strconv.FormatInt(last, 10)
		out.ContinuationToken = &token
	}
	return out, nil
}

type logStream struct {
	s     *Server
	ctx   context.Context
	ti    store.TaskInstance
	try   int
	after int64
}

// VisitGetLogResponse follows the try over Server-Sent Events: each line
// as an event "log" (id = its continuation token), then "end" with the task
// instance's state once the try has ended and every line was sent.
func (ls *logStream) VisitGetLogResponse(w http.ResponseWriter) error {
	tick := ls.s.watch.Ticks()
	defer tick.Close()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	flush := func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	flush()
	for {
		ti, err := ls.s.st.TaskInstanceByID(ls.ctx, ls.ti.ID)
		if err != nil {
			fmt.Fprintf(w, "event: end\ndata: {\"state\": null}\n\n")
			return nil
		}
		live := tryLive(ti, ls.try)
		lines, err := ls.s.st.LogPage(ls.ctx, ti.ID, ls.try, ls.after, logPageSize)
		if err != nil {
			return nil
		}
		for _, l := range lines {
			data, _ := json.Marshal(gen.LogLine{LineNumber: l.ID, Timestamp: l.At, Source: l.Source, Line: ls.s.mask(ls.ctx, l.Line)})
			if _, err := fmt.Fprintf(w, "id: %d\nevent: log\ndata: %s\n\n", l.ID, data); err != nil {
				return nil
			}
			ls.after = l.ID
		}
		flush()
		if len(lines) == logPageSize {
			continue
		}
		if !live {
			fmt.Fprintf(w, "event: end\ndata: {\"state\": %q}\n\n", ti.State)
			flush()
			return nil
		}
		select {
		case <-ls.ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
