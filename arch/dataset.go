package arch

import "fmt"

// DataShape is what a dataset feeds a network: images of Channels ×
// Height × Width and Classes labels.
type DataShape struct {
	Name                    string // the dataset, for messages
	Channels, Height, Width int
	Classes                 int
}

// ForData is robarch's one policy for a spec whose input or classes
// differ from the dataset's (docs/spec.md, "Spec and dataset"):
//
//   - channels must always match: a 3-channel stem cannot read grey
//     images, and there is no honest way to invent the missing ones;
//   - fit false (the weights exist already, as in a checkpoint, or the
//     parameter counts were planned, as in a sweep's budget-matched
//     variants): everything must match, since changing the head would
//     change the weights or the counts the study compares;
//   - fit true (fresh weights from a spec chosen by name, as `robarch
//     train --model` does): height, width and classes become the
//     dataset's, and the fitted spec is checked again.
//
// adapted reports whether the spec was changed.
func ForData(s Spec, d DataShape, fit bool) (out Spec, adapted bool, err error) {
	in := s.WithDefaults().Input
	if in.Channels == d.Channels && in.Height == d.Height && in.Width == d.Width && s.Classes == d.Classes {
		return s, false, nil
	}
	mismatch := fmt.Errorf("%s takes %dx%dx%d inputs with %d classes but %s has %dx%dx%d images with %d classes",
		s.Name, in.Channels, in.Height, in.Width, s.Classes, d.Name, d.Channels, d.Height, d.Width, d.Classes)
	if in.Channels != d.Channels && fit {
		return s, false, fmt.Errorf("%w: the channels cannot be fitted; choose a model for this dataset or a spec with input.channels: %d", mismatch, d.Channels)
	}
	if !fit {
		return s, false, mismatch
	}
	s.Input.Height, s.Input.Width, s.Classes = d.Height, d.Width, d.Classes
	if err := Check(s); err != nil {
		return s, false, fmt.Errorf("%s on %s: %w", s.Name, d.Name, err)
	}
	return s, true, nil
}
