package atomicfile

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// payload is a self-checking file: a 32-byte SHA-256 of the body, then
// the body. A torn write fails the check.
func payload(version int, size int) []byte {
	body := bytes.Repeat([]byte(strconv.Itoa(version)+"-"), size/2)
	sum := sha256.Sum256(body)
	return append(sum[:], body...)
}

func valid(b []byte) bool {
	if len(b) < sha256.Size {
		return false
	}
	sum := sha256.Sum256(b[sha256.Size:])
	return bytes.Equal(sum[:], b[:sha256.Size])
}

// TestHelperWriter is the process the kill test kills: it rewrites one
// file forever, each version through Write in small chunks.
func TestHelperWriter(t *testing.T) {
	path := os.Getenv("ATOMICFILE_HELPER_PATH")
	if path == "" {
		t.Skip("helper process for TestKillDuringWriteNeverLeavesATornFile")
	}
	for v := 0; ; v++ {
		data := payload(v, 4<<20)
		err := Write(path, 0o644, func(w io.Writer) error {
			for off := 0; off < len(data); off += 64 << 10 {
				if _, err := w.Write(data[off:min(len(data), off+64<<10)]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestKillDuringWriteNeverLeavesATornFile kills a writer with SIGKILL at
// random moments after its first commit; the file must then be a whole
// version, never a prefix.
func TestKillDuringWriteNeverLeavesATornFile(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	sawFile := 0
	for i := range 12 {
		path := filepath.Join(dir, "state-"+strconv.Itoa(i)+".bin")
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1")
		cmd.Env = append(os.Environ(), "ATOMICFILE_HELPER_PATH="+path)
		require.NoError(t, cmd.Start())
		// From the first commit on, every moment is inside some write.
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if _, err := os.Stat(path); err == nil {
				break
			}
		}
		time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		_ = cmd.Wait()
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		sawFile++
		assert.True(t, valid(b), "kill %d left a torn file of %d bytes", i, len(b))
	}
	assert.Equal(t, 12, sawFile)
}

func TestWriteReplacesWholeAndCleansUp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.json")
	require.NoError(t, WriteFile(path, []byte("old"), 0o644))
	err := Write(path, 0o644, func(w io.Writer) error {
		_, _ = w.Write([]byte("half of the new"))
		return errors.New("encoder failed")
	})
	require.ErrorContains(t, err, "encoder failed")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "old", string(b), "a failed write keeps the old file")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "the temporary file is removed")

	require.NoError(t, WriteFile(path, []byte("new"), 0o640))
	b, _ = os.ReadFile(path)
	assert.Equal(t, "new", string(b))
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), st.Mode().Perm())

	require.Error(t, WriteFile(filepath.Join(dir, "missing", "x"), nil, 0o644))
}

func TestWriteFileUnsyncedReplacesAndCleansUp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "img.jpg")
	require.NoError(t, WriteFileUnsynced(path, []byte("old"), 0o644))
	require.NoError(t, WriteFileUnsynced(path, []byte("new"), 0o640))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "new", string(b))
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), st.Mode().Perm())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file is left")
	require.Error(t, WriteFileUnsynced(filepath.Join(dir, "missing", "x"), nil, 0o644))
}
