package bench

import (
	"context"
	"fmt"
	"iter"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/attack"
	"github.com/robarch/robarch/data"
	"github.com/robarch/robarch/data/torchbatch"
	"github.com/robarch/robarch/internal/amp"
	"github.com/robarch/robarch/internal/dist"
	"github.com/robarch/robarch/internal/torchrt"
	"github.com/robarch/robarch/recipe"
	"github.com/robarch/robarch/train"
)

// runner does one workload's steps on the Go side. Every method runs on
// the bench's locked torch thread.
type runner interface {
	// step does one step and returns the number of images it processed.
	step() (int, error)
	close()
}

// distinctBatches is how many different batches a workload cycles
// through: enough that no step reuses the previous step's input.
const distinctBatches = 4

// loaderChunk is the number of batches one loader step takes, so that a
// step's time is not just whether the next batch was already prefetched.
const loaderChunk = 8

// runnerConfig is what building a runner needs.
type runnerConfig struct {
	spec  arch.Spec // defaults filled in
	batch int
	eps   float64
	lr    float64
	seed  int64
	// format is the network's memory layout as asked (auto resolves per
	// net, into *resolved); noFold runs evaluation workloads on the net
	// itself rather than on its folded copy.
	format   model.MemoryFormat
	resolved *model.MemoryFormat
	noFold   bool
	// precision of the forward passes (train's recipe, the attacks' net).
	precision amp.Precision
	device    gotch.Device // zero value: the CPU
}

// dev is the runner's device; gotch's zero Device is neither CPU nor
// usable (its IsCuda says true, its CInt exits the process).
func (rc runnerConfig) dev() gotch.Device {
	if rc.device.Name == "" {
		return gotch.CPU
	}
	return rc.device
}

func newRunner(w Workload, rc runnerConfig) (runner, error) {
	switch w {
	case Train, FGSMRS:
		return newTrainRunner(w, rc, nil)
	case PGD10, APGDCE, Infer:
		return newEvalRunner(w, rc)
	case Loader:
		return newLoaderRunner(rc)
	}
	return nil, fmt.Errorf("workload %q: allowed values are %s", w, allowed())
}

// synthetic makes n examples of the spec's input shape and classes.
func synthetic(rc runnerConfig, n int) (*data.Dataset, error) {
	in := rc.spec.Input
	return data.SyntheticConfig{Classes: rc.spec.Classes, C: in.Channels, H: in.Height, W: in.Width, Seed: rc.seed}.Generate(n, data.Train)
}

// batches cuts distinctBatches batches from synthetic data.
func batches(rc runnerConfig) ([]*data.Batch, error) {
	src, err := synthetic(rc, rc.batch*distinctBatches)
	if err != nil {
		return nil, err
	}
	l, err := data.NewLoader(src, data.LoaderConfig{BatchSize: rc.batch, Shuffle: true, Seed: rc.seed, DropLast: true})
	if err != nil {
		return nil, err
	}
	var out []*data.Batch
	for b, err := range l.Batches(context.Background(), 0) {
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// netOf builds a fresh, seeded network of the spec on the bench's device.
func netOf(rc runnerConfig) (*nn.VarStore, *model.Net, error) {
	torchrt.Seed(rc.seed)
	o, err := model.Open(model.Ref{Spec: &rc.spec}, model.OpenOptions{Device: rc.dev(), Format: rc.format})
	if err != nil {
		return nil, nil, err
	}
	vs, net := o.Vars, o.Net
	if rc.resolved != nil {
		*rc.resolved = net.MemoryFormat()
	}
	return vs, net, nil
}

// trainRunner runs train's own training step (train.Stepper): the code
// train.Run executes per batch, for standard and fgsm-rs training.
type trainRunner struct {
	vs      *nn.VarStore
	stepper *train.Stepper
	batches []*data.Batch
	lr      float64
	i       int
}

// newTrainRunner builds w's runner on one process (g nil) or on one rank
// of g, where rc.batch is this rank's batch, the global batch world × that,
// and each step is train's data-parallel step (RunParallel's workers).
func newTrainRunner(w Workload, rc runnerConfig, g *dist.Group) (*trainRunner, error) {
	bs, err := batches(rc)
	if err != nil {
		return nil, fmt.Errorf("%s data: %w", w, err)
	}
	vs, net, err := netOf(rc)
	if err != nil {
		return nil, fmt.Errorf("%s model: %w", w, err)
	}
	method := recipe.Standard
	if w == FGSMRS {
		method = recipe.FGSMRS
	}
	// Momentum 0.9, weight decay 5e-4 and fgsm-rs's step 1.25·eps are the
	// recipe's defaults; the peer uses the same.
	r := recipe.Recipe{Method: method, Eps: rc.eps, BatchSize: rc.batch, LR: rc.lr, Seed: rc.seed, Precision: rc.precision}
	m := train.Model{Net: net, Vars: vs}
	var st *train.Stepper
	if g != nil {
		r.BatchSize *= g.World()
		st, err = train.NewDataParallelStepper(m, r, g)
	} else {
		st, err = train.NewStepper(m, r)
	}
	if err != nil {
		vs.Destroy()
		return nil, fmt.Errorf("%s: %w", w, err)
	}
	return &trainRunner{vs: vs, stepper: st, batches: bs, lr: rc.lr}, nil
}

func (r *trainRunner) step() (int, error) {
	b := r.batches[r.i%len(r.batches)]
	r.i++
	if _, _, err := r.stepper.Step(b, r.lr); err != nil {
		return 0, err
	}
	return b.N, nil
}

func (r *trainRunner) close() {
	r.stepper.Close()
	r.vs.Destroy()
}

// evalRunner runs an attack or inference on batches already on the
// device, the network in evaluation mode (folded, as robarch's
// evaluations run it, unless the config says not to).
type evalRunner struct {
	w      Workload
	vs     *nn.VarStore
	net    ts.ModuleT
	folded *model.Folded // nil without folding
	xs, ys []*ts.Tensor
	atk    attack.Attack
	i      int
}

func newEvalRunner(w Workload, rc runnerConfig) (*evalRunner, error) {
	bs, err := batches(rc)
	if err != nil {
		return nil, fmt.Errorf("%s data: %w", w, err)
	}
	vs, net, err := netOf(rc)
	if err != nil {
		return nil, fmt.Errorf("%s model: %w", w, err)
	}
	r := &evalRunner{w: w, vs: vs, net: net}
	if !rc.noFold {
		if r.folded, err = net.Fold(); err != nil {
			vs.Destroy()
			return nil, fmt.Errorf("%s model: %w", w, err)
		}
		r.net = r.folded
	}
	if r.net, err = amp.Wrap(r.net, rc.dev(), rc.precision); err != nil {
		r.close()
		return nil, fmt.Errorf("%s: %w", w, err)
	}
	for _, b := range bs {
		x, y, err := torchbatch.Tensors(b, rc.dev())
		if err != nil {
			r.close()
			return nil, fmt.Errorf("%s data: %w", w, err)
		}
		r.xs, r.ys = append(r.xs, x), append(r.ys, y)
	}
	switch w {
	case PGD10:
		r.atk = attack.PGD{Eps: rc.eps, Steps: 10, RandomStart: true, Seed: rc.seed}
	case APGDCE:
		r.atk = attack.APGD{Eps: rc.eps, Steps: 100, Seed: rc.seed}
		// Label every sample with the model's prediction, so that APGD
		// attacks all of them (it skips misclassified ones).
		for i, x := range r.xs {
			pred, err := r.predict(x)
			if err != nil {
				r.close()
				return nil, fmt.Errorf("%s labels: %w", w, err)
			}
			_ = r.ys[i].Drop()
			r.ys[i] = pred
		}
	}
	return r, nil
}

// predict is the model's class for every sample of x.
func (r *evalRunner) predict(x *ts.Tensor) (pred *ts.Tensor, err error) {
	ts.NoGrad(func() {
		pred, err = r.net.ForwardT(x, false).Argmax([]int64{1}, false, true)
	})
	return pred, err
}

func (r *evalRunner) step() (int, error) {
	k := r.i % len(r.xs)
	r.i++
	x, y := r.xs[k], r.ys[k]
	dims, err := x.Size()
	if err != nil {
		return 0, err
	}
	n := int(dims[0])
	if r.atk == nil { // inference
		ts.NoGrad(func() { err = r.net.ForwardT(x, false).Drop() })
		return n, err
	}
	adv, err := r.atk.Perturb(attack.FromModuleT(r.net), x, y)
	if err != nil {
		return 0, err
	}
	return n, adv.Drop()
}

// foldedNorms is how many batch norms r's network had folded, and
// whether it is a folded evaluation network at all.
func foldedNorms(r runner) (int, bool) {
	er, ok := r.(*evalRunner)
	if !ok || er.folded == nil {
		return 0, false
	}
	return er.folded.Norms, true
}

func (r *evalRunner) close() {
	for _, t := range append(r.xs, r.ys...) {
		_ = t.Drop()
	}
	r.folded.Close()
	r.vs.Destroy()
}

// loaderRunner pulls batches from data.Loader over synthetic images with
// crop and flip augmentation and converts them to tensors, epoch after
// epoch.
type loaderRunner struct {
	loader *data.Loader
	epoch  int
	next   func() (*data.Batch, error, bool)
	stop   func()
}

func newLoaderRunner(rc runnerConfig) (*loaderRunner, error) {
	src, err := synthetic(rc, rc.batch*loaderChunk*4)
	if err != nil {
		return nil, fmt.Errorf("loader data: %w", err)
	}
	aug := data.Augment{CropPad: 4, HFlip: true}
	if rc.spec.Input.Height <= 8 || rc.spec.Input.Width <= 8 {
		aug = data.Augment{HFlip: true}
	}
	l, err := data.NewLoader(src, data.LoaderConfig{BatchSize: rc.batch, Shuffle: true, Seed: rc.seed, DropLast: true, Augment: aug})
	if err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	r := &loaderRunner{loader: l}
	r.next, r.stop = iter.Pull2(l.Batches(context.Background(), 0))
	return r, nil
}

func (r *loaderRunner) step() (int, error) {
	images := 0
	for range loaderChunk {
		b, err, ok := r.next()
		if !ok { // the epoch ended: start the next one
			r.stop()
			r.epoch++
			r.next, r.stop = iter.Pull2(r.loader.Batches(context.Background(), r.epoch))
			if b, err, ok = r.next(); !ok {
				return images, fmt.Errorf("loader: epoch %d yielded no batch", r.epoch)
			}
		}
		if err != nil {
			return images, err
		}
		x, y, err := torchbatch.Tensors(b, gotch.CPU)
		if err != nil {
			return images, err
		}
		_ = x.Drop()
		_ = y.Drop()
		images += b.N
	}
	return images, nil
}

func (r *loaderRunner) close() { r.stop() }
