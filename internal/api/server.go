// Package api is podflow's REST API server: the routes and types generated
// from api/openapi.yaml (package gen), requests authenticated, authorised by
// operationRoles and validated against the spec before a handler runs, every
// change recorded in the audit log, every error an RFC 9457 problem.
//
//	request ─▶ route (ServeMux pattern → spec operation)
//	        ─▶ authenticate (401 / 429) ─▶ role of the operation (403)
//	        ─▶ body limit (413) ─▶ validate against the spec (400)
//	        ─▶ generated strict handler ─▶ Server method ─▶ store
package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/podflow/podflow/api"
	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/api/gen"
	"github.com/podflow/podflow/internal/auth"
	"github.com/podflow/podflow/internal/health"
	"github.com/podflow/podflow/internal/kube"
	"github.com/podflow/podflow/internal/secrets"
	"github.com/podflow/podflow/internal/store"
)

// BasePath is where the API is served.
const BasePath = "/api/v1"

// MaxBodyBytes is the largest request body accepted (a bigger one is a 413).
const MaxBodyBytes = 1 << 20

// Options configure the server.
type Options struct {
	Store  *store.Store
	Auth   auth.Authenticator
	Parser *dag.Parser // parses stored DAG versions (the operators' schemas)
	Logger hclog.Logger
	// Version and Commit are what GET /version answers.
	Version, Commit string
	// Metrics, when set, is served at /metrics, with /healthz (the
	// database answers) beside it, by internal/health.
	Metrics *prometheus.Registry
	// Extra serves more paths outside the API (e.g. the web UI).
	Extra map[string]http.Handler
	// Watcher, when set, is the run watcher to use (its Run is the
	// caller's); otherwise New makes one, which Start runs.
	Watcher *Watcher
	// Secrets reads and writes variables and connections and masks what
	// the API shows; nil: the database's, without a secret key.
	Secrets *secrets.Resolver
	// PodEvents reads a pod's events from Kubernetes for the task page;
	// nil: the server has no Kubernetes access and says so (503).
	PodEvents PodEventsFunc
}

// PodEventsFunc lists the events of a pod, oldest first.
type PodEventsFunc func(ctx context.Context, namespace, name string) ([]kube.PodEvent, error)

// Server answers the API's operations (gen.StrictServerInterface).
type Server struct {
	st        *store.Store
	auth      auth.Authenticator
	parser    *dag.Parser
	log       hclog.Logger
	version   string
	commit    string
	watch     *Watcher
	spec      *openapi3.T
	secrets   *apiSecrets
	podEvents PodEventsFunc
	// versions caches parsed DAG versions for the web UI's operations.
	versions versionCache
}

// Handler is the API's http.Handler plus the run watcher it needs running.
type Handler struct {
	http.Handler
	// Watcher must run (Run(ctx)) while the handler serves wait streams and
	// log follows: its one LISTEN connection wakes them all.
	Watcher *Watcher
}

// New builds the API's handler. It fails if the spec does not load or an
// operation of the spec has no role in operationRoles.
func New(o Options) (*Handler, error) {
	if o.Store == nil || o.Auth == nil || o.Parser == nil {
		return nil, errors.New("api: Store, Auth and Parser are required")
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	doc, err := LoadSpec()
	if err != nil {
		return nil, err
	}
	w := o.Watcher
	if w == nil {
		w = NewWatcher(o.Store, o.Logger)
	}
	res := o.Secrets
	if res == nil {
		m := secrets.NewMasker(nil)
		res = &secrets.Resolver{Masker: m, Vault: &secrets.Vault{Store: o.Store, Masker: m}}
	}
	s := &Server{st: o.Store, auth: o.Auth, parser: o.Parser, log: o.Logger.Named("api"),
		version: o.Version, commit: o.Commit, watch: w, spec: doc, secrets: &apiSecrets{res: res}, podEvents: o.PodEvents}
	root := http.NewServeMux()
	mux := &routedMux{ServeMux: root, s: s, doc: doc}
	strict := gen.NewStrictHandlerWithOptions(s, nil, gen.StrictHTTPServerOptions{
		RequestErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			writeProblem(w, newProblem(http.StatusBadRequest, "%s", err))
		},
		ResponseErrorHandlerFunc: s.writeError,
	})
	gen.HandlerWithOptions(strict, gen.StdHTTPServerOptions{
		BaseURL:    BasePath,
		BaseRouter: mux,
		ErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			writeProblem(w, newProblem(http.StatusBadRequest, "%s", err))
		},
	})
	if mux.err != nil {
		return nil, mux.err
	}
	for _, path := range doc.Paths.InMatchingOrder() {
		for method, op := range doc.Paths.Value(path).Operations() {
			if _, ok := operationRoles[op.OperationID]; !ok {
				return nil, fmt.Errorf("api: operation %s (%s %s) has no role in operationRoles", op.OperationID, method, path)
			}
		}
	}
	root.HandleFunc(BasePath+"/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, newProblem(http.StatusNotFound, "no operation %s %s in this API (see %s/openapi.yaml)", r.Method, r.URL.Path, BasePath))
	})
	if o.Metrics != nil {
		h := health.Handler(o.Metrics, health.Check{Name: "database", Run: func(ctx context.Context) error { return o.Store.Ping(ctx) }})
		root.Handle("/healthz", h)
		root.Handle("/metrics", h)
	}
	for p, h := range o.Extra {
		root.Handle(p, h)
	}
	return &Handler{Handler: root, Watcher: w}, nil
}

// LoadSpec loads and checks api/openapi.yaml.
func LoadSpec() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(api.Spec)
	if err != nil {
		return nil, fmt.Errorf("api/openapi.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("api/openapi.yaml: %w", err)
	}
	return doc, nil
}

// writeError answers a handler's error as a problem.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p, internal := problemOf(err)
	if internal {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	writeProblem(w, p)
}

// routedMux is the generated code's router: it registers each operation on
// the ServeMux behind the checks that the spec's operation calls for.
type routedMux struct {
	*http.ServeMux
	s   *Server
	doc *openapi3.T
	err error
}

func (m *routedMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	method, path, _ := strings.Cut(pattern, " ")
	specPath := strings.TrimPrefix(path, BasePath)
	item := m.doc.Paths.Value(specPath)
	var op *openapi3.Operation
	if item != nil {
		op = item.GetOperation(method)
	}
	if op == nil {
		m.err = errors.Join(m.err, fmt.Errorf("api: generated route %s is not in the spec", pattern))
		return
	}
	role, ok := operationRoles[op.OperationID]
	if !ok {
		m.err = errors.Join(m.err, fmt.Errorf("api: operation %s has no role in operationRoles", op.OperationID))
		return
	}
	route := &routers.Route{Spec: m.doc, Path: specPath, PathItem: item, Method: method, Operation: op}
	m.ServeMux.HandleFunc(pattern, m.s.guard(route, role, h))
}

// caller is who makes a request and from where, for handlers and the audit log.
type caller struct {
	principal auth.Principal
	remote    string
	accept    string
}

type callerKey struct{}

func callerOf(ctx context.Context) caller {
	c, _ := ctx.Value(callerKey{}).(caller)
	return c
}

// guard authenticates, authorises, limits and validates a request for
// route before h (the generated handler) sees it.
func (s *Server) guard(route *routers.Route, role auth.Role, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		c := caller{principal: auth.Principal{Kind: auth.KindAnonymous}, remote: remoteHost(r.RemoteAddr), accept: r.Header.Get("Accept")}
		if role != roleNone {
			sr, err := withSession(r)
			if err != nil {
				writeProblem(w, newProblem(http.StatusForbidden, "%s", err))
				return
			}
			r = sr
			p, err := s.auth.Authenticate(ctx, r)
			switch {
			case errors.Is(err, auth.ErrRateLimited):
				writeProblem(w, newProblem(http.StatusTooManyRequests, "%s", err))
				return
			case errors.Is(err, auth.ErrUnauthenticated), errors.Is(err, auth.ErrBadCredentials):
				writeProblem(w, newProblem(http.StatusUnauthorized, "%s", err))
				return
			case err != nil:
				s.writeError(w, r, fmt.Errorf("authenticate: %w", err))
				return
			}
			if !p.Role.Allows(role) {
				writeProblem(w, newProblem(http.StatusForbidden, "%s %s needs role %s; %s has role %s",
					route.Method, route.Path, role, p.Actor(), p.Role))
				return
			}
			c.principal = p
		}
		var body []byte
		if r.Body != nil && r.Body != http.NoBody {
			var err error
			body, err = io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
			if err != nil {
				writeProblem(w, newProblem(http.StatusBadRequest, "read request body: %s", err))
				return
			}
			if len(body) > MaxBodyBytes {
				writeProblem(w, newProblem(http.StatusRequestEntityTooLarge, "request body is over the limit of %d bytes", MaxBodyBytes))
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		params := map[string]string{}
		for _, p := range route.PathItem.Parameters {
			if p.Value != nil && p.Value.In == openapi3.ParameterInPath {
				params[p.Value.Name] = r.PathValue(p.Value.Name)
			}
		}
		for _, p := range route.Operation.Parameters {
			if p.Value != nil && p.Value.In == openapi3.ParameterInPath {
				params[p.Value.Name] = r.PathValue(p.Value.Name)
			}
		}
		in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			writeProblem(w, validationProblem(err))
			return
		}
		if body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body)) // the validation read it
		}
		h(w, r.WithContext(context.WithValue(ctx, callerKey{}, c)))
	}
}

func remoteHost(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}
