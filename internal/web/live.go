package web

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/url"
	"strings"
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
		status, body := u.renderLive(r, target)
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
	req, err := http.NewRequestWithContext(r.Context(), "GET", target.String(), nil)
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
