// Package spool is a durable, append-only queue of records on local disk,
// for work that was acknowledged but cannot be stored where it belongs
// yet (spend while the database is down). Records are JSON lines in
// segment files under one directory; every Append is written and fsync'd
// before it returns, so a record that Append accepted survives a crash or
// kill -9. A reader takes whole segments (Seal), replays them and removes
// each once done; a crash in between replays it again, so what is
// replayed must be idempotent.
//
// A torn last line (a crash in the middle of a write) is skipped when
// reading; the records before it are intact. A failed write seals its
// segment, so nothing is ever appended after a torn line.
package spool

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Spool is a spool of T. It is safe for concurrent use.
type Spool[T any] struct {
	dir string

	mu     sync.Mutex
	active *os.File // segment appended to; nil until the first Append
	name   string
	sealed []string // segments closed for appending, oldest first
	count  int      // records in sealed segments and the active one
	seq    int
	closed bool
}

const suffix = ".jsonl"

// Open opens (creating if needed, mode 0700) the spool in dir. Segments
// left by an earlier process are sealed and will be returned by Seal.
func Open[T any](dir string) (*Spool[T], error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &Spool[T]{dir: dir}
	for _, e := range ents {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), suffix) {
			s.sealed = append(s.sealed, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(s.sealed) // names start with a timestamp: oldest first
	for _, p := range s.sealed {
		recs, _, err := s.Read(p)
		if err != nil {
			return nil, err
		}
		s.count += len(recs)
	}
	return s, nil
}

// Dir is the spool's directory.
func (s *Spool[T]) Dir() string { return s.dir }

// Append writes recs to the active segment and syncs it to disk.
func (s *Spool[T]) Append(recs ...T) error {
	if len(recs) == 0 {
		return nil
	}
	var buf bytes.Buffer
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("spool: encode: %w", err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("spool: closed")
	}
	if s.active == nil {
		if err := s.newSegment(); err != nil {
			return err
		}
	}
	_, err := s.active.Write(buf.Bytes())
	if err == nil {
		err = s.active.Sync()
	}
	if err != nil {
		// Part of buf may be on disk without its newline; end the segment
		// there so the torn line stays the last one.
		name := s.name
		if serr := s.sealLocked(); serr != nil {
			err = errors.Join(err, serr)
		}
		return fmt.Errorf("spool: write %s: %w", name, err)
	}
	s.count += len(recs)
	return nil
}

func (s *Spool[T]) newSegment() error {
	s.seq++
	name := filepath.Join(s.dir, fmt.Sprintf("%020d-%06d%s", time.Now().UnixNano(), s.seq, suffix))
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	// The new name must be durable too, or a crash could lose the file.
	if err := syncDir(s.dir); err != nil {
		_ = f.Close()
		return err
	}
	s.active, s.name = f, name
	return nil
}

// Len is the number of records spooled and not yet removed.
func (s *Spool[T]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// Seal closes the active segment for appending (later Appends start a new
// one) and returns every sealed segment, oldest first.
func (s *Spool[T]) Seal() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.sealLocked(); err != nil {
		return nil, err
	}
	return slices.Clone(s.sealed), nil
}

func (s *Spool[T]) sealLocked() error {
	if s.active == nil {
		return nil
	}
	err := s.active.Close()
	s.sealed = append(s.sealed, s.name)
	s.active, s.name = nil, ""
	if err != nil {
		return fmt.Errorf("spool: close segment: %w", err)
	}
	return nil
}

// Read returns the records of a segment and how many lines it skipped:
// a final line without its newline (a torn write) and any line that does
// not decode, which would otherwise block the segment for ever.
func (s *Spool[T]) Read(path string) (recs []T, skipped int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(line) > 0 {
				skipped++
			}
			return recs, skipped, nil
		}
		if err != nil {
			return recs, skipped, fmt.Errorf("spool: read %s: %w", path, err)
		}
		var rec T
		if json.Unmarshal(line, &rec) != nil {
			skipped++
			continue
		}
		recs = append(recs, rec)
	}
}

// Remove deletes a sealed segment whose records have been replayed.
func (s *Spool[T]) Remove(path string, records int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.Index(s.sealed, path)
	if i < 0 {
		return fmt.Errorf("spool: %s is not a sealed segment", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: %w", err)
	}
	s.sealed = slices.Delete(s.sealed, i, i+1)
	s.count = max(0, s.count-records)
	return syncDir(s.dir)
}

// Close closes the active segment. The files stay for the next Open.
func (s *Spool[T]) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.active == nil {
		return nil
	}
	err := s.active.Close()
	s.active = nil
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("spool: sync %s: %w", dir, err)
	}
	return nil
}
