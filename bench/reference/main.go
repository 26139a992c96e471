// Command reference is robarch's side of the comparison with the official
// AutoAttack code (github.com/fra31/auto-attack) on PyTorch: reference.py
// is the other side and run.sh runs both; docs/attacks-reference.md holds
// the results.
//
//	go run ./bench/reference -mode prepare -weights CKPT -out DIR   # points, weights, spec
//	go run ./bench/reference -mode attacks -weights CKPT -out DIR   # accuracies (go_attacks.json)
//	go run ./bench/reference -mode speed -weights CKPT -out DIR     # images/s (go_speed.json)
//
// The attacks are orchestrated the way AutoAttack's run_standard_evaluation
// does it (attack the still-robust points in chunks of -bs, in order), so
// that both sides draw the same random numbers for the same points; the
// library's own orchestration (attack.Evaluate) is reported as well.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/attack"
	"github.com/robarch/robarch/data"
	"github.com/robarch/robarch/data/torchbatch"
	"github.com/robarch/robarch/internal/atomicfile"
	"github.com/robarch/robarch/internal/attackname"
	"github.com/robarch/robarch/internal/torchrt"
	"github.com/robarch/robarch/recipe"
	// At load, before the Go runtime starts its threads: one malloc arena.
	_ "github.com/robarch/robarch/internal/torchrt/onearena"
)

type config struct {
	mode, weights, dataset, dataDir, out string
	n, bs, threads                       int
	eps                                  float64
	norm                                 attack.Norm
	seed                                 int64
	attacks                              []string
	pgdSteps                             []int
	speedBatch, speedReps                int
	skipAA                               bool
}

func main() {
	var c config
	var eps, norm, attacks, pgd string
	flag.StringVar(&c.mode, "mode", "attacks", "prepare, attacks, speed, or malloc-env (the environment that gives PyTorch robarch's malloc settings)")
	flag.StringVar(&c.weights, "weights", "", "robarch checkpoint (model.safetensors)")
	flag.StringVar(&c.dataset, "dataset", data.NameFashionMNIST, "dataset")
	flag.StringVar(&c.dataDir, "data-dir", "", "dataset directory")
	flag.StringVar(&c.out, "out", "", "output directory shared with reference.py")
	flag.IntVar(&c.n, "n", 1000, "test points (stratified subset, seed 0)")
	flag.IntVar(&c.bs, "bs", 250, "attack batch size (AutoAttack's bs)")
	flag.IntVar(&c.threads, "threads", 2, "libtorch threads")
	flag.StringVar(&eps, "eps", "0.1", "radius (a number or a fraction such as 8/255)")
	flag.StringVar(&norm, "norm", "Linf", "Linf or L2")
	flag.Int64Var(&c.seed, "seed", 0, "seed of every attack")
	flag.StringVar(&attacks, "attacks", "apgd-ce,apgd-t,fab-t,square", "AutoAttack components to run individually")
	flag.StringVar(&pgd, "pgd", "10,20", "PGD step counts to run")
	flag.IntVar(&c.speedBatch, "speed-batch", 128, "batch of the throughput measurement")
	flag.IntVar(&c.speedReps, "speed-reps", 3, "repetitions of the throughput measurement")
	flag.BoolVar(&c.skipAA, "skip-aa", false, "skip the AutoAttack ensemble (PGD and -attacks only)")
	flag.Parse()
	if c.mode == "malloc-env" {
		// run.sh gives the PyTorch side the malloc settings robarch uses.
		fmt.Println(strings.Join(torchrt.AllocatorEnv(), " "))
		return
	}
	var err error
	if c.norm, err = attack.ParseNorm(norm); err != nil {
		log.Fatal(err)
	}
	parseEps := recipe.ParseEps // L∞: fraction, ratio or pixel levels, in [0,1]
	if c.norm == attack.L2 {
		parseEps = recipe.ParseL2Eps
	}
	if c.eps, err = parseEps(eps); err != nil {
		log.Fatal(err)
	}
	for _, a := range strings.Split(attacks, ",") { // "" runs none
		if a = strings.TrimSpace(a); a != "" {
			c.attacks = append(c.attacks, a)
		}
	}
	for _, s := range strings.Split(pgd, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			log.Fatalf("-pgd %q: want comma-separated step counts", pgd)
		}
		c.pgdSteps = append(c.pgdSteps, k)
	}
	if c.weights == "" || c.out == "" {
		log.Fatal("-weights and -out are required")
	}
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		log.Fatal(err)
	}
	rt := torchrt.Init(c.threads)
	log.Printf("malloc: %s; Go sysmon: %s", rt.Malloc, rt.Sysmon)
	w := torchrt.NewWorker()
	defer w.Close()
	err = w.Do(func() error {
		switch c.mode {
		case "prepare":
			return prepare(c)
		case "attacks":
			return runAttacks(c)
		case "speed":
			return speed(c)
		}
		return fmt.Errorf("-mode %q: want prepare, attacks or speed", c.mode)
	})
	if err != nil {
		log.Fatal(err)
	}
}

func loadNet(c config) (*model.Net, attack.Model, error) {
	// The VarStore lives as long as this one-shot command.
	o, err := model.Open(model.Ref{Weights: c.weights}, model.OpenOptions{Device: gotch.CPU, Format: model.Contiguous})
	if err != nil {
		return nil, nil, err
	}
	net := o.Net
	return net, func(x *ts.Tensor) (*ts.Tensor, error) { return net.Forward(x, false) }, nil
}

// prepare writes the points, the weights as a state dict and the spec.
func prepare(c config) error {
	net, m, err := loadNet(c)
	if err != nil {
		return err
	}
	splits, err := data.Open(c.dataset, data.Options{Dir: c.dataDir, TestSize: c.n})
	if err != nil {
		return err
	}
	loader, err := data.NewLoader(splits.Test, data.LoaderConfig{BatchSize: splits.Test.Len()})
	if err != nil {
		return err
	}
	b, err := loader.Batch(0, 0)
	if err != nil {
		return err
	}
	x, y, err := torchbatch.Tensors(b, gotch.CPU)
	if err != nil {
		return err
	}
	if err := model.WriteSafetensors(filepath.Join(c.out, "points.safetensors"), []model.Named{{Name: "x", Tensor: x}, {Name: "y", Tensor: y}}, nil); err != nil {
		return err
	}
	if err := model.ExportWeights(net, filepath.Join(c.out, "weights.safetensors")); err != nil {
		return err
	}
	spec, err := json.MarshalIndent(net.Spec().WithDefaults(), "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(c.out, "spec.json"), spec, 0o644); err != nil {
		return err
	}
	right, err := correctMask(m, x, y)
	if err != nil {
		return err
	}
	fmt.Printf("prepared %d points, clean accuracy %.4f\n", len(right), frac(right))
	return nil
}

func loadPoints(c config) (x, y *ts.Tensor, err error) {
	t, _, err := model.ReadSafetensors(filepath.Join(c.out, "points.safetensors"))
	if err != nil {
		return nil, nil, err
	}
	return t["x"], t["y"], nil
}

// correctMask says per point whether m classifies it correctly.
func correctMask(m attack.Model, x, y *ts.Tensor) ([]bool, error) {
	var out []bool
	n := x.MustSize()[0]
	for start := int64(0); start < n; start += 500 {
		k := min(500, n-start)
		xb, yb := x.MustNarrow(0, start, k, false), y.MustNarrow(0, start, k, false)
		var z *ts.Tensor
		var err error
		ts.NoGrad(func() { z, err = m(xb) })
		if err != nil {
			return nil, err
		}
		pred := z.MustArgmax([]int64{1}, false, true)
		for i, p := range pred.Int64Values() {
			out = append(out, p == yb.Int64Values()[i])
		}
		pred.MustDrop()
		xb.MustDrop()
		yb.MustDrop()
	}
	return out, nil
}

func frac(b []bool) float64 {
	k := 0
	for _, v := range b {
		if v {
			k++
		}
	}
	return float64(k) / float64(len(b))
}

// attackRobust runs a on the points still robust, in chunks of bs in
// index order (as AutoAttack's run_standard_evaluation does), and clears
// the flag of every point it fools.
func attackRobust(m attack.Model, a attack.Attack, x, y *ts.Tensor, robust []bool, bs int) error {
	var idx []int64
	for i, r := range robust {
		if r {
			idx = append(idx, int64(i))
		}
	}
	for start := 0; start < len(idx); start += bs {
		chunk := idx[start:min(start+bs, len(idx))]
		it := ts.MustOfSlice(chunk)
		xs, ys := x.MustIndexSelect(0, it, false), y.MustIndexSelect(0, it, false)
		adv, err := a.Perturb(m, xs, ys)
		if err != nil {
			return fmt.Errorf("%s: %w", a.Name(), err)
		}
		right, err := correctMask(m, adv, ys)
		if err != nil {
			return err
		}
		for j, ok := range right {
			if !ok {
				robust[chunk[j]] = false
			}
		}
		for _, t := range []*ts.Tensor{it, xs, ys, adv} {
			t.MustDrop()
		}
	}
	return nil
}

type attacksResult struct {
	N          int                `json:"n"`
	BS         int                `json:"bs"`
	Eps        float64            `json:"eps"`
	Norm       string             `json:"norm"`
	Seed       int64              `json:"seed"`
	CleanAcc   float64            `json:"clean_acc"`
	PGD        map[string]float64 `json:"pgd"`
	Individual map[string]float64 `json:"individual"`
	AAStages   []attack.StageAcc  `json:"aa_stages"`
	AA         float64            `json:"aa"`
	Evaluate   *attack.Report     `json:"evaluate"`
	Seconds    map[string]float64 `json:"seconds"`
	Robust     map[string][]bool  `json:"robust"` // per point, for the comparison of which points fall
	Threads    int                `json:"threads"`
}

func runAttacks(c config) error {
	_, m, err := loadNet(c)
	if err != nil {
		return err
	}
	x, y, err := loadPoints(c)
	if err != nil {
		return err
	}
	clean, err := correctMask(m, x, y)
	if err != nil {
		return err
	}
	res := attacksResult{N: len(clean), BS: c.bs, Eps: c.eps, Norm: string(c.norm), Seed: c.seed, CleanAcc: frac(clean),
		PGD: map[string]float64{}, Individual: map[string]float64{}, Seconds: map[string]float64{}, Robust: map[string][]bool{}, Threads: torchrt.Threads()}
	log.Printf("%d points, clean accuracy %.4f", res.N, res.CleanAcc)

	// Plain PGD from a seeded uniform start, reseeded per batch of bs,
	// keeping the adversarial points for an element-wise comparison.
	for _, k := range c.pgdSteps {
		start := time.Now()
		p := attack.PGD{Norm: c.norm, Eps: c.eps, Steps: k, RandomStart: true, Seed: c.seed}
		var advs []*ts.Tensor
		n := x.MustSize()[0]
		for s := int64(0); s < n; s += int64(c.bs) {
			kk := min(int64(c.bs), n-s)
			xb, yb := x.MustNarrow(0, s, kk, false), y.MustNarrow(0, s, kk, false)
			adv, err := p.Perturb(m, xb, yb)
			if err != nil {
				return err
			}
			advs = append(advs, adv)
		}
		all := ts.MustCat(advs, 0)
		right, err := correctMask(m, all, y)
		if err != nil {
			return err
		}
		for i := range right {
			right[i] = right[i] && clean[i]
		}
		name := p.Name()
		res.PGD[name], res.Robust[name], res.Seconds[name] = frac(right), right, time.Since(start).Seconds()
		if err := model.WriteSafetensors(filepath.Join(c.out, "go_"+name+".safetensors"), []model.Named{{Name: "adv", Tensor: all}}, nil); err != nil {
			return err
		}
		log.Printf("%s: %.4f (%.0f s)", name, res.PGD[name], res.Seconds[name])
	}

	// Each AutoAttack component on its own, then the ensemble.
	for _, name := range c.attacks {
		a, err := attack.ByName(name, c.norm, c.eps, c.seed)
		if err != nil {
			return err
		}
		robust := append([]bool(nil), clean...)
		start := time.Now()
		if err := attackRobust(m, a, x, y, robust, c.bs); err != nil {
			return err
		}
		res.Individual[name], res.Robust[name], res.Seconds[name] = frac(robust), robust, time.Since(start).Seconds()
		log.Printf("%s alone: %.4f (%.0f s)", name, res.Individual[name], res.Seconds[name])
	}
	if c.skipAA {
		return writeJSON(filepath.Join(c.out, "go_attacks.json"), res)
	}
	aa, err := attack.NewAutoAttack(attack.Standard, c.norm, c.eps, c.seed)
	if err != nil {
		return err
	}
	robust := append([]bool(nil), clean...)
	start := time.Now()
	for _, comp := range aa.Components() {
		if err := attackRobust(m, comp, x, y, robust, c.bs); err != nil {
			return err
		}
		res.AAStages = append(res.AAStages, attack.StageAcc{Attack: comp.Name(), RobustAcc: frac(robust)})
		log.Printf("aa after %s: %.4f (%.0f s)", comp.Name(), frac(robust), time.Since(start).Seconds())
	}
	aaKey := string(attackname.AA)
	res.AA, res.Robust[aaKey], res.Seconds[aaKey] = frac(robust), robust, time.Since(start).Seconds()

	// The library's orchestration: Evaluate, AutoAttack batch by batch.
	start = time.Now()
	rep, err := attack.Evaluate(context.Background(), m, attack.TensorBatches(x, y, c.bs), []attack.Attack{aa}, attack.EvalOptions{})
	if err != nil {
		return err
	}
	res.Evaluate = &rep
	res.Seconds["evaluate-aa"] = time.Since(start).Seconds()
	log.Printf("attack.Evaluate aa: %.4f (%.0f s)", rep.RobustAcc, res.Seconds["evaluate-aa"])
	return writeJSON(filepath.Join(c.out, "go_attacks.json"), res)
}

// speed measures PGD-10 and APGD-CE throughput on the first speed-batch
// points: images per second of wall time, one value per repetition after
// a warm-up run. It measures twice: with Go's default garbage collector,
// and with the collector held off until the Go heap reaches 1 GiB
// (GOGC=off, GOMEMLIMIT=1GiB). gotch gives every tensor handle a 100 KB
// Go-heap ballast, so by default a collection runs every few dozen tensor
// operations; on a model this small that costs more than the arithmetic.
func speed(c config) error {
	_, m, err := loadNet(c)
	if err != nil {
		return err
	}
	x, y, err := loadPoints(c)
	if err != nil {
		return err
	}
	xb, yb := x.MustNarrow(0, 0, int64(c.speedBatch), false), y.MustNarrow(0, 0, int64(c.speedBatch), false)
	out := map[string]any{"batch": c.speedBatch, "threads": torchrt.Threads()}
	attacks := []attack.Attack{
		attack.PGD{Norm: c.norm, Eps: c.eps, Steps: 10, RandomStart: true, Seed: c.seed},
		attack.APGD{Norm: c.norm, Eps: c.eps, Steps: 100, Loss: attack.CE, Seed: c.seed},
	}
	for _, gc := range []string{"", " (GOGC=off, GOMEMLIMIT=1GiB)"} {
		if gc != "" {
			defer debug.SetGCPercent(debug.SetGCPercent(-1))
			defer debug.SetMemoryLimit(debug.SetMemoryLimit(1 << 30))
		}
		for _, a := range attacks {
			var rates []float64
			for rep := range c.speedReps + 1 {
				start := time.Now()
				adv, err := a.Perturb(m, xb, yb)
				if err != nil {
					return err
				}
				secs := time.Since(start).Seconds()
				adv.MustDrop()
				if rep > 0 { // the first run warms up
					rates = append(rates, float64(c.speedBatch)/secs)
				}
			}
			out[a.Name()+gc] = rates
			log.Printf("%s%s: %.1f images/s", a.Name(), gc, rates)
		}
	}
	name := filepath.Join(c.out, "go_speed.json")
	if tag := os.Getenv("SPEED_TAG"); tag != "" {
		name = filepath.Join(c.out, "go_speed_"+tag+".json")
	}
	return writeJSON(name, out)
}

func writeJSON(path string, v any) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, raw, 0o644)
}
