package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/podflow/podflow/internal/auth"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
)

// problem is an RFC 9457 problem: every error the API answers.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

func (p *problem) Error() string { return p.Detail }

func newProblem(status int, format string, args ...any) *problem {
	return &problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: fmt.Sprintf(format, args...)}
}

func writeProblem(w http.ResponseWriter, p *problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="podflow"`)
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// problemOf maps an error from a handler or the store to its problem: the
// sentinel errors say the status, the message is the detail. An unexpected
// error is a 500 whose detail hides the internals (they are logged).
func problemOf(err error) (p *problem, internal bool) {
	var confErr *scheduler.ConfError
	switch {
	case errors.As(err, &p):
		return p, false
	case errors.Is(err, store.ErrNotFound):
		return newProblem(http.StatusNotFound, "%s", err), false
	case errors.Is(err, store.ErrBadInput), errors.As(err, &confErr):
		return newProblem(http.StatusBadRequest, "%s", strings.TrimPrefix(err.Error(), store.ErrBadInput.Error()+": ")), false
	case errors.Is(err, store.ErrExists), errors.Is(err, scheduler.ErrVersionChange):
		return newProblem(http.StatusConflict, "%s", err), false
	case errors.Is(err, auth.ErrBadCredentials), errors.Is(err, auth.ErrUnauthenticated):
		return newProblem(http.StatusUnauthorized, "%s", err), false
	case errors.Is(err, auth.ErrRateLimited):
		return newProblem(http.StatusTooManyRequests, "%s", err), false
	}
	return newProblem(http.StatusInternalServerError, "internal error; the server log has the details"), true
}

// validationProblem turns a request that does not fit the spec into a 400
// whose detail names the parameter or body field.
func validationProblem(err error) *problem {
	var re *openapi3filter.RequestError
	if !errors.As(err, &re) {
		return newProblem(http.StatusBadRequest, "%s", err)
	}
	reason := re.Reason
	var se *openapi3.SchemaError
	var pe *openapi3filter.ParseError
	if errors.As(re.Err, &pe) && re.Parameter == nil {
		return newProblem(http.StatusBadRequest, "request body is not valid JSON: %s", pe.Error())
	}
	if errors.As(re.Err, &se) {
		reason = se.Reason
		if ptr := se.JSONPointer(); len(ptr) > 0 {
			reason = fmt.Sprintf("field %q: %s", strings.Join(ptr, "."), reason)
		}
	} else if re.Err != nil {
		if reason == "" {
			reason = re.Err.Error()
		} else {
			reason += ": " + re.Err.Error()
		}
	}
	if re.Parameter != nil {
		return newProblem(http.StatusBadRequest, "%s parameter %q: %s", re.Parameter.In, re.Parameter.Name, reason)
	}
	return newProblem(http.StatusBadRequest, "request body: %s", reason)
}
