package store

import (
	"context"
	"encoding/json"

	"github.com/podflow/podflow/xcomstore"
)

// PushXCom stores one XCom value.
func (q Q) PushXCom(ctx context.Context, dagID, runID, taskID string, mapIndex int, key string, v json.RawMessage) error {
	return xcomstore.Push(ctx, q.db, dagID, runID, taskID, mapIndex, key, v)
}

// XCom reads one XCom value.
func (q Q) XCom(ctx context.Context, dagID, runID, taskID, key string) (json.RawMessage, bool, error) {
	return xcomstore.Get(ctx, q.db, dagID, runID, taskID, -1, key)
}

// XComPuller reads the XComs of one run for templates.
func (q Q) XComPuller(dagID, runID string) *xcomstore.Puller {
	return &xcomstore.Puller{DB: q.db, DagID: dagID, RunID: runID}
}
