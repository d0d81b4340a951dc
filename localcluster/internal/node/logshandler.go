package node

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
)

// logsHandler serves /containerLogs/{namespace}/{pod}/{container} like a kubelet: the response headers go
// out at once, so a client following a silent container gets its stream immediately (virtual-kubelet's
// own handler sends them with the first log byte), and every write is flushed.
func logsHandler(p *provider) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		parts := strings.Split(strings.TrimPrefix(req.URL.Path, "/containerLogs/"), "/")
		if len(parts) != 3 {
			http.Error(w, "want /containerLogs/{namespace}/{pod}/{container}", http.StatusNotFound)
			return
		}
		opts, err := parseLogOptions(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		logs, err := p.GetContainerLogs(req.Context(), parts[0], parts[1], parts[2], opts)
		if err != nil {
			http.Error(w, err.Error(), errorStatus(err))
			return
		}
		defer logs.Close()
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		flusher, _ := w.(http.Flusher)
		if flusher != nil {
			flusher.Flush()
		}
		buf := make([]byte, 32*1024)
		for {
			n, err := logs.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return
				}
				if flusher != nil {
					flusher.Flush()
				}
			}
			if err != nil {
				return
			}
		}
	})
}

func errorStatus(err error) int {
	switch {
	case errdefs.IsNotFound(err):
		return http.StatusNotFound
	case errdefs.IsInvalidInput(err):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

func parseLogOptions(req *http.Request) (api.ContainerLogOpts, error) {
	q := req.URL.Query()
	var opts api.ContainerLogOpts
	var err error
	intParam := func(name string, dst *int) {
		if v := q.Get(name); v != "" && err == nil {
			if *dst, err = strconv.Atoi(v); err == nil && *dst < 0 {
				err = fmt.Errorf("%s must not be negative", name)
			}
		}
	}
	boolParam := func(name string, dst *bool) {
		if v := q.Get(name); v != "" && err == nil {
			*dst, err = strconv.ParseBool(v)
		}
	}
	intParam("tailLines", &opts.Tail)
	intParam("limitBytes", &opts.LimitBytes)
	intParam("sinceSeconds", &opts.SinceSeconds)
	boolParam("timestamps", &opts.Timestamps)
	boolParam("follow", &opts.Follow)
	boolParam("previous", &opts.Previous)
	if v := q.Get("sinceTime"); v != "" && err == nil {
		opts.SinceTime, err = time.Parse(time.RFC3339, v)
	}
	if err != nil {
		return opts, fmt.Errorf("log options: %w", err)
	}
	return opts, nil
}
