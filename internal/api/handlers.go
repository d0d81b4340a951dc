package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/podflow/podflow/api"
	"github.com/podflow/podflow/internal/api/gen"
	"github.com/podflow/podflow/internal/auth"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
)

var _ gen.StrictServerInterface = (*Server)(nil)

// event is an audit-log entry for a change this request makes.
func event(ctx context.Context, name, dagID, runID, taskID string, extra map[string]any) store.EventLog {
	c := callerOf(ctx)
	e := store.EventLog{Actor: c.principal.Actor(), Source: c.remote, Event: name, DagID: dagID, RunID: runID, TaskID: taskID}
	if len(extra) > 0 {
		e.Extra, _ = json.Marshal(extra)
	}
	return e
}

// --- DAGs ---

func (s *Server) GetDags(ctx context.Context, req gen.GetDagsRequestObject) (gen.GetDagsResponseObject, error) {
	p := req.Params
	limit, offset := page(p.Limit, p.Offset)
	rows, total, err := s.st.ListDags(ctx, store.DagFilter{Tags: deref(p.Tags), Paused: p.Paused, IDPattern: deref(p.DagIdPattern),
		HasImportErrors: p.HasImportErrors, OrderBy: deref(p.OrderBy), Limit: limit, Offset: offset})
	if err != nil {
		return nil, err
	}
	out := gen.GetDags200JSONResponse{Dags: []gen.DAG{}, TotalEntries: total}
	for _, d := range rows {
		out.Dags = append(out.Dags, dagOf(d.DagRow, d.Tags))
	}
	return out, nil
}

func (s *Server) getDag(ctx context.Context, q store.Q, dagID string) (gen.DAG, error) {
	d, err := q.Dag(ctx, dagID)
	if err != nil {
		return gen.DAG{}, err
	}
	tags, err := q.DagTags(ctx, dagID)
	if err != nil {
		return gen.DAG{}, err
	}
	return dagOf(d, tags), nil
}

func (s *Server) GetDag(ctx context.Context, req gen.GetDagRequestObject) (gen.GetDagResponseObject, error) {
	d, err := s.getDag(ctx, s.st.Q, req.DagId)
	return gen.GetDag200JSONResponse(d), err
}

func (s *Server) PatchDag(ctx context.Context, req gen.PatchDagRequestObject) (gen.PatchDagResponseObject, error) {
	name := "unpause"
	if req.Body.IsPaused {
		name = "pause"
	}
	err := s.st.InTx(ctx, func(q store.Q) error {
		if err := q.SetPaused(ctx, req.DagId, req.Body.IsPaused); err != nil {
			return err
		}
		return q.RecordEvent(ctx, event(ctx, name, req.DagId, "", "", nil))
	})
	if err != nil {
		return nil, err
	}
	d, err := s.getDag(ctx, s.st.Q, req.DagId)
	return gen.PatchDag200JSONResponse(d), err
}

func (s *Server) GetDagSource(ctx context.Context, req gen.GetDagSourceRequestObject) (gen.GetDagSourceResponseObject, error) {
	d, err := s.st.Dag(ctx, req.DagId)
	if err != nil {
		return nil, err
	}
	if d.Hash == "" {
		return nil, fmt.Errorf("dag %q has no good version: %w", req.DagId, store.ErrNotFound)
	}
	src, path, err := s.st.DagSource(ctx, d.Hash)
	if err != nil {
		return nil, err
	}
	return gen.GetDagSource200JSONResponse{DagId: d.DagID, VersionHash: d.Hash, Fileloc: path, Content: string(src)}, nil
}

func (s *Server) GetDagVersions(ctx context.Context, req gen.GetDagVersionsRequestObject) (gen.GetDagVersionsResponseObject, error) {
	if _, err := s.st.Dag(ctx, req.DagId); err != nil {
		return nil, err
	}
	limit, offset := page(req.Params.Limit, req.Params.Offset)
	vs, total, err := s.st.DagVersions(ctx, req.DagId, limit, offset)
	if err != nil {
		return nil, err
	}
	out := gen.GetDagVersions200JSONResponse{DagVersions: []gen.DAGVersion{}, TotalEntries: total}
	for _, v := range vs {
		out.DagVersions = append(out.DagVersions, gen.DAGVersion{DagId: v.DagID, VersionHash: v.Hash, Fileloc: v.Path, CreatedAt: v.CreatedAt, Source: string(v.Source)})
	}
	return out, nil
}

func (s *Server) GetImportErrors(ctx context.Context, req gen.GetImportErrorsRequestObject) (gen.GetImportErrorsResponseObject, error) {
	limit, offset := page(req.Params.Limit, req.Params.Offset)
	es, total, err := s.st.ImportErrors(ctx, limit, offset)
	if err != nil {
		return nil, err
	}
	out := gen.GetImportErrors200JSONResponse{ImportErrors: []gen.ImportError{}, TotalEntries: total}
	for _, e := range es {
		ie := gen.ImportError{Filename: e.Path, StackTrace: e.Errors, Timestamp: e.At}
		if e.DagID != "" {
			ie.DagId = &e.DagID
		}
		out.ImportErrors = append(out.ImportErrors, ie)
	}
	return out, nil
}

// --- DAG runs ---

// allDags is the dag_id that lists the runs of every DAG, as in Airflow.
const allDags = "~"

func (s *Server) GetDagRuns(ctx context.Context, req gen.GetDagRunsRequestObject) (gen.GetDagRunsResponseObject, error) {
	p := req.Params
	f := store.RunFilter{OrderBy: deref(p.OrderBy), LogicalGTE: deref(p.LogicalDateGte), LogicalLTE: deref(p.LogicalDateLte),
		StartGTE: deref(p.StartDateGte), StartLTE: deref(p.StartDateLte)}
	f.Limit, f.Offset = page(p.Limit, p.Offset)
	for _, st := range deref(p.State) {
		f.States = append(f.States, string(st))
	}
	if req.DagId != allDags {
		if _, err := s.st.Dag(ctx, req.DagId); err != nil {
			return nil, err
		}
		f.DagID = req.DagId
	}
	runs, total, err := s.st.ListRuns(ctx, f)
	if err != nil {
		return nil, err
	}
	out := gen.GetDagRuns200JSONResponse{DagRuns: make([]gen.DAGRun, 0, len(runs)), TotalEntries: total}
	for _, r := range runs {
		out.DagRuns = append(out.DagRuns, runOf(r))
	}
	return out, nil
}

func (s *Server) TriggerDagRun(ctx context.Context, req gen.TriggerDagRunRequestObject) (gen.TriggerDagRunResponseObject, error) {
	row, err := s.st.Dag(ctx, req.DagId)
	if err != nil {
		return nil, err
	}
	if !row.Active {
		return nil, newProblem(http.StatusConflict, "DAG %s is inactive: its file %s was removed from the DAGs folder; put it back to trigger it", row.DagID, row.Path)
	}
	d, err := scheduler.CurrentDAG(ctx, s.st.Q, s.parser, req.DagId)
	if err != nil {
		return nil, err
	}
	logical := time.Now().UTC().Truncate(time.Microsecond)
	if req.Body.LogicalDate != nil {
		logical = req.Body.LogicalDate.UTC()
	}
	var conf []byte
	if req.Body.Conf != nil {
		if conf, err = json.Marshal(req.Body.Conf); err != nil {
			return nil, newProblem(http.StatusBadRequest, "conf: %s", err)
		}
	}
	runID := deref(req.Body.DagRunId)
	err = s.st.InTx(ctx, func(q store.Q) error {
		id, created, err := scheduler.CreateRunWithID(ctx, q, d, "manual", runID, logical, conf)
		if err != nil {
			return err
		}
		if !created {
			return newProblem(http.StatusConflict, "a run %s of %s exists already", id, d.ID)
		}
		runID = id
		return q.RecordEvent(ctx, event(ctx, "trigger", d.ID, id, "", nil))
	})
	if err != nil {
		return nil, err
	}
	run, err := s.st.Run(ctx, d.ID, runID)
	if err != nil {
		return nil, err
	}
	return gen.TriggerDagRun200JSONResponse(runOf(run)), nil
}

func (s *Server) GetDagRun(ctx context.Context, req gen.GetDagRunRequestObject) (gen.GetDagRunResponseObject, error) {
	run, err := s.st.Run(ctx, req.DagId, req.DagRunId)
	if err != nil {
		return nil, err
	}
	return gen.GetDagRun200JSONResponse(runOf(run)), nil
}

func (s *Server) PatchDagRun(ctx context.Context, req gen.PatchDagRunRequestObject) (gen.PatchDagRunResponseObject, error) {
	state := string(req.Body.State)
	err := s.st.InTx(ctx, func(q store.Q) error {
		run, err := q.Run(ctx, req.DagId, req.DagRunId)
		if err != nil {
			return err
		}
		changed, err := q.MarkRun(ctx, run.PK, state)
		if err != nil || !changed {
			return err
		}
		return q.RecordEvent(ctx, event(ctx, "mark_run", run.DagID, run.RunID, "", map[string]any{"state": state}))
	})
	if err != nil {
		return nil, err
	}
	run, err := s.st.Run(ctx, req.DagId, req.DagRunId)
	if err != nil {
		return nil, err
	}
	return gen.PatchDagRun200JSONResponse(runOf(run)), nil
}

func (s *Server) DeleteDagRun(ctx context.Context, req gen.DeleteDagRunRequestObject) (gen.DeleteDagRunResponseObject, error) {
	err := s.st.InTx(ctx, func(q store.Q) error {
		run, err := q.Run(ctx, req.DagId, req.DagRunId)
		if err != nil {
			return err
		}
		if err := q.DeleteRun(ctx, run); err != nil {
			return err
		}
		return q.RecordEvent(ctx, event(ctx, "delete_run", run.DagID, run.RunID, "", nil))
	})
	if err != nil {
		return nil, err
	}
	return gen.DeleteDagRun204Response{}, nil
}

func (s *Server) ClearDagRun(ctx context.Context, req gen.ClearDagRunRequestObject) (gen.ClearDagRunResponseObject, error) {
	ids, run, err := s.clear(ctx, req.DagId, req.DagRunId, scheduler.ClearRequest{
		OnlyFailed: deref(req.Body.OnlyFailed), DryRun: req.Body.DryRun == nil || *req.Body.DryRun,
		UseLatestVersion: deref(req.Body.UseLatestVersion)})
	if err != nil {
		return nil, err
	}
	return gen.ClearDagRun200JSONResponse(refOf(run.DagID, run.RunID, ids)), nil
}

func (s *Server) ClearTaskInstances(ctx context.Context, req gen.ClearTaskInstancesRequestObject) (gen.ClearTaskInstancesResponseObject, error) {
	b := req.Body
	ids, run, err := s.clear(ctx, req.DagId, b.DagRunId, scheduler.ClearRequest{TaskIDs: deref(b.TaskIds),
		IncludeDownstream: deref(b.IncludeDownstream), OnlyFailed: deref(b.OnlyFailed), DryRun: b.DryRun == nil || *b.DryRun,
		UseLatestVersion: deref(b.UseLatestVersion), MapIndex: b.MapIndex})
	if err != nil {
		return nil, err
	}
	return gen.ClearTaskInstances200JSONResponse(refOf(run.DagID, run.RunID, ids)), nil
}

// clear is both clear operations: scheduler.ClearRun, as `podflow clear`,
// with the audit event recorded in its transaction.
func (s *Server) clear(ctx context.Context, dagID, runID string, req scheduler.ClearRequest) ([]string, store.Run, error) {
	run, err := s.st.Run(ctx, dagID, runID)
	if err != nil {
		return nil, run, err
	}
	if !req.DryRun {
		e := event(ctx, "clear", dagID, runID, strings.Join(req.TaskIDs, ","), map[string]any{
			"task_ids": req.TaskIDs, "include_downstream": req.IncludeDownstream, "only_failed": req.OnlyFailed,
			"use_latest_version": req.UseLatestVersion, "map_index": req.MapIndex})
		req.Audit = &e
	}
	ids, err := scheduler.ClearRun(ctx, s.st, s.parser, run, req)
	return ids, run, err
}

// --- task instances ---

// taskInstance finds a run's task instance by the path and map index.
func (s *Server) taskInstance(ctx context.Context, q store.Q, dagID, runID, taskID string, mapIndex *int) (store.TaskInstance, error) {
	run, err := q.Run(ctx, dagID, runID)
	if err != nil {
		return store.TaskInstance{}, err
	}
	mi := -1
	if mapIndex != nil {
		mi = *mapIndex
	}
	return q.TaskInstanceAt(ctx, run.PK, taskID, mi)
}

func (s *Server) GetTaskInstances(ctx context.Context, req gen.GetTaskInstancesRequestObject) (gen.GetTaskInstancesResponseObject, error) {
	run, err := s.st.Run(ctx, req.DagId, req.DagRunId)
	if err != nil {
		return nil, err
	}
	var states []string
	for _, st := range deref(req.Params.State) {
		states = append(states, string(st))
	}
	limit, offset := page(req.Params.Limit, req.Params.Offset)
	tis, total, err := s.st.ListTaskInstances(ctx, run.PK, states, limit, offset)
	if err != nil {
		return nil, err
	}
	out := gen.GetTaskInstances200JSONResponse{TaskInstances: []gen.TaskInstance{}, TotalEntries: total}
	for _, t := range tis {
		out.TaskInstances = append(out.TaskInstances, taskInstanceOf(t))
	}
	return out, nil
}

func (s *Server) GetTaskInstance(ctx context.Context, req gen.GetTaskInstanceRequestObject) (gen.GetTaskInstanceResponseObject, error) {
	ti, err := s.taskInstance(ctx, s.st.Q, req.DagId, req.DagRunId, req.TaskId, req.Params.MapIndex)
	if err != nil {
		return nil, err
	}
	return gen.GetTaskInstance200JSONResponse(taskInstanceOf(ti)), nil
}

func (s *Server) PatchTaskInstance(ctx context.Context, req gen.PatchTaskInstanceRequestObject) (gen.PatchTaskInstanceResponseObject, error) {
	state := string(req.Body.NewState)
	var id int64
	err := s.st.InTx(ctx, func(q store.Q) error {
		ti, err := s.taskInstance(ctx, q, req.DagId, req.DagRunId, req.TaskId, req.Params.MapIndex)
		if err != nil || deref(req.Body.DryRun) {
			id = ti.ID
			return err
		}
		id = ti.ID
		changed, err := q.MarkTaskInstance(ctx, ti.ID, state)
		if err != nil || !changed {
			return err
		}
		return q.RecordEvent(ctx, event(ctx, "mark_task", ti.DagID, ti.RunID, ti.TaskID, map[string]any{"state": state, "map_index": ti.MapIndex}))
	})
	if err != nil {
		return nil, err
	}
	ti, err := s.st.TaskInstanceByID(ctx, id)
	if err != nil {
		return nil, err
	}
	return gen.PatchTaskInstance200JSONResponse(taskInstanceOf(ti)), nil
}

func (s *Server) GetTaskInstanceTries(ctx context.Context, req gen.GetTaskInstanceTriesRequestObject) (gen.GetTaskInstanceTriesResponseObject, error) {
	ti, err := s.taskInstance(ctx, s.st.Q, req.DagId, req.DagRunId, req.TaskId, req.Params.MapIndex)
	if err != nil {
		return nil, err
	}
	hist, err := s.st.StateHistory(ctx, ti.ID)
	if err != nil {
		return nil, err
	}
	out := gen.GetTaskInstanceTries200JSONResponse{TaskInstances: []gen.TaskInstanceTry{}}
	for _, t := range Tries(hist) {
		out.TaskInstances = append(out.TaskInstances, gen.TaskInstanceTry{TaskId: ti.TaskID, DagId: ti.DagID, DagRunId: ti.RunID,
			MapIndex: ti.MapIndex, TryNumber: t.Number, State: gen.TaskInstanceState(t.State), StartDate: t.Start, EndDate: t.End})
	}
	out.TotalEntries = len(out.TaskInstances)
	return out, nil
}

// --- XCom ---

func (s *Server) GetXcomEntries(ctx context.Context, req gen.GetXcomEntriesRequestObject) (gen.GetXcomEntriesResponseObject, error) {
	ti, err := s.taskInstance(ctx, s.st.Q, req.DagId, req.DagRunId, req.TaskId, req.Params.MapIndex)
	if err != nil {
		return nil, err
	}
	limit, offset := page(req.Params.Limit, req.Params.Offset)
	xs, total, err := s.st.XComEntries(ctx, ti.DagID, ti.RunID, ti.TaskID, ti.MapIndex, limit, offset)
	if err != nil {
		return nil, err
	}
	out := gen.GetXcomEntries200JSONResponse{XcomEntries: []gen.XComEntry{}, TotalEntries: total}
	for _, x := range xs {
		out.XcomEntries = append(out.XcomEntries, xcomOf(x, false))
	}
	return out, nil
}

func (s *Server) GetXcomEntry(ctx context.Context, req gen.GetXcomEntryRequestObject) (gen.GetXcomEntryResponseObject, error) {
	ti, err := s.taskInstance(ctx, s.st.Q, req.DagId, req.DagRunId, req.TaskId, req.Params.MapIndex)
	if err != nil {
		return nil, err
	}
	x, err := s.st.XComEntryByKey(ctx, ti.DagID, ti.RunID, ti.TaskID, ti.MapIndex, req.XcomKey)
	if err != nil {
		return nil, err
	}
	// Stored as pushed (downstream tasks read it), shown masked.
	x.Value = json.RawMessage(s.mask(ctx, string(x.Value)))
	return gen.GetXcomEntry200JSONResponse(xcomOf(x, true)), nil
}

// --- pools ---

func (s *Server) GetPools(ctx context.Context, req gen.GetPoolsRequestObject) (gen.GetPoolsResponseObject, error) {
	limit, offset := page(req.Params.Limit, req.Params.Offset)
	ps, total, err := s.st.Pools(ctx, limit, offset)
	if err != nil {
		return nil, err
	}
	out := gen.GetPools200JSONResponse{Pools: []gen.Pool{}, TotalEntries: total}
	for _, p := range ps {
		out.Pools = append(out.Pools, poolOf(p))
	}
	return out, nil
}

func (s *Server) GetPool(ctx context.Context, req gen.GetPoolRequestObject) (gen.GetPoolResponseObject, error) {
	p, err := s.st.PoolByName(ctx, req.PoolName)
	if err != nil {
		return nil, err
	}
	return gen.GetPool200JSONResponse(poolOf(p)), nil
}

func (s *Server) PostPool(ctx context.Context, req gen.PostPoolRequestObject) (gen.PostPoolResponseObject, error) {
	b := req.Body
	err := s.st.InTx(ctx, func(q store.Q) error {
		if err := q.CreatePool(ctx, b.Name, b.Slots, deref(b.Description)); err != nil {
			return err
		}
		return q.RecordEvent(ctx, event(ctx, "pool_create", "", "", "", map[string]any{"pool": b.Name, "slots": b.Slots}))
	})
	if err != nil {
		return nil, err
	}
	p, err := s.st.PoolByName(ctx, b.Name)
	return gen.PostPool200JSONResponse(poolOf(p)), err
}

func (s *Server) PatchPool(ctx context.Context, req gen.PatchPoolRequestObject) (gen.PatchPoolResponseObject, error) {
	b := req.Body
	err := s.st.InTx(ctx, func(q store.Q) error {
		if err := q.UpdatePool(ctx, req.PoolName, b.Slots, b.Description); err != nil {
			return err
		}
		extra := map[string]any{"pool": req.PoolName}
		if b.Slots != nil {
			extra["slots"] = *b.Slots
		}
		return q.RecordEvent(ctx, event(ctx, "pool_update", "", "", "", extra))
	})
	if err != nil {
		return nil, err
	}
	p, err := s.st.PoolByName(ctx, req.PoolName)
	return gen.PatchPool200JSONResponse(poolOf(p)), err
}

func (s *Server) DeletePool(ctx context.Context, req gen.DeletePoolRequestObject) (gen.DeletePoolResponseObject, error) {
	if req.PoolName == store.DefaultPool {
		return nil, newProblem(http.StatusBadRequest, "pool %s cannot be deleted", store.DefaultPool)
	}
	err := s.st.InTx(ctx, func(q store.Q) error {
		if err := q.DeletePool(ctx, req.PoolName); err != nil {
			return err
		}
		return q.RecordEvent(ctx, event(ctx, "pool_delete", "", "", "", map[string]any{"pool": req.PoolName}))
	})
	if err != nil {
		return nil, err
	}
	return gen.DeletePool204Response{}, nil
}

// --- audit log, auth, monitoring ---

func (s *Server) GetEventLogs(ctx context.Context, req gen.GetEventLogsRequestObject) (gen.GetEventLogsResponseObject, error) {
	p := req.Params
	limit, offset := page(p.Limit, p.Offset)
	es, total, err := s.st.ListEvents(ctx, store.EventFilter{DagID: deref(p.DagId), Event: deref(p.Event), Actor: deref(p.Owner),
		Since: deref(p.After), Before: deref(p.Before), Limit: limit, Offset: offset})
	if err != nil {
		return nil, err
	}
	out := gen.GetEventLogs200JSONResponse{EventLogs: []gen.EventLog{}, TotalEntries: total}
	for _, e := range es {
		out.EventLogs = append(out.EventLogs, eventOf(e))
	}
	return out, nil
}

func (s *Server) CreateToken(ctx context.Context, req gen.CreateTokenRequestObject) (gen.CreateTokenResponseObject, error) {
	token, expires, err := s.auth.Login(ctx, req.Body.Username, req.Body.Password, callerOf(ctx).remote)
	if err != nil {
		if errors.Is(err, auth.ErrBadCredentials) || errors.Is(err, auth.ErrRateLimited) || errors.Is(err, auth.ErrUnauthenticated) {
			return nil, err
		}
		return nil, fmt.Errorf("login: %w", err)
	}
	return gen.CreateToken200JSONResponse{AccessToken: token, TokenType: "bearer", ExpiresAt: expires}, nil
}

func (s *Server) GetMe(ctx context.Context, req gen.GetMeRequestObject) (gen.GetMeResponseObject, error) {
	p := callerOf(ctx).principal
	name := p.Name
	if name == "" {
		name = p.Actor()
	}
	return gen.GetMe200JSONResponse{Name: name, Kind: gen.MeKind(p.Kind), Role: gen.MeRole(p.Role)}, nil
}

func (s *Server) GetVersion(ctx context.Context, req gen.GetVersionRequestObject) (gen.GetVersionResponseObject, error) {
	return gen.GetVersion200JSONResponse{Version: s.version, GitVersion: s.commit}, nil
}

// schedulerHealthy is how recent a scheduler's heartbeat must be.
const schedulerHealthy = 30 * time.Second

func (s *Server) GetHealth(ctx context.Context, req gen.GetHealthRequestObject) (gen.GetHealthResponseObject, error) {
	out := gen.GetHealth200JSONResponse{Metadatabase: gen.HealthStatus{Status: "healthy"}, Scheduler: gen.HealthStatus{Status: "unhealthy"}}
	if err := s.st.Ping(ctx); err != nil {
		out.Metadatabase.Status = "unhealthy"
		return out, nil
	}
	at, ok, err := s.st.LatestHeartbeat(ctx, "scheduler")
	if err == nil && ok {
		out.Scheduler.LatestSchedulerHeartbeat = &at
		if time.Since(at) < schedulerHealthy {
			out.Scheduler.Status = "healthy"
		}
	}
	return out, nil
}

func (s *Server) GetOpenAPI(ctx context.Context, req gen.GetOpenAPIRequestObject) (gen.GetOpenAPIResponseObject, error) {
	return gen.GetOpenAPI200ApplicationyamlResponse{Body: bytes.NewReader(api.Spec), ContentLength: int64(len(api.Spec))}, nil
}
