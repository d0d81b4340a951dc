package kubernetes

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/podflow/podflow/operators"
)

// WithFileRoots confines the files a DAG names — pod_template_file and
// config_file, after rendering — to these directories (the DAGs folder and
// podflow.yaml's allowed_paths in the daemons). A DAG author must not make
// the scheduler read, or quote, a file they could not read themselves.
// Without roots nothing is confined (tests, embedding).
func WithFileRoots(dirs ...string) Option {
	return func(o *Operator) {
		for _, d := range dirs {
			if d != "" {
				o.fileRoots = append(o.fileRoots, d)
			}
		}
	}
}

// templatePath is pod_template_file, relative to the DAG file's folder.
func templatePath(tc *operators.TaskContext, opts *PodOptions) string {
	path := opts.PodTemplateFile
	if path != "" && !filepath.IsAbs(path) && tc.DAG != nil && tc.DAG.Path != "" {
		path = filepath.Join(filepath.Dir(tc.DAG.Path), path)
	}
	return path
}

// checkFiles refuses a pod_template_file or config_file outside the roots.
func (o *Operator) checkFiles(tc *operators.TaskContext, opts *PodOptions) error {
	if len(o.fileRoots) == 0 {
		return nil
	}
	for _, f := range []struct{ option, path string }{
		{"pod_template_file", templatePath(tc, opts)},
		{"config_file", opts.ConfigFile},
	} {
		if f.path == "" {
			continue
		}
		if !insideAny(f.path, o.fileRoots) {
			return fmt.Errorf("task %s: %s %s is outside the DAGs folder and allowed_paths (podflow.yaml); "+
				"add its folder to allowed_paths to use it", tc.Task.ID, f.option, f.path)
		}
	}
	return nil
}

// insideAny reports whether path, with symbolic links resolved, lies in
// one of the root directories.
func insideAny(path string, roots []string) bool {
	p, err := realPath(path)
	if err != nil {
		return false
	}
	for _, root := range roots {
		r, err := realPath(root)
		if err != nil {
			continue
		}
		rel, err := filepath.Rel(r, p)
		if err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// realPath is the absolute path with links resolved; a file that does not
// exist yet keeps its cleaned absolute path (reading it fails later).
func realPath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(abs)
	if errors.Is(err, fs.ErrNotExist) {
		if _, statErr := os.Lstat(abs); statErr != nil {
			return abs, nil
		}
	}
	return real, err
}
