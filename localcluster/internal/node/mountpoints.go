package node

import (
	"bufio"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// mountPoints creates the host directories (or empty files) a container's mountPaths need and removes them
// again. Creating a directory is the only change a pod makes to the host's filesystem for a mount: the bind
// itself lives in the container's private mount namespace. A created path is counted per container that
// uses it and removed, when empty, once the last one has exited and no mount namespace on the machine
// (another localcluster's pods included) still has something mounted on it.
//
// Several localclusters may share a mount point (two test binaries' pods both mounting /airflow/xcom), so
// created paths are also registered machine-wide, as files in registry: whichever localcluster is the last
// to use a registered path removes it, not only the one that created it.
type mountPoints struct {
	registry string

	mu   sync.Mutex
	refs map[string]int
}

// defaultMountPointRegistry is on tmpfs, so a reboot forgets it together with the mounts.
const defaultMountPointRegistry = "/run/localcluster/mountpoints"

func newMountPoints(registry string) *mountPoints {
	return &mountPoints{registry: registry, refs: map[string]int{}}
}

func (m *mountPoints) registryFile(path string) string {
	return filepath.Join(m.registry, url.PathEscape(path))
}

func (m *mountPoints) register(path string) {
	if err := os.MkdirAll(m.registry, 0o755); err == nil {
		_ = os.WriteFile(m.registryFile(path), nil, 0o644)
	}
}

func (m *mountPoints) registered(path string) bool {
	_, err := os.Stat(m.registryFile(path))
	return err == nil
}

func (m *mountPoints) unregister(path string) {
	_ = os.Remove(m.registryFile(path))
}

type mountTarget struct {
	path   string
	isFile bool
}

// acquire makes every target exist and returns the paths this node is now responsible for.
func (m *mountPoints) acquire(targets []mountTarget) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var held []string
	for _, t := range targets {
		missing := missingPaths(t.path)
		for i := len(missing) - 1; i >= 0; i-- {
			p := missing[i]
			var err error
			if i == 0 && t.isFile {
				var f *os.File
				f, err = os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
				if err == nil {
					f.Close()
				}
			} else {
				err = os.Mkdir(p, 0o755)
			}
			if err != nil && !errors.Is(err, os.ErrExist) {
				m.releaseLocked(held)
				return nil, err
			}
			if err == nil {
				m.refs[p] = 0
				m.register(p)
			}
		}
		// Paths created earlier, for another container or by another localcluster, are shared: count this
		// container too.
		for p := t.path; p != "/" && p != "."; p = filepath.Dir(p) {
			if _, ok := m.refs[p]; !ok && m.registered(p) {
				m.refs[p] = 0
			}
			if _, ok := m.refs[p]; ok {
				m.refs[p]++
				held = append(held, p)
			}
		}
	}
	return held, nil
}

// release drops the references taken by acquire and removes what is no longer used.
func (m *mountPoints) release(held []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.releaseLocked(held)
}

func (m *mountPoints) releaseLocked(held []string) {
	var unused []string
	for _, p := range held {
		m.refs[p]--
		if m.refs[p] <= 0 {
			unused = append(unused, p)
		}
	}
	if len(unused) == 0 {
		return
	}
	mounted := mountedPaths()
	// Deepest first, so a parent is empty by the time it is tried.
	sort.Slice(unused, func(i, j int) bool { return len(unused[i]) > len(unused[j]) })
	for _, p := range unused {
		if mounted[p] {
			continue
		}
		if removeIfEmpty(p) {
			delete(m.refs, p)
			m.unregister(p)
		}
	}
}

// releaseAll removes every path still held, at shutdown.
func (m *mountPoints) releaseAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	var all []string
	for p := range m.refs {
		all = append(all, p)
		m.refs[p] = 1
	}
	m.releaseLocked(all)
}

// removeIfEmpty removes p if it is an empty directory or an empty file, and reports whether p is gone.
// Anything a user put there stays.
func removeIfEmpty(p string) bool {
	info, err := os.Lstat(p)
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	if info.IsDir() || (info.Mode().IsRegular() && info.Size() == 0) {
		return os.Remove(p) == nil // a non-empty directory stays, as it should
	}
	return false
}

// missingPaths lists path and those of its ancestors that do not exist, deepest first.
func missingPaths(path string) []string {
	var missing []string
	for p := filepath.Clean(path); p != "/" && p != "."; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil {
			break
		}
		missing = append(missing, p)
	}
	return missing
}

// mountedPaths collects the mount points of every mount namespace on the machine.
func mountedPaths() map[string]bool {
	seen := map[string]bool{}
	namespaces := map[string]bool{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		ns, err := os.Readlink(filepath.Join("/proc", e.Name(), "ns", "mnt"))
		if err != nil || namespaces[ns] {
			continue
		}
		namespaces[ns] = true
		f, err := os.Open(filepath.Join("/proc", e.Name(), "mountinfo"))
		if err != nil {
			continue
		}
		scanner := bufio.NewScanner(f)
		scanner.Buffer(make([]byte, 64*1024), 1024*1024)
		for scanner.Scan() {
			fields := strings.Fields(scanner.Text())
			if len(fields) > 4 {
				seen[unescapeMountPath(fields[4])] = true
			}
		}
		f.Close()
	}
	return seen
}

func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range []byte(s[i+1 : i+4]) {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + (c - '0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
