package api

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/podflow/podflow/internal/api/gen"
	"github.com/podflow/podflow/internal/store"
)

func TestWithSession(t *testing.T) {
	tests := []struct {
		name, method, header, origin, auth string
		cookie                             bool
		wantAuth                           string
		wantErr                            bool
	}{
		{name: "no cookie", method: "POST"},
		{name: "bearer header wins", method: "POST", auth: "Bearer k", cookie: true, wantAuth: "Bearer k"},
		{name: "cookie read", method: "GET", cookie: true, wantAuth: "Bearer tok"},
		{name: "cookie change with header", method: "POST", header: CSRFValue, cookie: true, wantAuth: "Bearer tok"},
		{name: "cookie change with header, same origin", method: "PATCH", header: CSRFValue, origin: "http://ui.example", cookie: true, wantAuth: "Bearer tok"},
		{name: "cookie change without header", method: "POST", cookie: true, wantErr: true},
		{name: "cookie change with a wrong header", method: "DELETE", header: "XMLHttpRequest", cookie: true, wantErr: true},
		{name: "cookie change from another origin", method: "POST", header: CSRFValue, origin: "http://evil.example", cookie: true, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "http://ui.example/api/v1/dags/x", nil)
			if tt.cookie {
				r.AddCookie(&http.Cookie{Name: SessionCookie, Value: "tok"})
			}
			if tt.header != "" {
				r.Header.Set(CSRFHeader, tt.header)
			}
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			got, err := withSession(r)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && got.Header.Get("Authorization") != tt.wantAuth {
				t.Errorf("Authorization = %q, want %q", got.Header.Get("Authorization"), tt.wantAuth)
			}
		})
	}
}

func TestGridCells(t *testing.T) {
	cells := GridCells([]store.TaskCell{
		{RunPK: 1, TaskID: "a", MapIndex: -1, State: "success"},
		{RunPK: 1, TaskID: "m", MapIndex: 0, State: "success"},
		{RunPK: 1, TaskID: "m", MapIndex: 1, State: "failed"},
		{RunPK: 1, TaskID: "m", MapIndex: 2, State: "running"},
		{RunPK: 2, TaskID: "a", MapIndex: -1, State: "queued"},
	})
	if len(cells[1]) != 2 || len(cells[2]) != 1 {
		t.Fatalf("cells = %+v", cells)
	}
	a, m := cells[1][0], cells[1][1]
	if a.TaskId != "a" || a.State != "success" || a.Mapped != 0 || a.StateCounts != nil {
		t.Errorf("unmapped cell %+v", a)
	}
	if m.TaskId != "m" || m.Mapped != 3 || m.State != gen.TaskInstanceState("failed") || (*m.StateCounts)["running"] != 1 {
		t.Errorf("mapped cell %+v (counts %v): want 3 instances, state failed (the most pressing)", m, *m.StateCounts)
	}
	if cells[2][0].State != "queued" {
		t.Errorf("run 2: %+v", cells[2])
	}
}
