// Package web is podflow's web UI: server-rendered pages (html/template)
// and a little JavaScript of our own, embedded in the binary and served by
// the same http server as the REST API.
//
// The UI has no power of its own. Every page reads its data by calling the
// API's operations in-process with the visitor's credentials (the session
// cookie the login page sets, or an Authorization header), so it sees what
// the API lets that user see; every change is a fetch from the browser to
// /api/v1, so the API's role check, CSRF check and audit log apply. The
// buttons a role may not use are not drawn (GET /auth/me says the role).
//
//	browser ─▶ page handler ─▶ API handler (in-process, same auth) ─▶ store
//	browser ─(fetch, X-Requested-With)─▶ /api/v1 ─▶ guard ─▶ store
//	browser ─(EventSource /live)─▶ Watcher tick ─▶ re-render the page's live part, sent only when it changed
package web

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/podflow/podflow/internal/api"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure the UI.
type Options struct {
	// API is the REST API's handler (api.New); the UI calls it in-process
	// and serves it under /api/v1, /healthz and /metrics.
	API http.Handler
	// Watcher wakes live pages (the API's, whose Run the caller runs).
	Watcher *api.Watcher
	// AuthOn says whether logins are on (builtin auth); with auth none
	// there is no login page.
	AuthOn bool
	Logger hclog.Logger
}

// UI serves the web UI and, under it, the API.
type UI struct {
	api    http.Handler
	watch  *api.Watcher
	authOn bool
	log    hclog.Logger
	pages  map[string]*template.Template
	mux    *http.ServeMux
	shared sharedRenders
}

// New builds the UI's handler.
func New(o Options) (*UI, error) {
	if o.API == nil || o.Watcher == nil {
		return nil, errors.New("web: API and Watcher are required")
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	u := &UI{api: o.API, watch: o.Watcher, authOn: o.AuthOn, log: o.Logger.Named("web"), pages: pages, mux: http.NewServeMux()}
	u.routes()
	return u, nil
}

func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) { u.mux.ServeHTTP(w, r) }

func (u *UI) routes() {
	m := u.mux
	m.Handle("/api/", u.api)
	m.Handle("/healthz", u.api)
	m.Handle("/metrics", u.api)
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))
	m.HandleFunc("GET /login", u.loginPage)
	m.HandleFunc("POST /login", u.login)
	m.HandleFunc("POST /logout", u.logout)
	m.HandleFunc("GET /live", u.live)
	m.HandleFunc("GET /{$}", u.page("dags", u.dagsData))
	m.HandleFunc("GET /dags/{dag}", u.page("grid", u.gridData))
	m.HandleFunc("GET /dags/{dag}/graph", u.page("graph", u.graphData))
	m.HandleFunc("GET /dags/{dag}/trigger", u.page("trigger", u.triggerData))
	m.HandleFunc("GET /dags/{dag}/source", u.page("source", u.sourceData))
	m.HandleFunc("GET /dags/{dag}/runs/{run}", u.page("run", u.runData))
	m.HandleFunc("GET /dags/{dag}/runs/{run}/tasks/{task}", u.page("task", u.taskData))
	m.HandleFunc("GET /dags/{dag}/runs/{run}/tasks/{task}/logs/{try}", u.page("log", u.logData))
	m.HandleFunc("GET /dags/{dag}/runs/{run}/tasks/{task}/logs/{try}/raw", u.rawLog)
	m.HandleFunc("GET /audit", u.page("audit", u.auditData))
	m.HandleFunc("GET /pools", u.page("pools", u.poolsData))
	m.HandleFunc("GET /assets", u.page("assets", u.assetsData))
}

// cacheStatic lets browsers keep the embedded files for an hour: they
// change only with the binary.
func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

// apiError is an API answer other than 2xx: its status and problem detail.
type apiError struct {
	Status int
	Detail string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d: %s", e.Status, e.Detail) }

// call runs an API operation in-process as the visitor of r and decodes
// its JSON answer into out.
func (u *UI) call(r *http.Request, method, path string, q url.Values, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	target := api.BasePath + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(r.Context(), method, target, rd)
	if err != nil {
		return err
	}
	req.RemoteAddr = r.RemoteAddr
	req.Host = r.Host
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a := r.Header.Get("Authorization"); a != "" {
		req.Header.Set("Authorization", a)
	} else if c, err := r.Cookie(api.SessionCookie); err == nil {
		req.Header.Set("Authorization", "Bearer "+c.Value)
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	u.api.ServeHTTP(rec, req)
	if rec.status/100 != 2 {
		var p struct {
			Detail string `json:"detail"`
		}
		_ = json.Unmarshal(rec.body.Bytes(), &p)
		if p.Detail == "" {
			p.Detail = http.StatusText(rec.status)
		}
		return &apiError{Status: rec.status, Detail: p.Detail}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
		return fmt.Errorf("decode %s %s: %w", method, path, err)
	}
	return nil
}

// recorder is the in-process response of an API call.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(s int)           { r.status = s }

// esc escapes one path segment of an API path.
func esc(s string) string { return url.PathEscape(s) }

// me is who the visitor is, as GET /auth/me says.
type me struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	Role string `json:"role"`
}

func (m me) CanOp() bool    { return m.Role == "op" || m.Role == "admin" }
func (m me) CanAdmin() bool { return m.Role == "admin" }

// view is what every page template gets.
type view struct {
	Title  string
	Me     me
	AuthOn bool
	Path   string // the page's path and query, for live updates and login's next
	Nav    string // which top-level section is current
	Data   any
}

// pageData loads a page's data; it may answer with an error from call.
type pageData func(r *http.Request, v *view) error

// page renders a page: the whole page, or with ?fragment=live only its
// live part (what /live sends). An API 401 sends the visitor to log in.
func (u *UI) page(name string, load pageData) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := &view{AuthOn: u.authOn, Path: r.URL.RequestURI()}
		if err := u.call(r, "GET", "/auth/me", nil, nil, &v.Me); err != nil {
			u.fail(w, r, err)
			return
		}
		if err := load(r, v); err != nil {
			u.fail(w, r, err)
			return
		}
		block := "page"
		if r.URL.Query().Get("fragment") == "live" {
			block = "live"
		}
		u.render(w, name, block, v)
	}
}

func (u *UI) render(w http.ResponseWriter, name, block string, v *view) {
	var buf bytes.Buffer
	if err := u.pages[name].ExecuteTemplate(&buf, block, v); err != nil {
		u.log.Error("render", "page", name, "error", err)
		http.Error(w, "render "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = buf.WriteTo(w)
}

// fail answers a page whose data could not be loaded.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	status := http.StatusInternalServerError
	msg := err.Error()
	if errors.As(err, &ae) {
		status, msg = ae.Status, ae.Detail
		if status == http.StatusUnauthorized && u.authOn {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
	} else if !errors.Is(err, context.Canceled) {
		u.log.Error("page", "path", r.URL.Path, "error", err)
	}
	w.WriteHeader(status)
	u.render(w, "error", "page", &view{Title: http.StatusText(status), AuthOn: u.authOn, Path: r.URL.RequestURI(),
		Data: map[string]any{"Status": status, "Message": msg}})
}

// loginPage shows the login form (or, with auth none, goes home).
func (u *UI) loginPage(w http.ResponseWriter, r *http.Request) {
	if !u.authOn {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	u.render(w, "login", "page", &view{Title: "Log in", AuthOn: true, Data: map[string]any{"Next": safeNext(r.URL.Query().Get("next"))}})
}

// login exchanges the form's user name and password for a token through
// the API's createToken and keeps it in an HttpOnly, SameSite=Strict cookie.
func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	if !sameOriginForm(r) {
		http.Error(w, "cross-site login refused", http.StatusForbidden)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	var tok struct {
		AccessToken string    `json:"access_token"`
		ExpiresAt   time.Time `json:"expires_at"`
	}
	anon := r.Clone(r.Context())
	anon.Header.Del("Authorization")
	anon.Header.Del("Cookie")
	err := u.call(anon, "POST", "/auth/token", nil, map[string]string{"username": r.PostForm.Get("username"),
		"password": r.PostForm.Get("password")}, &tok)
	if err != nil {
		msg := err.Error()
		var ae *apiError
		if errors.As(err, &ae) {
			msg = ae.Detail
		}
		w.WriteHeader(http.StatusUnauthorized)
		u.render(w, "login", "page", &view{Title: "Log in", AuthOn: true, Data: map[string]any{"Next": next, "Error": msg,
			"Username": r.PostForm.Get("username")}})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: api.SessionCookie, Value: tok.AccessToken, Path: "/", Expires: tok.ExpiresAt,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (u *UI) logout(w http.ResponseWriter, r *http.Request) {
	if !sameOriginForm(r) {
		http.Error(w, "cross-site logout refused", http.StatusForbidden)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: api.SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// sameOriginForm refuses a form post another site's page made: the
// browser's Origin must name this host (browsers send it on every POST).
func sameOriginForm(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return r.Header.Get("Sec-Fetch-Site") == "" || r.Header.Get("Sec-Fetch-Site") == "same-origin"
	}
	p, err := url.Parse(o)
	return err == nil && p.Host == r.Host
}

// safeNext keeps a post-login redirect on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}
