package model

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The fuzz targets feed weight files from outside (safetensors, torch.save
// .pt through ReadPyTorch's restricted unpickler): any input must give
// tensors or an error, never a panic, and in bounded time and memory. Seeds for the .pt reader, written by PyTorch 1.13
// (a plain state dict, a wrapped one, the legacy format), live in
// testdata/fuzz/FuzzReadPyTorch.

func safetensorsBytes(header string, body []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), body...)
}

func FuzzReadSafetensors(f *testing.F) {
	f.Add(safetensorsBytes(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"a":"b"}}`, make([]byte, 8)))
	f.Add(safetensorsBytes(`{"w":{"dtype":"I64","shape":[1,1],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[],"data_offsets":[8,10]}}`, make([]byte, 10)))
	f.Add(safetensorsBytes(`{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}`, make([]byte, 8)))
	f.Add(safetensorsBytes(`{"w":{"dtype":"F32","shape":[-2],"data_offsets":[8,0]}}`, make([]byte, 8)))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		runtime.LockOSThread() // gotch's last error is thread-local
		defer runtime.UnlockOSThread()
		tensors, _, err := decodeSafetensors(data)
		if err == nil {
			freeAll(tensors)
		}
		// ReadCheckpointInfo's header-only reader of the same files.
		_, _ = readSafetensorsMeta(bytes.NewReader(data), int64(len(data)))
	})
}

func FuzzReadPyTorch(f *testing.F) {
	f.Add([]byte("PK\x03\x04"))
	f.Add([]byte("\x80\x02}q\x00."))
	f.Fuzz(func(t *testing.T, data []byte) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		// On memory: a file per input spent two thirds of each run in
		// system calls (mkdir, write, unlink).
		tensors, err := readPyTorch(bytes.NewReader(data), int64(len(data)))
		if err == nil {
			freeAll(tensors)
		}
	})
}

// gotch's legacy loader looped forever on a file a tar reader sees as an
// empty archive (found by FuzzReadPyTorch: an empty file hung it); kept as
// a regression test of ReadPyTorch's own reader.
func TestReadPyTorchRefusesEmptyArchives(t *testing.T) {
	for name, data := range map[string][]byte{"empty": {}, "zero blocks": make([]byte, 1024)} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "model.pt")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadPyTorch(path)
			if err == nil || !strings.Contains(err.Error(), "not a torch.save file") {
				t.Fatalf("want a clear error, got %v", err)
			}
		})
	}
}

// gotch's unpickler allocated a pickle's declared lengths before reading
// them: a 14-byte file declaring a 1 TiB item killed the process with
// "runtime: out of memory" (found by FuzzReadPyTorch). ReadPyTorch's own
// unpickler checks every length against the bytes that remain.
func TestReadPyTorchRefusesHugeDeclaredLengths(t *testing.T) {
	tib := binary.LittleEndian.AppendUint64(nil, 1<<40)
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"byte string of 1 TiB", append(append([]byte("\x80\x04\x8e"), tib...), "abc"...), "an item of 1099511627776 bytes, but only 3 bytes remain"},
		{"frame of 1 TiB", append(append([]byte("\x80\x04\x95"), tib...), "abc"...), "a frame of 1099511627776 bytes, but only 3 bytes remain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "model.pt")
			require.NoError(t, os.WriteFile(path, tt.data, 0o644))
			_, err := ReadPyTorch(path)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

// ReadCheckpointInfo allocated the header length a file declared (up to
// 100 MB) before reading it; it is now checked against the file first.
func TestReadCheckpointInfoChecksTheHeaderLengthAgainstTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.safetensors")
	require.NoError(t, os.WriteFile(path, append(binary.LittleEndian.AppendUint64(nil, 50<<20), "{}"...), 0o644))
	_, err := ReadCheckpointInfo(path)
	require.ErrorContains(t, err, "header length 52428800 exceeds the file (10 bytes)")
}
