package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/podflow/podflow/internal/auth"
	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/internal/localenv/pgtest"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/operators/bash"
	"github.com/podflow/podflow/operators/empty"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// tokenAuth is a narrow test Authenticator: the bearer token is the role
// ("viewer", "op", "admin"); user "admin" logs in with password "secret".
type tokenAuth struct{}

func (tokenAuth) Authenticate(_ context.Context, r *http.Request) (auth.Principal, error) {
	h := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return auth.Principal{}, auth.ErrUnauthenticated
	}
	role := auth.Role(token)
	if !role.Valid() {
		return auth.Principal{}, auth.ErrUnauthenticated
	}
	return auth.Principal{Kind: auth.KindUser, Name: token + "-user", Role: role}, nil
}

func (tokenAuth) Login(_ context.Context, user, password, _ string) (string, time.Time, error) {
	if user == "admin" && password == "secret" {
		return "admin", time.Now().Add(time.Hour).UTC(), nil
	}
	return "", time.Time{}, auth.ErrBadCredentials
}

type testBundle struct {
	*flowtest.Bundle
	srv    *httptest.Server
	client *http.Client
	doc    *openapi3.T
	// tokens maps the role a test calls as to the bearer token sent; when
	// nil, the role itself is sent (tokenAuth).
	tokens map[string]string
	// adminPassword is what createToken is called with for user admin.
	adminPassword string
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	return setupWith(t, func(*flowtest.Bundle) auth.Authenticator { return tokenAuth{} })
}

// setupWith is setup with the authenticator newAuth makes on the bundle.
func setupWith(t *testing.T, newAuth func(*flowtest.Bundle) auth.Authenticator) *testBundle {
	t.Helper()
	return setupOptions(t, newAuth, nil)
}

// setupOptions is setupWith with the server's options changed by mod.
func setupOptions(t *testing.T, newAuth func(*flowtest.Bundle) auth.Authenticator, mod func(*flowtest.Bundle, *Options)) *testBundle {
	t.Helper()
	b := flowtest.New(t, operators.NewRegistry(bash.New(), empty.New()))
	o := Options{Store: b.Store, Auth: newAuth(b), Parser: b.Parser, Logger: flowtest.Logger(), Version: "1.2.3", Commit: "abc",
		Metrics: prometheus.NewRegistry()}
	if mod != nil {
		mod(b, &o)
	}
	h, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	b.Go("watcher", func(ctx context.Context) error { h.Watcher.Run(ctx); return nil })
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	doc, err := LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	tb := &testBundle{Bundle: b, srv: srv, doc: doc, adminPassword: "secret"}
	tb.client = &http.Client{Transport: &validatingTransport{t: t, doc: doc, routes: newRouteFinder(t, doc)}}
	return tb
}

// response is what a test request got.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// call makes a request as role ("" = anonymous); body is JSON-encoded
// unless it is a string or []byte, sent as is.
func (b *testBundle) call(method, path, role string, body any) response {
	b.T.Helper()
	req := b.request(method, path, role, body)
	res, err := b.client.Do(req)
	if err != nil {
		b.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		b.T.Fatal(err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: data}
}

func (b *testBundle) request(method, path, role string, body any) *http.Request {
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
	case []byte:
		rd = bytes.NewReader(v)
	default:
		data, err := json.Marshal(v)
		if err != nil {
			b.T.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(b.Ctx, method, b.srv.URL+BasePath+path, rd)
	if err != nil {
		b.T.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token, ok := b.tokens[role]; ok {
		req.Header.Set("Authorization", "Bearer "+token)
	} else if role != "" {
		req.Header.Set("Authorization", "Bearer "+role)
	}
	return req
}

// must calls and fails the test unless the status is want.
func (b *testBundle) must(want int, method, path, role string, body any) response {
	b.T.Helper()
	r := b.call(method, path, role, body)
	if r.Status != want {
		b.T.Fatalf("%s %s as %q: status %d, want %d: %s", method, path, role, r.Status, want, r.Body)
	}
	return r
}

// routeFinder maps a request to its spec operation with the same ServeMux
// patterns the server uses.
type routeFinder struct {
	mux *http.ServeMux
}

type foundRoute struct {
	route  *routers.Route
	params map[string]string
}

type foundKey struct{}

func newRouteFinder(t *testing.T, doc *openapi3.T) *routeFinder {
	mux := http.NewServeMux()
	for _, path := range doc.Paths.InMatchingOrder() {
		item := doc.Paths.Value(path)
		for method, op := range item.Operations() {
			route := &routers.Route{Spec: doc, Path: path, PathItem: item, Method: method, Operation: op}
			mux.HandleFunc(method+" "+BasePath+path, func(w http.ResponseWriter, r *http.Request) {
				found := r.Context().Value(foundKey{}).(*foundRoute)
				found.route = route
				found.params = map[string]string{}
				for _, ps := range []openapi3.Parameters{item.Parameters, op.Parameters} {
					for _, p := range ps {
						if p.Value.In == openapi3.ParameterInPath {
							found.params[p.Value.Name] = r.PathValue(p.Value.Name)
						}
					}
				}
			})
		}
	}
	return &routeFinder{mux: mux}
}

func (f *routeFinder) find(r *http.Request) *foundRoute {
	found := &foundRoute{}
	f.mux.ServeHTTP(httptest.NewRecorder(), r.Clone(context.WithValue(r.Context(), foundKey{}, found)))
	if found.route == nil {
		return nil
	}
	return found
}

// validatingTransport checks every response the tests receive against the
// spec: status, headers, and the body of every JSON answer (streams are
// checked line by line by their tests).
type validatingTransport struct {
	t      *testing.T
	doc    *openapi3.T
	routes *routeFinder
}

func (v *validatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return res, err
	}
	found := v.routes.find(req)
	if found == nil {
		if ct := res.Header.Get("Content-Type"); res.StatusCode != http.StatusNotFound || ct != "application/problem+json" {
			v.t.Errorf("%s %s: not in the spec, answered %d %s (want a 404 problem)", req.Method, req.URL.Path, res.StatusCode, ct)
		}
		return res, nil
	}
	ct := res.Header.Get("Content-Type")
	stream := strings.HasPrefix(ct, "application/x-ndjson") || strings.HasPrefix(ct, "text/event-stream") || strings.HasPrefix(ct, "application/yaml")
	var body []byte
	if !stream {
		body, err = io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return nil, err
		}
		res.Body = io.NopCloser(bytes.NewReader(body))
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: found.params, Route: found.route},
		Status:                 res.StatusCode,
		Header:                 res.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: stream},
	}
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		var re *openapi3filter.ResponseError
		if errors.As(err, &re) || err != nil {
			v.t.Errorf("%s %s: response %d does not fit the spec: %v\n%s", req.Method, req.URL.Path, res.StatusCode, err, body)
		}
	}
	return res, nil
}
