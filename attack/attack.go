// Package attack implements the adversarial attacks robustness numbers are
// believed from: FGSM, PGD (L∞ and L2; cross-entropy, CW-margin and DLR
// losses), APGD-CE and APGD-T (Croce & Hein 2020), FAB-T, Square, the
// AutoAttack ensemble, and Evaluate, which reports clean, per-attack and
// worst-case robust accuracy with the sanity checks AutoAttack's authors
// found necessary.
//
// Every attack works on any Model: a function from a batch of images in
// [0,1] to logits. Attacks take gradients with respect to their input only
// (torch::autograd::grad), so nothing accumulates in the model's parameters,
// and every result lies in the ε-ball around x and in [0,1].
//
// Torch work must run on one goroutine locked to its OS thread (see
// internal/torchrt); attacks switch libtorch's grad mode on and off as they
// need and leave it on.
package attack

import (
	"fmt"
	"strings"

	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/internal/torchrt"
)

// Model maps a batch of images [N, C, H, W] (float32, in [0,1]) to logits
// [N, classes]. Evaluation uses models in eval mode; a training loop may
// pass a function that runs its network in training mode. The model must
// not free its input.
type Model func(x *ts.Tensor) (*ts.Tensor, error)

// FromModuleT is m in evaluation mode (m.ForwardT(x, false)). gotch
// modules panic on libtorch errors; the panic is returned as an error.
func FromModuleT(m ts.ModuleT) Model {
	return func(x *ts.Tensor) (out *ts.Tensor, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("forward: %v", r)
			}
		}()
		return m.ForwardT(x, false), nil
	}
}

// Attack turns clean inputs x [N, C, H, W] with labels y [N] (int64) into
// adversarial inputs of the same shape, on x's device. The result is a new
// tensor the caller owns; x and y are left alone. Samples the attack did
// not fool may come back unchanged.
type Attack interface {
	Name() string
	Perturb(m Model, x, y *ts.Tensor) (*ts.Tensor, error)
}

// Norm is the threat model: the norm of the ε-ball.
type Norm string

// Norms the attacks support.
const (
	Linf Norm = "Linf"
	L2   Norm = "L2"
)

// ParseNorm accepts Linf and L2 in any case ("linf", "l2", "inf").
func ParseNorm(s string) (Norm, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "linf", "inf", "l_inf":
		return Linf, nil
	case "l2", "l_2":
		return L2, nil
	}
	return "", fmt.Errorf("norm %q: want Linf or L2", s)
}

func (n Norm) validate() error {
	if n != Linf && n != L2 {
		return fmt.Errorf("Norm %q: want %q or %q", n, Linf, L2)
	}
	return nil
}

// Loss is what a gradient attack maximises.
type Loss string

// Losses of PGD and APGD.
const (
	// CE is the cross-entropy of the true class.
	CE Loss = "ce"
	// CW is the Carlini–Wagner margin max_{j≠y} z_j − z_y.
	CW Loss = "cw"
	// DLR is the difference of logits ratio −(z_y − max_{j≠y} z_j) /
	// (z_π1 − z_π3) of Croce & Hein 2020; it needs at least 3 classes.
	DLR Loss = "dlr"
)

func (l Loss) validate() error {
	switch l {
	case CE, CW, DLR:
		return nil
	}
	return fmt.Errorf("Loss %q: want %q, %q or %q", l, CE, CW, DLR)
}

// validateEps checks the radius shared by every attack.
func validateEps(eps float64) error {
	if !(eps > 0) || eps > 1e6 {
		return fmt.Errorf("Eps %v: want a positive radius (e.g. 8/255 for Linf, 0.5 for L2)", eps)
	}
	return nil
}

// reseed seeds libtorch's global generator (CPU and CUDA) unless keep is
// set: attacks reseed at the start of every Perturb, as AutoAttack does,
// so the same seed gives the same perturbation; a training loop that
// attacks every batch keeps its own stream instead.
func reseed(seed int64, keep bool) {
	if !keep {
		torchrt.Seed(seed)
	}
}
