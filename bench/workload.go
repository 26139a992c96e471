// Package bench measures robarch's hot paths and compares them with the
// same work done by PyTorch eager on the same libtorch: a training step, an
// FGSM-RS adversarial-training step, PGD-10 and APGD-CE-100 on a batch,
// inference, and the data loader. It reports images/s (median and spread
// over repeated steps after warm-up), achieved GFLOP/s and the fraction of
// the machine's matrix-multiply ceiling it is, peak RSS and RSS growth.
//
// The PyTorch peer (peer/peer.py, embedded in the binary with
// peer/specnet.py, the Python builder of a spec it imports) builds the same
// network from the spec, checks that its parameter count equals
// arch.Params and its MACs arch.MACs, and runs each workload's steps
// interleaved with robarch's, one step each in turn, so that load from
// other processes falls on both sides alike. That the builder computes
// robarch's function, not only its counts, is arch/model's
// TestSpecNetMatchesRobarch: robarch's exported weights give the same
// logits and input gradients in specnet's net.
package bench

import (
	"github.com/robarch/robarch/internal/attackname"

	"fmt"
	"slices"
	"strings"
)

// Workload is one kind of measured step.
type Workload string

// The workloads. A step is one batch.
const (
	// Train is a standard training step: forward in training mode,
	// cross-entropy, backward, SGD update (train's own step).
	Train Workload = "train"
	// FGSMRS is an adversarial-training step of Fast-AT (Wong et al.
	// 2020): one attack gradient from a random start, then a training step
	// on the perturbed batch (train's own step with method fgsm-rs).
	FGSMRS Workload = "fgsm-rs"
	// PGD10 is a 10-step L∞ PGD attack with random start on a batch, the
	// model in evaluation mode (package attack).
	PGD10 Workload = Workload(attackname.PGD) + "10"
	// APGDCE is APGD-CE with 100 iterations on a batch (package attack).
	// The labels are the model's own clean predictions, so that every
	// sample is attacked: APGD skips samples already misclassified.
	APGDCE Workload = Workload(attackname.APGDCE)
	// Infer is a forward pass in evaluation mode without autograd.
	Infer Workload = "infer"
	// Loader is the data loader alone: batches of synthetic images of the
	// model's input shape with crop and flip augmentation, converted to
	// tensors. It has no FLOPs and no peer.
	Loader Workload = "loader"
)

// Workloads lists the accepted workloads in their canonical order.
func Workloads() []Workload { return []Workload{Train, FGSMRS, PGD10, APGDCE, Infer, Loader} }

// ParseWorkloads reads a comma-separated list of workloads ("fgsm-rs,pgd10")
// or "all". Names are case-insensitive; duplicates are kept once, in the
// order given.
func ParseWorkloads(list string) ([]Workload, error) {
	var out []Workload
	for _, part := range strings.Split(list, ",") {
		name := Workload(strings.ToLower(strings.TrimSpace(part)))
		switch {
		case name == "":
			continue
		case name == "all":
			for _, w := range Workloads() {
				if !slices.Contains(out, w) {
					out = append(out, w)
				}
			}
			continue
		case !slices.Contains(Workloads(), name):
			return nil, fmt.Errorf("workload %q: allowed values are %s (or all), comma-separated", part, allowed())
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("workload %q: name at least one of %s", list, allowed())
	}
	return out, nil
}

func allowed() string {
	names := make([]string, 0, len(Workloads()))
	for _, w := range Workloads() {
		names = append(names, string(w))
	}
	return strings.Join(names, ", ")
}

// Forward passes per image: the FLOP convention of each workload, in
// units of one forward pass (2 × arch.MACs FLOPs, MACs counting the
// convolutions and linear layers only). A backward pass for the weights
// and the activations costs about two forward passes; a backward pass for
// the input gradient only (attacks: autograd.grad with respect to the
// input, which skips the weight gradients) about one. Elementwise work
// (norms, activations, the attack's projections) is not counted, so these
// are slight underestimates.
const (
	trainPasses  = 3.0              // forward + backward (activations and weights)
	attackPasses = 2.0              // forward + backward for the input gradient
	fgsmPasses   = attackPasses + 3 // one attack gradient + a training step
	pgd10Passes  = 10 * attackPasses
	// APGD-CE-100: a clean forward pass to find the samples to attack, the
	// gradient at the random start, then 100 gradient iterations.
	apgdPasses  = 1 + attackPasses + 100*attackPasses
	inferPasses = 1.0
)

// Passes is the workload's forward-pass equivalents per image (see the
// constants above); 0 for the loader.
func (w Workload) Passes() float64 {
	switch w {
	case Train:
		return trainPasses
	case FGSMRS:
		return fgsmPasses
	case PGD10:
		return pgd10Passes
	case APGDCE:
		return apgdPasses
	case Infer:
		return inferPasses
	}
	return 0
}

// HasPeer says whether the PyTorch peer runs the workload.
func (w Workload) HasPeer() bool { return w != Loader }

// trains says whether the workload updates the model.
func (w Workload) trains() bool { return w == Train || w == FGSMRS }

// evaluates is true for the workloads that run the network in evaluation
// mode (and so on its folded copy).
func (w Workload) evaluates() bool { return w == PGD10 || w == APGDCE || w == Infer }
