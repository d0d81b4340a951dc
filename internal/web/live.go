package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// live is the Server-Sent Events stream of a page showing running work:
// on every wake-up of the API's Watcher (a LISTEN/NOTIFY notification or
// its one-second recheck) it renders the page's live part again, as the
// visitor, and sends it only when it changed. Once the part shows nothing
// running (no data-active), it says "idle" and ends, so an idle page holds
// no connection and makes no requests.
func (u *UI) live(w http.ResponseWriter, r *http.Request) {
	src := r.URL.Query().Get("src")
	target, err := liveTarget(src)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var who me
	if err := u.call(r, "GET", "/auth/me", nil, nil, &who); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	key := who.Role + " " + target.String()
	tick := u.watch.Ticks()
	defer tick.Close()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	flush := func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	fmt.Fprint(w, "retry: 2000\n\n")
	flush()
	var last [32]byte
	idle := time.NewTimer(0)
	defer idle.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		case <-idle.C: // the first render, at once
		}
		status, body := u.shared.render(key, func() (int, []byte) { return u.renderLive(r, target) })
		if status != http.StatusOK {
			fmt.Fprintf(w, "event: gone\ndata: %d\n\n", status)
			flush()
			return
		}
		if sum := sha256.Sum256(body); sum != last {
			last = sum
			var ev bytes.Buffer
			ev.WriteString("event: update\n")
			for _, line := range strings.Split(string(body), "\n") {
				ev.WriteString("data: ")
				ev.WriteString(line)
				ev.WriteString("\n")
			}
			ev.WriteString("\n")
			if _, err := w.Write(ev.Bytes()); err != nil {
				return
			}
			flush()
		}
		if !bytes.Contains(body, []byte("data-active")) {
			fmt.Fprint(w, "event: idle\ndata: {}\n\n")
			flush()
			return
		}
	}
}

// liveTarget checks that src is one of this UI's pages.
func liveTarget(src string) (*url.URL, error) {
	u, err := url.Parse(src)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return nil, fmt.Errorf("src %q is not a page of this site", src)
	}
	for _, p := range []string{"/api/", "/live", "/static/", "/login", "/logout", "/healthz", "/metrics"} {
		if strings.HasPrefix(u.Path, p) {
			return nil, fmt.Errorf("src %q is not a page with live parts", src)
		}
	}
	q := u.Query()
	q.Set("fragment", "live")
	u.RawQuery = q.Encode()
	return u, nil
}

// renderLive renders target's live part as the visitor of r.
func (u *UI) renderLive(r *http.Request, target *url.URL) (int, []byte) {
	// Not cancelled with this client: other streams may share the render.
	req, err := http.NewRequestWithContext(context.WithoutCancel(r.Context()), "GET", target.String(), nil)
	if err != nil {
		return http.StatusBadRequest, nil
	}
	req.RemoteAddr, req.Host = r.RemoteAddr, r.Host
	for _, h := range []string{"Authorization", "Cookie"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	u.mux.ServeHTTP(rec, req)
	return rec.status, rec.body.Bytes()
}

// sharedRenders lets the live streams of one page and one role share a
// render per wake-up: 50 people watching a busy grid cost one render a
// second, not fifty. The API's reads depend on the role only, so a render
// made for one viewer is what every viewer would get.
type sharedRenders struct {
	mu sync.Mutex
	m  map[string]*sharedRender
}

type sharedRender struct {
	once   sync.Once
	at     time.Time
	status int
	body   []byte
}

// sharedFor is how long a render is reused: shorter than the Watcher's
// one-second recheck, so every wake-up sees fresh data.
const sharedFor = 500 * time.Millisecond

func (s *sharedRenders) render(key string, fn func() (int, []byte)) (int, []byte) {
	now := time.Now()
	s.mu.Lock()
	if s.m == nil {
		s.m = map[string]*sharedRender{}
	}
	e := s.m[key]
	if e == nil || now.Sub(e.at) > sharedFor {
		for k, old := range s.m { // drop the stale ones, so the map stays small
			if now.Sub(old.at) > sharedFor {
				delete(s.m, k)
			}
		}
		e = &sharedRender{at: now}
		s.m[key] = e
	}
	s.mu.Unlock()
	e.once.Do(func() { e.status, e.body = fn() })
	return e.status, e.body
}
