package model

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/arch"
)

// CheckpointFormat marks our checkpoints: a safetensors file whose
// metadata holds the spec (JSON) and free-form string metadata, so one
// file rebuilds the network without any other input, and any safetensors
// reader can open the weights.
const CheckpointFormat = "robarch-checkpoint/1"

// Metadata keys of a checkpoint.
const (
	metaFormat = "format"
	metaSpec   = "spec"
	metaMeta   = "meta"
)

// Checkpoint is what a checkpoint file says besides its weights.
type Checkpoint struct {
	Spec arch.Spec
	Meta map[string]string
}

// SaveCheckpoint writes net's weights (all parameters and buffers), its
// spec and meta to path atomically.
func SaveCheckpoint(path string, net *Net, meta map[string]string) error {
	spec, err := json.Marshal(net.spec)
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", path, err)
	}
	m, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", path, err)
	}
	tensors := make([]Named, len(net.vars))
	for i, v := range net.vars {
		tensors[i] = Named{v.Name, v.Tensor}
	}
	md := map[string]string{metaFormat: CheckpointFormat, metaSpec: string(spec), metaMeta: string(m)}
	if err := WriteSafetensors(path, tensors, md); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	return nil
}

// ReadCheckpointInfo reads a checkpoint's spec and metadata without its
// weights.
func ReadCheckpointInfo(path string) (Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("read checkpoint: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return Checkpoint{}, fmt.Errorf("read checkpoint %s: %w", path, err)
	}
	md, err := readSafetensorsMeta(f, info.Size())
	if err != nil {
		return Checkpoint{}, fmt.Errorf("read checkpoint %s: %w", path, err)
	}
	return parseCheckpointMeta(path, md)
}

// readSafetensorsMeta reads the __metadata__ of a safetensors file of size
// bytes from r, which is at its start.
func readSafetensorsMeta(r io.Reader, size int64) (map[string]string, error) {
	var n uint64
	if err := binary.Read(r, binary.LittleEndian, &n); err != nil {
		return nil, err
	}
	// Checked against the file before the header is allocated: an 8-byte
	// file could otherwise ask for maxHeader bytes.
	if n > maxHeader || n > uint64(size-8) {
		return nil, fmt.Errorf("header length %d exceeds the file (%d bytes)", n, size)
	}
	h := make([]byte, n)
	if _, err := io.ReadFull(r, h); err != nil {
		return nil, err
	}
	var header struct {
		Meta map[string]string `json:"__metadata__"`
	}
	if err := json.Unmarshal(h, &header); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	return header.Meta, nil
}

func parseCheckpointMeta(path string, md map[string]string) (Checkpoint, error) {
	if md[metaFormat] != CheckpointFormat {
		return Checkpoint{}, fmt.Errorf("read checkpoint %s: format %q: want %q (a plain weights file loads with ImportWeights)",
			path, md[metaFormat], CheckpointFormat)
	}
	spec, err := arch.Parse([]byte(md[metaSpec]), "json")
	if err != nil {
		return Checkpoint{}, fmt.Errorf("read checkpoint %s: spec: %w", path, err)
	}
	c := Checkpoint{Spec: spec}
	if m := md[metaMeta]; m != "" && m != "null" {
		if err := json.Unmarshal([]byte(m), &c.Meta); err != nil {
			return Checkpoint{}, fmt.Errorf("read checkpoint %s: meta: %w", path, err)
		}
	}
	return c, nil
}

// LoadCheckpoint builds the checkpoint's network through New on device,
// loads its weights, then puts them in memory format f (auto picks per net
// and device). The caller destroys the VarStore.
func LoadCheckpoint(path string, device gotch.Device, f MemoryFormat) (*nn.VarStore, *Net, Checkpoint, error) {
	tensors, md, err := ReadSafetensors(path)
	if err != nil {
		return nil, nil, Checkpoint{}, fmt.Errorf("load checkpoint: %w", err)
	}
	defer freeAll(tensors)
	c, err := parseCheckpointMeta(path, md)
	if err != nil {
		return nil, nil, Checkpoint{}, err
	}
	// Weights are loaded into contiguous tensors and only then converted,
	// the order a user's torch.load + .to(memory_format) takes.
	vs, net, err := New(c.Spec, device, Contiguous)
	if err == nil {
		if err = net.LoadStateDict(tensors); err == nil {
			err = net.SetMemoryFormat(f)
		}
		if err != nil {
			vs.Destroy()
		}
	}
	if err != nil {
		return nil, nil, Checkpoint{}, fmt.Errorf("load checkpoint %s: %w", path, err)
	}
	return vs, net, c, nil
}

// ImportWeights loads a state dict file into net: a PyTorch file written
// by torch.save (.pt, .pth, .bin, .ckpt) or a .safetensors file (ours or
// anyone's). Names and shapes must match exactly (see LoadStateDict).
func ImportWeights(net *Net, path string) error {
	var tensors map[string]*ts.Tensor
	var err error
	switch strings.ToLower(filepath.Ext(path)) {
	case ".safetensors":
		tensors, _, err = ReadSafetensors(path)
	case ".pt", ".pth", ".bin", ".ckpt", ".tar":
		tensors, err = ReadPyTorch(path)
	default:
		return fmt.Errorf("import weights %s: extension %q: want .pt, .pth, .bin, .ckpt or .safetensors", path, filepath.Ext(path))
	}
	if err != nil {
		return fmt.Errorf("import weights: %w", err)
	}
	defer freeAll(tensors)
	if err := net.LoadStateDict(tensors); err != nil {
		return fmt.Errorf("import weights %s: %w", path, err)
	}
	return nil
}

// ExportWeights writes net's state dict (see StateDict) to a .safetensors
// file that the PyTorch model of the same naming scheme loads with
// load_state_dict(strict=True).
func ExportWeights(net *Net, path string) error {
	if !strings.EqualFold(filepath.Ext(path), ".safetensors") {
		return fmt.Errorf("export weights %s: want a .safetensors path", path)
	}
	sd, err := net.StateDict()
	if err != nil {
		return fmt.Errorf("export weights %s: %w", path, err)
	}
	defer func() {
		for _, nt := range sd {
			if strings.HasSuffix(nt.Name, ".num_batches_tracked") {
				drop(nt.Tensor)
			}
		}
	}()
	if err := WriteSafetensors(path, sd, map[string]string{"naming": net.spec.Naming, "spec": net.spec.Name}); err != nil {
		return fmt.Errorf("export weights: %w", err)
	}
	return nil
}

func freeAll(m map[string]*ts.Tensor) {
	for _, t := range m {
		drop(t)
	}
}
