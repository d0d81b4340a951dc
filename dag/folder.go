package dag

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/podflow/podflow/internal/parallel"
)

// Folder is the result of loading DAG files: the DAGs that are valid and
// the errors of the files that are not. One broken file never hides the
// others.
type Folder struct {
	DAGs   []*DAG            // valid DAGs, by path
	Errors map[string]Errors // problems by file (or folder) path
	// Unchanged: with a FolderLoader, the valid files not parsed again
	// since its last load, by path; their DAGs are not in DAGs.
	Unchanged []DAGFile
	// Files are every DAG file found, valid or not, sorted.
	Files []string
}

// Complete reports whether every folder was read: no error is about
// anything but a DAG file found. (Else a file missing from Files may just
// not have been seen.)
func (f *Folder) Complete() bool {
	for path := range f.Errors {
		if _, found := slices.BinarySearch(f.Files, path); !found {
			return false
		}
	}
	return true
}

// DAGFile names the DAG version a valid file defines.
type DAGFile struct {
	Path, DagID, Hash string
}

// DAG returns the DAG with the given id, or nil.
func (f *Folder) DAG(id string) *DAG {
	for _, d := range f.DAGs {
		if d.ID == id {
			return d
		}
	}
	return nil
}

// AllErrors returns every error, ordered by path and position.
func (f *Folder) AllErrors() Errors {
	paths := sortedKeys(f.Errors)
	var out Errors
	for _, p := range paths {
		out = append(out, f.Errors[p]...)
	}
	return out
}

// LoadFolder parses every *.yaml and *.yml file under dir, recursively
// (folders whose names start with "." are skipped).
func (p *Parser) LoadFolder(dir string) *Folder {
	return p.LoadPaths(dir)
}

// LoadPaths parses DAG files and folders of DAG files. Files are parsed in
// parallel (GOMAXPROCS at a time). A dag_id defined by more than one file
// is an error on every file after the first, in path order.
func (p *Parser) LoadPaths(paths ...string) *Folder {
	return p.load(nil, paths)
}

// FolderLoader loads one DAG folder again and again, parsing only the
// files added or changed (size or modification time) since its last load:
// an edit of one file among thousands costs one parse, not thousands. Of
// each file it keeps only what tells a change and the dag_id and version
// it defines, not the parsed DAG (a scheduler with thousands of DAGs keeps
// parsed versions only while runs use them), so a load returns in DAGs
// only the files parsed this time and lists the others in Unchanged.
// It is not safe for concurrent use.
type FolderLoader struct {
	Parser *Parser
	files  map[string]*parsedFile // by path, as of the last load
}

type parsedFile struct {
	mod  time.Time
	size int64
	errs Errors
	// Of a valid file: its DAG's id, version and the position of its
	// dag_id (for a duplicate's error).
	id, hash         string
	idLine, idColumn int
}

// Load loads dir as LoadFolder does, skipping every file unchanged since
// the last load (listed in Unchanged).
func (l *FolderLoader) Load(dir string) *Folder {
	if l.files == nil {
		l.files = map[string]*parsedFile{}
	}
	return l.Parser.load(l.files, []string{dir})
}

// Forget makes the next load parse path again, changed or not (its DAG
// was not taken up, say, and is wanted again).
func (l *FolderLoader) Forget(path string) { delete(l.files, path) }

// load parses the files under paths; with a cache, files whose size and
// modification time it holds are not parsed again, and the cache is left
// holding exactly the files found.
func (p *Parser) load(cache map[string]*parsedFile, paths []string) *Folder {
	folder := &Folder{Errors: map[string]Errors{}}
	files := p.dagFiles(folder, paths)
	folder.Files = files
	parsed := make([]*parsedFile, len(files))
	fresh := make([]*DAG, len(files)) // the DAGs parsed by this load
	var todo []int
	for i, path := range files {
		if cache == nil {
			todo = append(todo, i)
			continue
		}
		info, err := os.Stat(path)
		if err != nil {
			parsed[i] = &parsedFile{errs: Errors{{Path: path, Msg: fmt.Sprintf("read DAG file: %v", unwrapPathError(err))}}}
			continue
		}
		if c, ok := cache[path]; ok && c.mod.Equal(info.ModTime()) && c.size == info.Size() {
			parsed[i] = c
			continue
		}
		parsed[i] = &parsedFile{mod: info.ModTime(), size: info.Size()}
		todo = append(todo, i)
	}
	parallel.Each(len(todo), func(k int) {
		i := todo[k]
		d, errs := p.parseWithinBudget(files[i])
		if parsed[i] == nil {
			parsed[i] = &parsedFile{}
		}
		parsed[i].errs = errs
		if d != nil {
			fresh[i] = d
			parsed[i].id, parsed[i].hash = d.ID, d.Hash
			parsed[i].idLine, parsed[i].idColumn = d.idLine, d.idColumn
		}
	})
	if cache != nil {
		clear(cache)
		for i, path := range files {
			cache[path] = parsed[i]
		}
	}

	firstPath := map[string]string{}
	for i, path := range files {
		f := parsed[i]
		if len(f.errs) > 0 {
			folder.Errors[path] = append(folder.Errors[path], f.errs...)
			continue
		}
		if first, dup := firstPath[f.id]; dup {
			folder.Errors[path] = append(folder.Errors[path], &Error{Path: path, Line: max(f.idLine, 1), Column: max(f.idColumn, 1),
				Msg: fmt.Sprintf("dag_id: %q is already defined in %s", f.id, first)})
			continue
		}
		firstPath[f.id] = path
		if fresh[i] != nil {
			folder.DAGs = append(folder.DAGs, fresh[i])
		} else {
			folder.Unchanged = append(folder.Unchanged, DAGFile{Path: path, DagID: f.id, Hash: f.hash})
		}
	}
	return folder
}

// parseWithinBudget parses a file, giving up on it after the parser's
// FileBudget. The parse it gave up on finishes in the background (the
// template and size limits bound it); its result is dropped.
func (p *Parser) parseWithinBudget(path string) (*DAG, Errors) {
	budget := p.FileBudget
	if budget <= 0 {
		budget = DefaultFileBudget
	}
	type parsed struct {
		d    *DAG
		errs Errors
	}
	done := make(chan parsed, 1)
	go func() {
		d, errs := p.ParseFile(path)
		done <- parsed{d, errs}
	}()
	timer := time.NewTimer(budget)
	defer timer.Stop()
	select {
	case r := <-done:
		return r.d, r.errs
	case <-timer.C:
		return nil, Errors{{Path: path, Line: 1, Column: 1,
			Msg: fmt.Sprintf("parsing took longer than %s; the file is skipped until it changes", budget)}}
	}
}

// dagFiles lists the DAG files named by paths, sorted and each once;
// problems reading folders go to folder.Errors.
func (p *Parser) dagFiles(folder *Folder, paths []string) []string {
	seen := map[string]bool{}
	var files []string
	add := func(path string) {
		if !seen[path] {
			seen[path] = true
			files = append(files, path)
		}
	}
	for _, root := range paths {
		info, err := os.Stat(root)
		if err != nil {
			folder.Errors[root] = append(folder.Errors[root], &Error{Path: root, Msg: fmt.Sprintf("read DAGs: %v", unwrapPathError(err))})
			continue
		}
		if !info.IsDir() {
			add(filepath.Clean(root))
			continue
		}
		err = filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				folder.Errors[path] = append(folder.Errors[path], &Error{Path: path, Msg: fmt.Sprintf("read DAGs: %v", unwrapPathError(err))})
				return nil
			}
			if e.IsDir() {
				if path != root && strings.HasPrefix(e.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if isDAGFile(e.Name()) {
				add(path)
			}
			return nil
		})
		if err != nil {
			folder.Errors[root] = append(folder.Errors[root], &Error{Path: root, Msg: fmt.Sprintf("read DAGs: %v", err)})
		}
	}
	sort.Strings(files)
	return files
}

// isDAGFile reports whether a file name is a DAG file's.
func isDAGFile(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	ext := strings.ToLower(filepath.Ext(name))
	return ext == ".yaml" || ext == ".yml"
}
