package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/podflow/podflow/internal/runstate"
)

// apiClient talks to a podflow webserver's REST API, for users who have no
// database access: `podflow trigger --api URL` (or PODFLOW_API_URL), with
// the token or API key in PODFLOW_API_TOKEN (an environment variable, so it
// never shows in the process list).
type apiClient struct {
	base  string // ends in /api/v1
	token string
	http  *http.Client
}

func newAPIClient(raw string) (*apiClient, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &exitError{code: 2, msg: fmt.Sprintf("--api %q: want the webserver's URL, e.g. http://127.0.0.1:8080", raw)}
	}
	if !strings.HasSuffix(u.Path, "/api/v1") {
		u.Path += "/api/v1"
	}
	// No overall timeout: a wait stream lasts as long as the run. Connecting
	// and the response headers are bounded by the transport.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 30 * time.Second
	return &apiClient{base: u.String(), token: os.Getenv("PODFLOW_API_TOKEN"), http: &http.Client{Transport: tr}}, nil
}

// problem is an RFC 9457 error body.
type problem struct {
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

func (c *apiClient) do(ctx context.Context, method, path string, body any, accept string) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", accept)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, c.base+path, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var p problem
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &p) == nil && (p.Detail != "" || p.Title != "") {
			msg = strings.TrimSpace(p.Title + ": " + p.Detail)
		}
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized && c.token == "" {
			hint = " (set PODFLOW_API_TOKEN to a token or API key)"
		}
		return nil, &exitError{code: 2, msg: fmt.Sprintf("%s %s: %s: %s%s", method, path, resp.Status, msg, hint)}
	}
	return resp, nil
}

// triggerRun creates a run through the API and returns its run id.
func (c *apiClient) triggerRun(ctx context.Context, dagID string, conf json.RawMessage, logical *time.Time) (string, error) {
	body := map[string]any{}
	if len(conf) > 0 {
		body["conf"] = conf
	}
	if logical != nil {
		body["logical_date"] = logical.Format(time.RFC3339Nano)
	}
	resp, err := c.do(ctx, http.MethodPost, "/dags/"+url.PathEscape(dagID)+"/dagRuns", body, "application/json")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var run struct {
		DagRunID string `json:"dag_run_id"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&run); err != nil || run.DagRunID == "" {
		return "", fmt.Errorf("trigger %s: the API's answer has no dag_run_id (%v)", dagID, err)
	}
	return run.DagRunID, nil
}

// waitRun follows the run's NDJSON wait stream, printing each new state on
// w, and returns the final state.
func (c *apiClient) waitRun(ctx context.Context, dagID, runID string, w io.Writer) (string, error) {
	path := "/dags/" + url.PathEscape(dagID) + "/dagRuns/" + url.PathEscape(runID) + "/wait"
	resp, err := c.do(ctx, http.MethodGet, path, nil, "application/x-ndjson")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	last := ""
	for sc.Scan() {
		var line struct {
			State string `json:"state"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return "", fmt.Errorf("wait for %s: bad line %q: %w", runID, sc.Text(), err)
		}
		if line.State != last {
			fmt.Fprintf(w, "run %s: %s\n", runID, line.State)
			last = line.State
		}
		if line.State == runstate.RunSuccess || line.State == runstate.RunFailed {
			return line.State, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("wait for %s: %w", runID, err)
	}
	return "", fmt.Errorf("wait for %s: the stream ended before the run did (last state %q)", runID, last)
}
