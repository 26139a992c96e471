package model

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The fuzz targets feed weight files from outside (safetensors, torch.save
// .pt through gotch's pickle reader): any input must give tensors or an
// error, never a panic. Seeds for the .pt reader, written by PyTorch 1.13
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
		path := filepath.Join(t.TempDir(), "w.safetensors")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		tensors, _, err := ReadSafetensors(path)
		if err != nil {
			return
		}
		for _, x := range tensors {
			drop(x)
		}
	})
}

func FuzzReadPyTorch(f *testing.F) {
	f.Add([]byte("PK\x03\x04"))
	f.Add([]byte("\x80\x02}q\x00."))
	f.Fuzz(func(t *testing.T, data []byte) {
		runtime.LockOSThread()
		path := filepath.Join(t.TempDir(), "model.pt")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		tensors, err := ReadPyTorch(path)
		if err != nil {
			return
		}
		for _, x := range tensors {
			drop(x)
		}
	})
}

// gotch's legacy loader looped forever on a file a tar reader sees as an
// empty archive (found by FuzzReadPyTorch: an empty file hung it);
// torchbuild's PatchLegacyLoader makes it an error.
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
// "runtime: out of memory" (found by FuzzReadPyTorch). torchbuild's
// PatchPickle and PatchStorage make these errors.
func TestReadPyTorchRefusesHugeDeclaredLengths(t *testing.T) {
	tib := binary.LittleEndian.AppendUint64(nil, 1<<40)
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"byte string of 1 TiB", append(append([]byte("\x80\x04\x8e"), tib...), "abc"...), "an item of 1099511627776 bytes"},
		{"frame of 1 TiB", append(append([]byte("\x80\x04\x95"), tib...), "abc"...), "an item of 1099511627776 bytes"},
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
