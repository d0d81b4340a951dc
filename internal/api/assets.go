package api

import (
	"context"
	"encoding/json"

	"github.com/podflow/podflow/internal/api/gen"
	"github.com/podflow/podflow/internal/store"
)

// GetAssets lists assets with their producing tasks and consuming DAGs.
func (s *Server) GetAssets(ctx context.Context, _ gen.GetAssetsRequestObject) (gen.GetAssetsResponseObject, error) {
	assets, err := s.st.Assets(ctx)
	if err != nil {
		return nil, err
	}
	out := gen.GetAssets200JSONResponse{Assets: []gen.Asset{}, TotalEntries: len(assets)}
	for _, a := range assets {
		g := gen.Asset{Uri: a.URI, Consumers: a.Consumers, Events: a.Events, LastEvent: a.LastEvent, Producers: []gen.AssetProducer{}}
		if g.Consumers == nil {
			g.Consumers = []string{}
		}
		for _, p := range a.Producers {
			g.Producers = append(g.Producers, gen.AssetProducer{DagId: p.DagID, TaskId: p.TaskID})
		}
		out.Assets = append(out.Assets, g)
	}
	return out, nil
}

// GetAssetEvents lists an asset's events, newest first.
func (s *Server) GetAssetEvents(ctx context.Context, req gen.GetAssetEventsRequestObject) (gen.GetAssetEventsResponseObject, error) {
	limit, _ := page(req.Params.Limit, nil)
	evs, err := s.st.AssetEvents(ctx, req.Params.Uri, limit)
	if err != nil {
		return nil, err
	}
	out := gen.GetAssetEvents200JSONResponse{AssetEvents: []gen.AssetEvent{}, TotalEntries: len(evs)}
	for _, e := range evs {
		out.AssetEvents = append(out.AssetEvents, assetEventOf(e))
	}
	return out, nil
}

func assetEventOf(e store.AssetEvent) gen.AssetEvent {
	extra := map[string]any{}
	_ = json.Unmarshal(e.Extra, &extra)
	return gen.AssetEvent{Id: e.ID, Uri: e.URI, Extra: extra, SourceDagId: e.SourceDagID, SourceRunId: e.SourceRunID,
		SourceTaskId: e.SourceTaskID, SourceMapIndex: e.SourceMapIndex, Timestamp: e.Timestamp}
}
