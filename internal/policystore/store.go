// Package policystore holds the policy set in force and swaps in a new one
// when the policy directory changes; a set that fails to load is refused
// whole and the last good one keeps serving.
package policystore

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/agentpdp/agentpdp/internal/eval"
)

// Debounce is how long the store waits for a burst of file events (an
// editor's save, a git checkout) to settle before reloading.
const Debounce = 250 * time.Millisecond

// Hooks observe reloads, for logs and metrics.
type Hooks struct {
	Loaded func(set *eval.Set)
	Failed func(err error)
}

// Store is the current policy set. Safe for concurrent use.
type Store struct {
	compiler *eval.Compiler
	dir      string
	fsys     fs.FS
	current  atomic.Pointer[eval.Set]
	hooks    Hooks
	log      *slog.Logger
}

// Open loads the set under dir, or from fsys when dir is "" (the embedded
// defaults, which never change). It fails when the first load fails.
func Open(c *eval.Compiler, dir string, fsys fs.FS, log *slog.Logger, hooks Hooks) (*Store, error) {
	if dir != "" {
		if fi, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("policies: %w", err)
		} else if !fi.IsDir() {
			return nil, fmt.Errorf("policies: %s is not a directory", dir)
		}
		fsys = os.DirFS(dir)
	}
	s := &Store{compiler: c, dir: dir, fsys: fsys, hooks: hooks, log: log}
	set, err := c.LoadFS(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("load policies: %w", err)
	}
	s.current.Store(set)
	return s, nil
}

// Current returns the set in force.
func (s *Store) Current() *eval.Set { return s.current.Load() }

// Reload loads the directory again and swaps the result in if it is good.
func (s *Store) Reload() error {
	set, err := s.compiler.LoadFS(s.fsys, s.dir)
	if err != nil {
		s.log.Error("policy reload refused; the last good set keeps serving",
			"dir", s.dir, "version", s.Current().Version, "err", err)
		if s.hooks.Failed != nil {
			s.hooks.Failed(err)
		}
		return err
	}
	old := s.current.Swap(set)
	if old.Version != set.Version {
		s.log.Info("policies reloaded", "dir", s.dir, "version", set.Version, "previous", old.Version,
			"policies", len(set.Policies))
	}
	if s.hooks.Loaded != nil {
		s.hooks.Loaded(set)
	}
	return nil
}

// Watch reloads on every change under the directory until ctx ends. It
// watches directories, not files, so renames and atomic saves are seen.
func (s *Store) Watch(ctx context.Context) error {
	if s.dir == "" {
		return nil
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", s.dir, err)
	}
	defer w.Close()
	if err := addTree(w, s.dir); err != nil {
		return err
	}
	var timer <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					_ = addTree(w, ev.Name)
				}
			}
			timer = time.After(Debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			s.log.Warn("policy watcher error", "dir", s.dir, "err", err)
		case <-timer:
			timer = nil
			_ = s.Reload()
		}
	}
}

func addTree(w *fsnotify.Watcher, root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if err := w.Add(p); err != nil {
				return fmt.Errorf("watch %s: %w", p, err)
			}
		}
		return nil
	})
}
