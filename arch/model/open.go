package model

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/nn"

	"github.com/robarch/robarch/arch"
)

// Ref names a network: where its architecture and its weights come from.
// At least one of Model, Spec and Weights is set.
type Ref struct {
	// Model is a preset name (arch.Get) or a spec file (.yaml, .json).
	Model string
	// Spec is an architecture already in hand (a sweep trial's planned
	// variant); it wins over Model.
	Spec *arch.Spec
	// Weights is a robarch checkpoint (which carries its own spec), or a
	// state dict: a PyTorch file written by torch.save (.pt, .pth, .bin,
	// .ckpt) or a .safetensors file. Empty: fresh weights from libtorch's
	// global generator (seed it first).
	Weights string
}

// OpenOptions says where the network runs and what data it will see.
type OpenOptions struct {
	Device gotch.Device
	Format MemoryFormat
	// Data is the shape of the images and labels the net will see; nil
	// takes the spec as it is. With fresh weights from a Model name the
	// spec is fitted to the data (arch.ForData with fit); with existing
	// weights or a planned Spec it must match as it is.
	Data *arch.DataShape
}

// Opened is an open network. The caller destroys Vars.
type Opened struct {
	Vars *nn.VarStore
	Net  *Net
	// Spec is the architecture built (fitted to the data where it was).
	Spec arch.Spec
	// Name is what to call the net in messages and results: the Model
	// reference, or the checkpoint's spec name.
	Name string
	// Checkpoint is what a robarch checkpoint said besides its weights
	// (its training radius and recipe in Meta); nil for other weights.
	Checkpoint *Checkpoint
}

// Open is the one door from a reference to a network ready to run:
// preset, spec file, planned spec, robarch checkpoint, PyTorch state dict
// or safetensors, checked against the data it will see before any
// weights are read.
func Open(ref Ref, opt OpenOptions) (*Opened, error) {
	if ref.Weights != "" {
		if info, err := ReadCheckpointInfo(ref.Weights); err == nil {
			return openCheckpoint(ref, info, opt)
		}
	}
	spec, name, err := refSpec(ref, opt.Data)
	if err != nil {
		return nil, err
	}
	vs, net, err := New(spec, opt.Device, opt.Format)
	if err != nil {
		return nil, err
	}
	if ref.Weights != "" {
		if err := ImportWeights(net, ref.Weights); err != nil {
			vs.Destroy()
			return nil, err
		}
	}
	return &Opened{Vars: vs, Net: net, Spec: spec, Name: name}, nil
}

// openCheckpoint opens a robarch checkpoint, whose own spec is used.
func openCheckpoint(ref Ref, info Checkpoint, opt OpenOptions) (*Opened, error) {
	if ref.Model != "" && ref.Model != info.Spec.Name {
		slog.Warn("the model named differs from the checkpoint's own spec, which is used", "model", ref.Model, "checkpoint", info.Spec.Name)
	}
	if opt.Data != nil {
		// The weights exist: the spec must match the data as it is.
		if _, _, err := arch.ForData(info.Spec, *opt.Data, false); err != nil {
			return nil, fmt.Errorf("%s: %w", ref.Weights, err)
		}
	}
	vs, net, c, err := LoadCheckpoint(ref.Weights, opt.Device, opt.Format)
	if err != nil {
		return nil, err
	}
	return &Opened{Vars: vs, Net: net, Spec: c.Spec, Name: c.Spec.Name, Checkpoint: &c}, nil
}

// ErrNoModel is returned when a reference names weights without a spec
// and the weights do not carry one.
var ErrNoModel = errors.New("the architecture must be given")

// refSpec resolves the architecture of a reference without a robarch
// checkpoint, fitted to the data where the weights are fresh.
func refSpec(ref Ref, d *arch.DataShape) (arch.Spec, string, error) {
	if ref.Spec != nil {
		spec := *ref.Spec
		if d != nil {
			// A planned spec's counts are the study's: it must match as is.
			if _, _, err := arch.ForData(spec, *d, false); err != nil {
				return spec, spec.Name, err
			}
		}
		return spec, spec.Name, nil
	}
	if ref.Model == "" {
		if ref.Weights != "" {
			return arch.Spec{}, "", fmt.Errorf("%s is not a robarch checkpoint: %w (a preset or spec file)", ref.Weights, ErrNoModel)
		}
		return arch.Spec{}, "", fmt.Errorf("open: %w (a preset, spec file or checkpoint)", ErrNoModel)
	}
	spec, err := arch.GetOrLoad(ref.Model)
	if err != nil {
		return spec, ref.Model, err
	}
	if d == nil {
		return spec, ref.Model, nil
	}
	// A spec chosen by name is fitted to the data (channels must match);
	// imported weights then have to match the fitted shapes exactly.
	fitted, adapted, err := arch.ForData(spec, *d, true)
	if err != nil {
		return spec, ref.Model, fmt.Errorf("%s: %w", ref.Model, err)
	}
	if adapted {
		in := spec.WithDefaults().Input
		slog.Info("fitting the model to the dataset", "model", ref.Model,
			"input", fmt.Sprintf("%d×%d → %d×%d", in.Height, in.Width, d.Height, d.Width), "classes", fmt.Sprintf("%d → %d", spec.Classes, d.Classes))
	}
	return fitted, ref.Model, nil
}
