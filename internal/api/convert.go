package api

import (
	"encoding/json"

	"github.com/podflow/podflow/internal/api/gen"
	"github.com/podflow/podflow/internal/store"
)

// Conversions from the store's rows to the API's shapes.

func dagOf(d store.DagRow, tags []string) gen.DAG {
	out := gen.DAG{DagId: d.DagID, Fileloc: d.Path, IsPaused: d.Paused, IsActive: d.Active, HasImportErrors: d.Errors != "",
		TimetableSummary: d.Schedule, Tags: tags}
	if out.Tags == nil {
		out.Tags = []string{}
	}
	if d.Errors != "" {
		out.ImportErrors = &d.Errors
	}
	if d.Hash != "" {
		out.VersionHash = &d.Hash
	}
	return out
}

func runOf(r store.Run) gen.DAGRun {
	conf := map[string]any{}
	_ = json.Unmarshal(r.Conf, &conf) // jsonb object, checked when the run was made
	return gen.DAGRun{DagId: r.DagID, DagRunId: r.RunID, LogicalDate: r.LogicalDate,
		DataIntervalStart: r.DataIntervalStart, DataIntervalEnd: r.DataIntervalEnd, QueuedAt: r.CreatedAt,
		StartDate: r.StartedAt, EndDate: r.EndedAt, State: gen.DagRunState(r.State), RunType: gen.DAGRunRunType(r.RunType),
		Conf: conf, VersionHash: r.Hash}
}

func taskInstanceOf(t store.TaskInstance) gen.TaskInstance {
	out := gen.TaskInstance{TaskId: t.TaskID, DagId: t.DagID, DagRunId: t.RunID, MapIndex: t.MapIndex,
		State: gen.TaskInstanceState(t.State), TryNumber: t.TryNumber, MaxTries: t.MaxTries, Pool: t.Pool,
		PriorityWeight: t.Priority, QueuedWhen: t.QueuedAt, StartDate: t.StartedAt, EndDate: t.EndedAt}
	if t.StartedAt != nil && t.EndedAt != nil {
		d := float32(t.EndedAt.Sub(*t.StartedAt).Seconds())
		out.Duration = &d
	}
	if t.Error != "" {
		out.Error = &t.Error
	}
	if t.RenderedMapIndex != "" {
		out.RenderedMapIndex = &t.RenderedMapIndex
	}
	if t.ExternalName != "" {
		out.ExternalNamespace, out.ExternalName = &t.ExternalNS, &t.ExternalName
	}
	return out
}

func refOf(dagID, runID string, taskIDs []string) gen.TaskInstanceReferenceCollection {
	out := gen.TaskInstanceReferenceCollection{TaskInstances: []gen.TaskInstanceReference{}, TotalEntries: len(taskIDs)}
	for _, id := range taskIDs {
		out.TaskInstances = append(out.TaskInstances, gen.TaskInstanceReference{TaskId: id, DagId: dagID, DagRunId: runID, MapIndex: -1})
	}
	return out
}

func poolOf(p store.Pool) gen.Pool {
	out := gen.Pool{Name: p.Name, Slots: p.Slots, OccupiedSlots: p.Running, RunningSlots: p.Running,
		QueuedSlots: p.Queued, OpenSlots: p.Slots - p.Running}
	if p.Description != "" {
		out.Description = &p.Description
	}
	return out
}

func xcomOf(x store.XComEntry, withValue bool) gen.XComEntry {
	out := gen.XComEntry{Key: x.Key, Timestamp: x.CreatedAt, MapIndex: x.MapIndex, TaskId: x.TaskID, DagId: x.DagID, DagRunId: x.RunID}
	if withValue {
		out.Value = x.Value
	}
	return out
}

func eventOf(e store.EventLog) gen.EventLog {
	out := gen.EventLog{EventLogId: e.ID, When: e.At, Owner: e.Actor, Source: e.Source, Event: e.Event}
	if e.DagID != "" {
		out.DagId = &e.DagID
	}
	if e.RunID != "" {
		out.RunId = &e.RunID
	}
	if e.TaskID != "" {
		out.TaskId = &e.TaskID
	}
	if len(e.Extra) > 0 {
		extra := map[string]any{}
		if json.Unmarshal(e.Extra, &extra) == nil {
			out.Extra = &extra
		}
	}
	return out
}

// page is a list's limit and offset with the spec's defaults.
func page(limit, offset *int) (int, int) {
	l, o := 100, 0
	if limit != nil {
		l = *limit
	}
	if offset != nil {
		o = *offset
	}
	return l, o
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
