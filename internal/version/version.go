// Package version says which podflow this is: the release (set at link time
// by the Makefile and the Dockerfile) and the commit it was built from (the
// one Go records in the binary).
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// version and commit are set with -ldflags "-X
// github.com/podflow/podflow/internal/version.version=v1.2.3" (and .commit,
// for builds without the .git folder, as in the image); without commit, the
// revision Go records from the git checkout is used.
var (
	version = "dev"
	commit  = ""
)

// Info is the build's identity.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"git_version"` // Airflow's /version field name
	Modified  bool   `json:"modified"`    // built from a tree with uncommitted changes
	GoVersion string `json:"go_version"`
}

// Get reads the build's identity.
func Get() Info {
	info := Info{Version: version, Commit: "unknown", GoVersion: runtime.Version()}
	if commit != "" {
		info.Commit, info.Modified = strings.CutSuffix(commit, "-dirty")
		return info
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Commit = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// String is the one line `podflow version` prints.
func (i Info) String() string {
	commit := i.Commit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if i.Modified {
		commit += "-dirty"
	}
	return fmt.Sprintf("podflow %s (commit %s, %s)", i.Version, commit, i.GoVersion)
}
