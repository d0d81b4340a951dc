package secrets

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// Resolver finds variables and connections in the documented order
// (environment → podflow.yaml → database, see the package doc) and adds
// every sensitive value it hands out to Masker.
type Resolver struct {
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
	// FileConnections are podflow.yaml's connections.
	FileConnections map[string]map[string]any
	// Backend, when set, is looked up after the environment and before
	// podflow.yaml (the Kubernetes Secrets backend).
	Backend Backend
	// Vault is the database; nil when the process has none.
	Vault  *Vault
	Masker *Masker
}

// Backend is a secrets backend: another place variables and connections
// live (KubeBackend).
type Backend interface {
	Variable(ctx context.Context, key string) (string, bool, error)
	Connection(ctx context.Context, id string) (*Connection, bool, error)
	// LoadMasker registers every secret the backend holds with its masker.
	LoadMasker(ctx context.Context) error
}

func (r *Resolver) getenv(k string) string {
	if r.Getenv != nil {
		return r.Getenv(k)
	}
	return os.Getenv(k)
}

// EnvName turns a key or connection id into its environment variable
// suffix: "api-token.x" → "API_TOKEN_X".
func EnvName(id string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(id))
}

// Variable resolves a variable and registers it with the masker when it is
// secret.
func (r *Resolver) Variable(ctx context.Context, key string) (Variable, bool, error) {
	if s, ok := lookupEnv(r.getenv, "PODFLOW_VAR_"+EnvName(key)); ok {
		v := Variable{Key: key, Value: s, Secret: r.Masker.IsSensitive(key)}
		r.registerVariable(v)
		return v, true, nil
	}
	if r.Backend != nil {
		s, found, err := r.Backend.Variable(ctx, key)
		if err != nil || found {
			v := Variable{Key: key, Value: s, Secret: true}
			r.registerVariable(v)
			return v, found, err
		}
	}
	if r.Vault == nil {
		return Variable{}, false, nil
	}
	v, found, err := r.Vault.Variable(ctx, key)
	if err != nil || !found {
		return v, found, err
	}
	r.registerVariable(v)
	return v, true, nil
}

func lookupEnv(getenv func(string) string, name string) (string, bool) {
	s := getenv(name)
	return s, s != ""
}

func (r *Resolver) registerVariable(v Variable) {
	if v.Secret || r.Masker.IsSensitive(v.Key) {
		r.Masker.Add(v.Value)
	}
}

// Connection resolves a connection and registers its password and its
// sensitive extra fields with the masker.
func (r *Resolver) Connection(ctx context.Context, id string) (*Connection, bool, error) {
	if s, ok := lookupEnv(r.getenv, "PODFLOW_CONN_"+EnvName(id)); ok {
		c, err := connectionFromEnv(id, s)
		if err != nil {
			return nil, false, fmt.Errorf("PODFLOW_CONN_%s: %w", EnvName(id), err)
		}
		r.registerConnection(c)
		return c, true, nil
	}
	if r.Backend != nil {
		c, found, err := r.Backend.Connection(ctx, id)
		if err != nil {
			return nil, false, err
		}
		if found {
			r.registerConnection(c)
			return c, true, nil
		}
	}
	if raw, ok := r.FileConnections[id]; ok {
		c, err := ConnectionFromMap(id, raw)
		if err != nil {
			return nil, false, fmt.Errorf("podflow.yaml: %w", err)
		}
		r.registerConnection(c)
		return c, true, nil
	}
	if r.Vault == nil {
		return nil, false, nil
	}
	c, found, err := r.Vault.Connection(ctx, id)
	if err != nil || !found {
		return nil, found, err
	}
	r.registerConnection(&c)
	return &c, true, nil
}

// connectionFromEnv reads PODFLOW_CONN_<ID>: a JSON object, or a URI (as
// Airflow's AIRFLOW_CONN_<ID>).
func connectionFromEnv(id, s string) (*Connection, error) {
	if strings.HasPrefix(strings.TrimSpace(s), "{") {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			return nil, err
		}
		return ConnectionFromMap(id, m)
	}
	return ParseURI(id, s)
}

func (r *Resolver) registerConnection(c *Connection) {
	r.Masker.Add(c.Password)
	r.maskSensitiveFields(c.ExtraDejson())
}

func (r *Resolver) maskSensitiveFields(m map[string]any) {
	for k, v := range m {
		switch x := v.(type) {
		case map[string]any:
			r.maskSensitiveFields(x)
		case string:
			if r.Masker.IsSensitive(k) {
				r.Masker.Add(x)
			}
		}
	}
}

// LoadMasker registers every secret the process could reveal — the
// database's connections and secret variables, podflow.yaml's connections,
// PODFLOW_VAR_*/PODFLOW_CONN_* — so that text written by a task that got a
// secret some other way, or shown by a process that never resolved it (the
// API, `podflow logs`), is masked too.
func (r *Resolver) LoadMasker(ctx context.Context, environ []string) error {
	for _, kv := range environ {
		k, val, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "PODFLOW_VAR_"):
			if r.Masker.IsSensitive(strings.TrimPrefix(k, "PODFLOW_VAR_")) {
				r.Masker.Add(val)
			}
		case strings.HasPrefix(k, "PODFLOW_CONN_"):
			if c, err := connectionFromEnv(strings.ToLower(strings.TrimPrefix(k, "PODFLOW_CONN_")), val); err == nil {
				r.registerConnection(c)
			}
		}
	}
	for id, raw := range r.FileConnections {
		if c, err := ConnectionFromMap(id, raw); err == nil {
			r.registerConnection(c)
		}
	}
	if r.Backend != nil {
		if err := r.Backend.LoadMasker(ctx); err != nil {
			return err
		}
	}
	if r.Vault == nil {
		return nil
	}
	vars, err := r.Vault.Variables(ctx)
	if err != nil {
		return err
	}
	for _, v := range vars {
		r.registerVariable(v)
	}
	conns, err := r.Vault.Connections(ctx)
	if err != nil {
		return err
	}
	for i := range conns {
		r.registerConnection(&conns[i])
	}
	return nil
}

// lookupTimeout bounds a lookup made through an interface without a
// context (operators.Connections).
const lookupTimeout = 10 * time.Second

// ForTasks adapts the resolver to what tasks are given: operators.Connections
// (with operators.ConnectionLookup) and, through the same value,
// templating.SecretLookup, which operators.NewTaskContext picks up.
func (r *Resolver) ForTasks() TaskSecrets { return TaskSecrets{r} }

// TaskSecrets is a Resolver seen by operators and templates.
type TaskSecrets struct{ *Resolver }

// Connection is operators.Connections. Lookup errors read as "not found"
// here; LookupConnection reports them.
func (t TaskSecrets) Connection(id string) (map[string]any, bool) {
	m, ok, _ := t.LookupConnection(context.Background(), id)
	return m, ok
}

// LookupConnection is operators.ConnectionLookup: the connection as a
// mapping, or why it cannot be read. A podflow.yaml connection keeps its own
// keys (a Kubernetes connection's fields at top level).
func (r *Resolver) LookupConnection(ctx context.Context, id string) (map[string]any, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	c, found, err := r.Connection(ctx, id)
	if err != nil || !found {
		return nil, found, err
	}
	// A podflow.yaml connection keeps its own shape (the Kubernetes
	// operator reads its fields at top level) when it is the one found.
	if raw, ok := r.FileConnections[id]; ok {
		if _, envSet := lookupEnv(r.getenv, "PODFLOW_CONN_"+EnvName(id)); !envSet && !r.inBackend(ctx, id) {
			return raw, true, nil
		}
	}
	return c.Map(), true, nil
}

func (r *Resolver) inBackend(ctx context.Context, id string) bool {
	if r.Backend == nil {
		return false
	}
	_, found, _ := r.Backend.Connection(ctx, id)
	return found
}

// TemplateVariable is templating.SecretLookup.
func (r *Resolver) TemplateVariable(ctx context.Context, key string) (string, bool, error) {
	v, found, err := r.Variable(ctx, key)
	return v.Value, found, err
}

// TemplateConnection is templating.SecretLookup.
func (r *Resolver) TemplateConnection(ctx context.Context, id string) (map[string]any, bool, error) {
	c, found, err := r.Connection(ctx, id)
	if err != nil || !found {
		return nil, found, err
	}
	var port any
	if c.Port != 0 {
		port = int64(c.Port)
	}
	return map[string]any{
		"conn_id": c.ConnID, "conn_type": c.Type, "host": c.Host, "schema": c.Schema,
		"login": c.Login, "password": c.Password, "port": port, "extra": c.Extra,
		"extra_dejson": c.ExtraDejson(), "description": c.Description,
	}, true, nil
}
