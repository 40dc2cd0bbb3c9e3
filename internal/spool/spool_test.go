package spool

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

type rec struct {
	ID   string  `json:"id"`
	Cost float64 `json:"cost"`
}

func TestAppendSealReadRemove(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	s, err := Open[rec](dir)
	require.NoError(t, err)
	require.NoError(t, s.Append(rec{"a", 0.5}, rec{"b", 0.25}))
	require.NoError(t, s.Append(rec{"c", 1}))
	require.Equal(t, 3, s.Len())
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())

	segs, err := s.Seal()
	require.NoError(t, err)
	require.Len(t, segs, 1)
	require.NoError(t, s.Append(rec{"d", 2})) // a new segment
	segs, err = s.Seal()
	require.NoError(t, err)
	require.Len(t, segs, 2)
	got, skipped, err := s.Read(segs[0])
	require.NoError(t, err)
	require.Zero(t, skipped)
	require.Equal(t, []rec{{"a", 0.5}, {"b", 0.25}, {"c", 1}}, got)
	require.NoError(t, s.Remove(segs[0], len(got)))
	require.Equal(t, 1, s.Len())
	require.NoError(t, s.Close())
	require.Error(t, s.Append(rec{"e", 1}), "closed")
}

// TestSurvivesRestartAndTornTail: what Append accepted is there after the
// process is gone; a torn last line (a crash mid-write) and a corrupt line
// are skipped, the rest is read.
func TestSurvivesRestartAndTornTail(t *testing.T) {
	dir := t.TempDir()
	s, err := Open[rec](dir)
	require.NoError(t, err)
	require.NoError(t, s.Append(rec{"a", 1}, rec{"b", 2}))
	segs, err := s.Seal()
	require.NoError(t, err)
	// No Close: the process died. Tear the tail and corrupt nothing else.
	f, err := os.OpenFile(segs[0], os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"id":"c","co`)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.NoError(t, os.WriteFile(filepath.Join(dir, "00000000000000000001-000001.jsonl"), []byte("garbage\n{\"id\":\"z\",\"cost\":3}\n"), 0o600))

	s2, err := Open[rec](dir)
	require.NoError(t, err)
	require.Equal(t, 3, s2.Len())
	segs, err = s2.Seal()
	require.NoError(t, err)
	require.Len(t, segs, 2)
	got, skipped, err := s2.Read(segs[0])
	require.NoError(t, err)
	require.Equal(t, []rec{{"z", 3}}, got, "the older segment first")
	require.Equal(t, 1, skipped)
	got, skipped, err = s2.Read(segs[1])
	require.NoError(t, err)
	require.Equal(t, []rec{{"a", 1}, {"b", 2}}, got)
	require.Equal(t, 1, skipped)
}
