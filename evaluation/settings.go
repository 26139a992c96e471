// Package evaluation is what `robarch eval` does beyond its command line:
// which radius, norm, dataset, test points and attacks an evaluation runs
// at (Resolve: the command line over the checkpoint over the defaults,
// or RobustBench's protocol), and the evaluation itself (Run).
//
// Errors name the settings as robarch eval's flags (--eps, --norm, ...),
// which they are.
package evaluation

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/robarch/robarch/attack"
	"github.com/robarch/robarch/internal/attackname"
	"github.com/robarch/robarch/recipe"
	"github.com/robarch/robarch/robustbench"
)

// Evaluation protocols: which test points and attacks.
const (
	// RobArch: a stratified subset of Size test points, the attacks asked.
	RobArch = "robarch"
	// RobustBench: its first test points in file order, standard
	// AutoAttack, its radius unless one is given (package robustbench).
	RobustBench = "robustbench"
)

// Protocols are the protocols, RobArch first (the default).
var Protocols = []string{RobArch, RobustBench}

// Where a setting came from (Settings.From).
const (
	FromFlag       = "flag"       // the command line (or its environment and config file)
	FromCheckpoint = "checkpoint" // what the net was trained and reported at
	FromDefault    = "default"
)

// Request is an evaluation as asked: eval's flags. Given says which of
// eps, norm, dataset, size and attacks were set rather than defaulted;
// Checkpoint is the metadata of a robarch checkpoint (nil for a plain
// state dict).
type Request struct {
	Protocol   string
	Dataset    string
	Eps, Norm  string
	Size       int
	Attacks    string // comma-separated
	Seed       int64
	ModelInfo  string // where to write RobustBench's model_info; RobustBench only
	Given      map[string]bool
	Checkpoint map[string]string
}

// Settings are what an evaluation runs at.
type Settings struct {
	Protocol string
	Dataset  string
	// Size is the number of test points; 0 is all (RobustBench: its
	// default count).
	Size    int
	Attacks []string
	Eps     float64
	Norm    attack.Norm
	Seed    int64
	// RBDataset and EpsText are RobustBench's dataset name and the radius
	// as written, for its model_info (RobustBench only).
	RBDataset, EpsText string
	// From says where eps, norm and dataset came from: FromFlag,
	// FromCheckpoint or FromDefault. TrainedEps is the checkpoint's
	// radius when it has one.
	From       map[string]string
	TrainedEps float64
}

// OffRadius reports an evaluation at a radius other than the one the
// checkpoint was trained and reported at.
func OffRadius(eps, trainedEps float64) bool {
	return trainedEps > 0 && math.Abs(eps-trainedEps) > 1e-12
}

// Resolve decides the settings of an evaluation. Under RobArch's protocol
// a checkpoint is evaluated where it was trained and reported (its eps,
// norm and dataset) unless the request gives them: evaluating at another
// radius is the field's classic protocol mistake. Under RobustBench's the
// checkpoint is not asked; its dataset, radius, count and attack apply.
func Resolve(r Request) (Settings, error) {
	s := Settings{Protocol: r.Protocol, Dataset: r.Dataset, Size: r.Size, Seed: r.Seed,
		From: map[string]string{"eps": FromDefault, "norm": FromDefault, "dataset": FromDefault}}
	for k := range s.From {
		if r.Given[k] {
			s.From[k] = FromFlag
		}
	}
	eps, norm := r.Eps, r.Norm
	if r.Checkpoint != nil && r.Protocol != RobustBench {
		var trained map[string]string
		trained, s.TrainedEps = trainedAt(r.Checkpoint)
		for k, v := range trained {
			if v == "" || s.From[k] == FromFlag {
				continue
			}
			switch k {
			case "eps":
				eps = v
			case "norm":
				norm = v
			case "dataset":
				s.Dataset = v
			}
			s.From[k] = FromCheckpoint
		}
	}
	var err error
	if s.Norm, err = attack.ParseNorm(norm); err != nil {
		return s, fmt.Errorf("--norm: %w", err)
	}
	attacks := r.Attacks
	switch {
	case !slices.Contains(Protocols, r.Protocol):
		return s, fmt.Errorf("--protocol %q: want one of %s", r.Protocol, strings.Join(Protocols, ", "))
	case r.Protocol == RobustBench:
		if eps, err = s.robustBench(r, eps); err != nil {
			return s, err
		}
		attacks = string(attackname.AA)
	case r.ModelInfo != "":
		return s, fmt.Errorf("--model-info needs --protocol robustbench: its numbers only mean something under RobustBench's protocol")
	}
	s.EpsText = eps
	if s.Norm == attack.Linf {
		s.Eps, err = recipe.ParseEps(eps)
	} else {
		s.Eps, err = recipe.ParseL2Eps(eps)
	}
	if err != nil {
		return s, fmt.Errorf("--eps: %w", err)
	}
	s.Attacks, err = parseAttacks(attacks, s.Norm, s.Eps, s.Seed)
	return s, err
}

// trainedAt is where a checkpoint was trained and reported (its eps, norm
// and dataset; "" where it does not say), and its radius as a number
// (0 when it has none).
func trainedAt(meta map[string]string) (map[string]string, float64) {
	trained := map[string]string{"eps": meta["eval_eps"], "norm": meta["norm"], "dataset": meta["dataset"]}
	if trained["eps"] == "" {
		trained["eps"] = meta["eps"] // checkpoints from before eval_eps was stored
	}
	var eps float64
	if v, err := strconv.ParseFloat(trained["eps"], 64); err == nil && v > 0 {
		eps = v
	}
	return trained, eps
}

// robustBench applies RobustBench's protocol to s: its dataset name, its
// default count unless a size is given, standard AutoAttack only; it
// returns the radius to parse, RobustBench's unless one is given.
func (s *Settings) robustBench(r Request, eps string) (string, error) {
	var err error
	if s.RBDataset, err = robustbench.Dataset(s.Dataset); err != nil {
		return "", fmt.Errorf("--protocol robustbench: %w", err)
	}
	if !r.Given["size"] {
		s.Size = 0 // RobustBench's default count
	}
	if !r.Given["eps"] {
		if eps, err = robustbench.DefaultEps(s.RBDataset, s.Norm); err != nil {
			return "", fmt.Errorf("--protocol robustbench: %w; give --eps", err)
		}
	}
	if n, err := attackname.Parse(strings.TrimSpace(r.Attacks)); r.Given["attacks"] && (err != nil || !n.IsStandardAutoAttack()) {
		return "", fmt.Errorf("--attacks %q with --protocol robustbench: RobustBench runs standard AutoAttack only; leave --attacks unset (or aa)", r.Attacks)
	}
	return eps, nil
}

// parseAttacks reads a comma-separated list of attacks, each checked
// against the norm and radius.
func parseAttacks(list string, norm attack.Norm, eps float64, seed int64) ([]string, error) {
	var names []string
	for _, name := range strings.Split(list, ",") {
		if name = strings.TrimSpace(name); name != "" {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("--attacks is empty: want a comma-separated list of %s", strings.Join(attack.Names(), ", "))
	}
	for _, name := range names {
		if _, err := attack.ByName(name, norm, eps, seed); err != nil {
			return nil, fmt.Errorf("--attacks: %w", err)
		}
	}
	return names, nil
}
