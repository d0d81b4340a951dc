package api

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/podflow/podflow/internal/api/gen"
	"github.com/podflow/podflow/internal/secrets"
)

// maskReload is how often the API re-reads the secrets it masks in what it
// shows (logs, XComs): lines were masked when stored; this covers secrets
// added after a line was written.
const maskReload = 30 * time.Second

// apiSecrets is the webserver's view of variables and connections.
type apiSecrets struct {
	res      *secrets.Resolver
	mu       sync.Mutex
	loadedAt time.Time
}

// masker returns the masker, reloading the database's secrets at most
// every maskReload. A row that cannot be decrypted (no key here) leaves
// the secrets already known in place.
func (a *apiSecrets) masker(ctx context.Context) *secrets.Masker {
	a.mu.Lock()
	defer a.mu.Unlock()
	if time.Since(a.loadedAt) > maskReload {
		a.loadedAt = time.Now()
		_ = a.res.LoadMasker(ctx, nil)
	}
	return a.res.Masker
}

func (s *Server) mask(ctx context.Context, text string) string {
	return s.secrets.masker(ctx).Mask(text)
}

func variableOf(v secrets.Variable) gen.Variable {
	out := gen.Variable{Key: v.Key, Value: v.Value, IsSecret: v.Secret}
	if v.Secret {
		out.Value = secrets.Masked
	}
	if v.Description != "" {
		out.Description = &v.Description
	}
	return out
}

func connectionOf(c secrets.Connection, m *secrets.Masker) gen.Connection {
	out := gen.Connection{ConnectionId: c.ConnID, ConnType: c.Type}
	opt := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	out.Description, out.Host, out.Schema, out.Login = opt(c.Description), opt(c.Host), opt(c.Schema), opt(c.Login)
	if c.Password != "" {
		out.Password = opt(secrets.Masked)
	}
	if c.Port != 0 {
		out.Port = &c.Port
	}
	if extra := c.ExtraDejson(); len(extra) > 0 {
		b, _ := json.Marshal(m.MaskValue(extra))
		out.Extra = opt(string(b))
	}
	return out
}

func pageOf[T any](all []T, limit, offset int) []T {
	if offset >= len(all) {
		return []T{}
	}
	return all[offset:min(len(all), offset+limit)]
}

func (s *Server) vault() *secrets.Vault { return s.secrets.res.Vault }

func (s *Server) GetVariables(ctx context.Context, req gen.GetVariablesRequestObject) (gen.GetVariablesResponseObject, error) {
	limit, offset := page(req.Params.Limit, req.Params.Offset)
	vars, err := s.vault().Variables(ctx)
	if err != nil {
		return nil, err
	}
	out := gen.GetVariables200JSONResponse{Variables: []gen.Variable{}, TotalEntries: len(vars)}
	for _, v := range pageOf(vars, limit, offset) {
		out.Variables = append(out.Variables, variableOf(v))
	}
	return out, nil
}

func (s *Server) GetVariable(ctx context.Context, req gen.GetVariableRequestObject) (gen.GetVariableResponseObject, error) {
	v, found, err := s.vault().Variable(ctx, req.VariableKey)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, newProblem(http.StatusNotFound, "variable %s does not exist", req.VariableKey)
	}
	return gen.GetVariable200JSONResponse(variableOf(v)), nil
}

func (s *Server) PostVariable(ctx context.Context, req gen.PostVariableRequestObject) (gen.PostVariableResponseObject, error) {
	b := req.Body
	v := secrets.Variable{Key: b.Key, Value: b.Value, Description: deref(b.Description), Secret: b.IsSecret != nil && *b.IsSecret}
	if err := s.vault().SetVariable(ctx, v); err != nil {
		return nil, newProblem(http.StatusBadRequest, "%s", err)
	}
	if err := s.st.RecordEvent(ctx, event(ctx, "variable_set", "", "", "", map[string]any{"key": b.Key})); err != nil {
		return nil, err
	}
	v.Secret = v.Secret || s.vault().Masker.IsSensitive(v.Key)
	return gen.PostVariable200JSONResponse(variableOf(v)), nil
}

func (s *Server) DeleteVariable(ctx context.Context, req gen.DeleteVariableRequestObject) (gen.DeleteVariableResponseObject, error) {
	if err := s.vault().DeleteVariable(ctx, req.VariableKey); err != nil {
		return nil, err
	}
	if err := s.st.RecordEvent(ctx, event(ctx, "variable_delete", "", "", "", map[string]any{"key": req.VariableKey})); err != nil {
		return nil, err
	}
	return gen.DeleteVariable204Response{}, nil
}

func (s *Server) GetConnections(ctx context.Context, req gen.GetConnectionsRequestObject) (gen.GetConnectionsResponseObject, error) {
	limit, offset := page(req.Params.Limit, req.Params.Offset)
	conns, err := s.vault().Connections(ctx)
	if err != nil {
		return nil, err
	}
	out := gen.GetConnections200JSONResponse{Connections: []gen.Connection{}, TotalEntries: len(conns)}
	for _, c := range pageOf(conns, limit, offset) {
		out.Connections = append(out.Connections, connectionOf(c, s.vault().Masker))
	}
	return out, nil
}

func (s *Server) GetConnection(ctx context.Context, req gen.GetConnectionRequestObject) (gen.GetConnectionResponseObject, error) {
	c, found, err := s.vault().Connection(ctx, req.ConnectionId)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, newProblem(http.StatusNotFound, "connection %s does not exist", req.ConnectionId)
	}
	return gen.GetConnection200JSONResponse(connectionOf(c, s.vault().Masker)), nil
}

func (s *Server) PostConnection(ctx context.Context, req gen.PostConnectionRequestObject) (gen.PostConnectionResponseObject, error) {
	b := req.Body
	c := secrets.Connection{ConnID: b.ConnectionId, Type: b.ConnType, Description: deref(b.Description), Host: deref(b.Host),
		Schema: deref(b.Schema), Login: deref(b.Login), Password: deref(b.Password), Extra: deref(b.Extra)}
	if b.Port != nil {
		c.Port = *b.Port
	}
	if err := s.vault().SetConnection(ctx, c); err != nil {
		return nil, newProblem(http.StatusBadRequest, "%s", err)
	}
	if err := s.st.RecordEvent(ctx, event(ctx, "connection_set", "", "", "", map[string]any{"connection_id": c.ConnID})); err != nil {
		return nil, err
	}
	return gen.PostConnection200JSONResponse(connectionOf(c, s.vault().Masker)), nil
}

func (s *Server) DeleteConnection(ctx context.Context, req gen.DeleteConnectionRequestObject) (gen.DeleteConnectionResponseObject, error) {
	if err := s.vault().DeleteConnection(ctx, req.ConnectionId); err != nil {
		return nil, err
	}
	if err := s.st.RecordEvent(ctx, event(ctx, "connection_delete", "", "", "", map[string]any{"connection_id": req.ConnectionId})); err != nil {
		return nil, err
	}
	return gen.DeleteConnection204Response{}, nil
}
