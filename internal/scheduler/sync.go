package scheduler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/store"
)

// folderState remembers what the DAGs folder looked like at the last sync,
// so an unchanged folder costs one directory walk and no parsing, and a
// changed one a parse of the changed files only.
type folderState struct {
	signature string
	synced    map[string]string // dag_id → "hash path" last written; a broken file's path → its hash
	loader    *dag.FolderLoader
}

func newFolderState(p *dag.Parser) *folderState {
	return &folderState{synced: map[string]string{}, loader: &dag.FolderLoader{Parser: p}}
}

// folderSignature summarises every DAG file's name, size and mtime.
func folderSignature(dir string) string {
	var parts []string
	_ = filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if e.IsDir() && path != dir && strings.HasPrefix(e.Name(), ".") {
			return filepath.SkipDir
		}
		if e.IsDir() || !(strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return nil
		}
		parts = append(parts, path+"|"+info.ModTime().String()+"|"+strconv.FormatInt(info.Size(), 10))
		return nil
	})
	sort.Strings(parts)
	h := sha256.Sum256([]byte(strings.Join(parts, "\n")))
	return hex.EncodeToString(h[:])
}

// syncLoop keeps the DAGs folder in sync every SyncInterval, apart from the
// scheduling loop: a slow or hostile DAG file delays only this sync, never
// run creation, task starts, retries or zombie checks. A sync that loaded
// something wakes the loop.
func (s *Scheduler) syncLoop(ctx context.Context) {
	if s.cfg.DagsFolder == "" {
		return
	}
	t := time.NewTicker(s.cfg.SyncInterval)
	defer t.Stop()
	for {
		if s.syncDags(ctx) {
			signal(s.loopWake)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// syncDags parses the DAGs folder when it changed and writes new versions
// and parse errors to the database; it reports whether a DAG was saved. A
// broken file keeps its DAG's last good version running.
func (s *Scheduler) syncDags(ctx context.Context) (loaded bool) {
	if _, err := os.Stat(s.cfg.DagsFolder); err != nil {
		s.log.Warn("DAGs folder not readable", "dags_folder", s.cfg.DagsFolder, "error", err)
		return false
	}
	sig := folderSignature(s.cfg.DagsFolder)
	if sig == s.folder.signature {
		return false
	}
	folder := s.folder.loader.Load(s.cfg.DagsFolder)
	ok := true
	for _, f := range folder.Unchanged {
		// Not parsed again, but not saved either (its save failed, or it
		// was a duplicate of a file since removed): parse it next time.
		if s.folder.synced[f.DagID] != f.Hash+" "+f.Path {
			s.folder.loader.Forget(f.Path)
			ok = false
		}
	}
	for _, d := range folder.DAGs {
		if s.folder.synced[d.ID] == d.Hash+" "+d.Path { // a file renamed or moved is saved again (its path)
			continue
		}
		s.dags.put(d)
		if err := s.saveDag(ctx, d); err != nil {
			s.log.Error("save DAG", "dag_id", d.ID, "error", err)
			s.folder.loader.Forget(d.Path)
			ok = false
			continue
		}
		s.folder.synced[d.ID] = d.Hash + " " + d.Path
		loaded = true
		s.log.Info("DAG loaded", "dag_id", d.ID, "path", d.Path, "version", d.Hash[:12], "tasks", len(d.Tasks))
	}
	for path, errs := range folder.Errors {
		data, _ := os.ReadFile(path)
		sum := sha256.Sum256(data)
		hash := hex.EncodeToString(sum[:])
		if s.folder.synced[path] == hash {
			continue
		}
		s.log.Error("DAG file has errors; its last good version (if any) keeps running", "path", path, "errors", errs.Error())
		if err := s.store.SetFileBroken(ctx, path, hash, errs.Error()); err != nil {
			s.log.Error("record DAG file errors", "path", path, "error", err)
			ok = false
			continue
		}
		s.folder.synced[path] = hash
	}
	if folder.Complete() && !s.deactivateRemoved(ctx, folder) {
		ok = false
	}
	if ok {
		s.folder.signature = sig
	}
	return loaded
}

// deactivateRemoved marks inactive the DAGs whose file is gone from the
// folder and that no other file there defines (they get no more scheduled
// runs; their history stays), as Airflow does, and forgets what was synced
// of removed files, so that a file put back is saved again. It reports
// whether that was recorded.
func (s *Scheduler) deactivateRemoved(ctx context.Context, folder *dag.Folder) bool {
	files := folder.Files
	defined := make([]string, 0, len(folder.DAGs)+len(folder.Unchanged))
	for _, d := range folder.DAGs {
		defined = append(defined, d.ID)
	}
	for _, f := range folder.Unchanged {
		defined = append(defined, f.DagID)
	}
	ids, err := s.store.DeactivateRemovedFiles(ctx, filepath.Clean(s.cfg.DagsFolder), files, defined)
	if err != nil {
		s.log.Error("deactivate the DAGs of removed files", "error", err)
		return false
	}
	for _, id := range ids {
		delete(s.folder.synced, id)
		s.log.Info("DAG file removed: the DAG is inactive (no more scheduled runs; its history stays)", "dag_id", id)
	}
	present := make(map[string]bool, len(files))
	for _, f := range files {
		present[f] = true
	}
	for key := range s.folder.synced {
		if strings.Contains(key, "/") && !present[key] { // a broken file's path, now removed
			delete(s.folder.synced, key)
		}
	}
	return true
}

func (s *Scheduler) saveDag(ctx context.Context, d *dag.DAG) error {
	return s.store.InTx(ctx, func(q store.Q) error { return RegisterDAG(ctx, q, d) })
}
