// Package train trains a network with one of the usual recipes of
// adversarial-robustness research: standard (clean) training, FGSM with a
// random start (Fast-AT, Wong et al. 2020), PGD adversarial training (Madry
// et al. 2018) and TRADES (Zhang et al. 2019). It owns the optimiser (SGD
// with momentum/Nesterov and weight decay that spares 1-D parameters),
// per-epoch evaluation with clean and PGD
// accuracy, checkpoints written atomically, and an exact resume.
//
// All torch work of a Run happens on the caller's goroutine, which Run
// locks to its OS thread. The recipe a Run follows (method, radius,
// schedule and their defaults) is a package recipe value.
package train

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
	"unsafe"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/data"
	"github.com/robarch/robarch/data/torchbatch"
	"github.com/robarch/robarch/internal/amp"
	"github.com/robarch/robarch/internal/atomicfile"
	"github.com/robarch/robarch/internal/dist"
	"github.com/robarch/robarch/internal/torchrt"
	"github.com/robarch/robarch/recipe"
)

// Model is the network to train: a gotch module over images in [0,1]
// (normalisation belongs inside it) and the VarStore holding its
// variables, created on the training device.
type Model struct {
	Net  ts.ModuleT
	Vars *nn.VarStore
}

// Data holds the training split and the held-out split that evaluation
// subsets are drawn from.
type Data struct {
	Train, Test data.Source
}

// Options are the parts of a run that do not change its numbers.
type Options struct {
	// OutDir receives checkpoints, state and metrics; required.
	OutDir string
	// Resume continues the run in OutDir from its last finished epoch.
	// Without it, a run directory that already holds a run is refused.
	Resume bool
	// Meta is stored with the run (state.json, metrics.json): model name,
	// spec, dataset. It must marshal to JSON.
	Meta any
	// Logger receives progress and epoch lines (default slog.Default()).
	Logger *slog.Logger
	// LogEvery logs a progress line every n steps; 0 means about ten
	// lines per epoch, a negative value none.
	LogEvery int
	// OnStep, if set, is called after every training step (for a
	// progress bar); OnEpoch after every finished, checkpointed epoch.
	OnStep  func(Progress)
	OnEpoch func(EpochMetrics)
	// Workers of the data loaders (0 = their default).
	Workers int
	// Export, if set, is called once at the end, with the model holding
	// the chosen checkpoint's weights and the summary measured on it, to
	// write the checkpoint in a richer format (arch/model's, with the
	// spec). It returns the file it wrote, relative to dir, which becomes
	// Summary.Checkpoint.
	Export func(dir string, s Summary) (string, error)

	// Group, if set, makes the run one rank of a data-parallel job (see
	// parallel.go): every rank calls Run with the same model, data,
	// recipe and OutDir (a directory every rank sees); rank 0 writes it.
	Group *dist.Group

	// evaluate replaces Evaluate for the per-epoch evaluation in tests.
	evaluate func(context.Context, ts.ModuleT, data.Source, gotch.Device, EvalConfig) (EvalResult, error)
}

// Progress describes the training step just done.
type Progress struct {
	Epoch, Epochs int // 1-based
	Step, Steps   int // 1-based, within the epoch
	// Loss and Acc are running means over the epoch so far.
	Loss, Acc    float64
	LR           float64
	ImagesPerSec float64
	// ETA estimates the rest of the run: remaining steps at this epoch's
	// pace plus the last measured evaluation time per remaining epoch.
	ETA time.Duration
}

// EpochMetrics is one line of MetricsLog.
type EpochMetrics struct {
	Epoch     int     `json:"epoch"` // 1-based
	LR        float64 `json:"lr"`    // at the epoch's last step
	TrainLoss float64 `json:"train_loss"`
	// TrainAcc is the accuracy on the inputs the loss saw: adversarial
	// ones for fgsm-rs, pgd and trades.
	TrainAcc float64 `json:"train_acc"`
	// CleanAcc and PGDAcc are measured on the per-epoch evaluation subset.
	CleanAcc     float64 `json:"clean_acc"`
	PGDAcc       float64 `json:"pgd_acc"`
	ImagesPerSec float64 `json:"images_per_s"`
	Seconds      float64 `json:"seconds"` // training time of the epoch
	EvalSeconds  float64 `json:"eval_seconds"`
	Overfit      bool    `json:"catastrophic_overfitting,omitempty"`
}

// Summary is what MetricsFile holds: the chosen checkpoint's final
// evaluation and how the run went.
type Summary struct {
	// CleanAcc and PGDAcc are the chosen checkpoint's accuracies on
	// EvalExamples test examples, PGD with PGDSteps steps at EvalEps.
	CleanAcc     float64 `json:"clean_acc"`
	PGDAcc       float64 `json:"pgd_acc"`
	EvalExamples int     `json:"eval_examples"`
	PGDSteps     int     `json:"pgd_steps"`
	EvalEps      float64 `json:"eval_eps"`
	// Epoch is the chosen checkpoint's epoch; Chosen its per-epoch numbers.
	Epoch     int           `json:"epoch"`
	Chosen    EpochMetrics  `json:"chosen"`
	EpochsRun int           `json:"epochs_run"`
	Method    recipe.Method `json:"method"`
	Eps       float64       `json:"eps"`
	Params    int64         `json:"params"`
	// Checkpoint is the chosen checkpoint's file in the run directory:
	// ModelFile, or what Options.Export wrote.
	Checkpoint string `json:"checkpoint"`
	// CatastrophicOverfitting flags a collapse of PGD accuracy during
	// training (OverfitEpoch is where); StoppedEarly says training ended
	// there.
	CatastrophicOverfitting bool            `json:"catastrophic_overfitting"`
	OverfitEpoch            int             `json:"overfit_epoch,omitempty"`
	StoppedEarly            bool            `json:"stopped_early"`
	ImagesPerSec            float64         `json:"images_per_s"` // mean training throughput
	TrainSeconds            float64         `json:"train_seconds"`
	EvalSeconds             float64         `json:"eval_seconds"` // per-epoch and final evaluation
	PeakRSSBytes            int64           `json:"peak_rss_bytes"`
	Device                  string          `json:"device"`
	Threads                 int             `json:"threads"`
	Recipe                  recipe.Recipe   `json:"recipe"`
	Meta                    json.RawMessage `json:"meta,omitempty"`

	// Precision is the training forward passes' (fp32, bf16, fp16);
	// EvalPrecision the evaluations', always fp32 in a run.
	Precision     string `json:"precision"`
	EvalPrecision string `json:"eval_precision"`
}

// Result is a finished run: its summary and per-epoch history.
type Result struct {
	Summary
	History []EpochMetrics
}

// NonFiniteLossError reports a NaN or infinite training loss. The run
// stops before the bad step's update; the last checkpoint is intact.
type NonFiniteLossError struct {
	Epoch, Step int // 1-based
	Loss        float64
	// LastGood is the last checkpoint's file and epoch (0: initial weights).
	LastGood      string
	LastGoodEpoch int
}

func (e *NonFiniteLossError) Error() string {
	return fmt.Sprintf("training loss is %v at epoch %d step %d: stopped; the last good checkpoint is %s (after epoch %d); lower the learning rate or enable --grad-clip",
		e.Loss, e.Epoch, e.Step, e.LastGood, e.LastGoodEpoch)
}

// Run trains m on d with recipe r, checkpointing every epoch into
// opts.OutDir, then evaluates the checkpoint with the best per-epoch PGD
// accuracy on the final evaluation set and writes MetricsFile. On return
// the model holds the chosen checkpoint's weights. Torch work runs on the
// calling goroutine, locked to its OS thread meanwhile.
func Run(ctx context.Context, m Model, d Data, r recipe.Recipe, opts Options) (*Result, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r = r.WithDefaults()
	if err := r.Validate(); err != nil {
		return nil, err
	}
	t, err := newTrainer(m, d, r, opts)
	if err != nil {
		return nil, err
	}
	defer t.opt.Close()
	defer releaseVars(t.vars)
	if err := t.prepareState(); err != nil {
		return nil, err
	}
	for t.st.EpochsDone < r.Epochs && t.st.Stopped == "" {
		if err := t.epoch(ctx, t.st.EpochsDone); err != nil {
			return nil, err
		}
	}
	return t.finish(ctx)
}

// trainer is one Run's working state.
type trainer struct {
	m       Model
	d       Data
	r       recipe.Recipe
	opts    Options
	log     *slog.Logger
	device  gotch.Device
	vars    []namedVar
	opt     *SGD
	loader  *data.Loader
	evalSrc data.Source
	st      *runState
	// lastEvalSeconds feeds the ETA.
	lastEvalSeconds float64
	evaluate        func(context.Context, ts.ModuleT, data.Source, gotch.Device, EvalConfig) (EvalResult, error)

	// net is m.Net at the recipe's precision, for the training step only
	// (evaluations use m.Net, fp32); scaler is fp16's loss scaler.
	net    ts.ModuleT
	scaler *amp.Scaler

	// Data parallelism (parallel.go): this rank among world, the batch's
	// shards, and the buffers rank 0 broadcasts after every step.
	world, rank, shards int
	buffers             []unsafe.Pointer
}

func newTrainer(m Model, d Data, r recipe.Recipe, opts Options) (*trainer, error) {
	if m.Net == nil || m.Vars == nil {
		return nil, fmt.Errorf("train: model needs a network and its VarStore")
	}
	if d.Train == nil || d.Test == nil {
		return nil, fmt.Errorf("train: data needs a training and a test split")
	}
	if opts.OutDir == "" {
		return nil, fmt.Errorf("train: output directory (--out) is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	t := &trainer{m: m, d: d, r: r, opts: opts, log: opts.Logger, device: m.Vars.Device(), evaluate: opts.evaluate}
	if t.evaluate == nil {
		t.evaluate = Evaluate
	}
	var err error
	if t.vars, err = varsOf(m.Vars); err != nil {
		return nil, err
	}
	t.opt, err = newSGD(t.vars, SGDConfig{Momentum: r.Momentum, Nesterov: r.Nesterov, WeightDecay: r.WeightDecay, GradClip: r.GradClip})
	if err != nil {
		releaseVars(t.vars)
		return nil, err
	}
	if err := t.setPrecision(); err != nil {
		t.opt.Close()
		releaseVars(t.vars)
		return nil, err
	}
	if err := t.setupShards(); err != nil {
		t.opt.Close()
		releaseVars(t.vars)
		return nil, err
	}
	t.loader, err = data.NewLoader(d.Train, data.LoaderConfig{
		BatchSize: r.BatchSize, Shuffle: true, Seed: r.Seed, DropLast: true,
		Augment: data.Augment{CropPad: r.CropPad, HFlip: r.HFlip}, Workers: opts.Workers,
		// Each rank reads and augments only its own rows.
		Part: data.Part{Rank: t.rank, Of: t.world},
	})
	if err == nil && t.loader.NumBatches() == 0 {
		err = fmt.Errorf("training set has %d examples, fewer than one batch of %d", d.Train.Len(), r.BatchSize)
	}
	if err == nil {
		t.evalSrc, err = data.SelectStratified(d.Test, r.EvalSize, r.Seed)
	}
	if err != nil {
		t.opt.Close()
		releaseVars(t.vars)
		return nil, fmt.Errorf("train: %w", err)
	}
	return t, nil
}

// prepareState starts a new run (checkpointing the initial weights, so a
// crash in the first epoch resumes from exactly them) or loads the state
// of the run to resume. In a data-parallel run rank 0 does that and the
// other ranks then load what it wrote and take its tensors.
func (t *trainer) prepareState() error {
	g := t.opts.Group
	if g == nil {
		return t.prepareOwnState()
	}
	if t.primary() {
		if err := t.prepareOwnState(); err != nil {
			return err
		}
	}
	if err := g.Barrier(); err != nil {
		return fmt.Errorf("train: wait for rank 0 to prepare %s: %w", t.opts.OutDir, err)
	}
	if !t.primary() {
		st, err := readState(t.opts.OutDir)
		if err != nil {
			return err
		}
		if st == nil {
			return fmt.Errorf("train: rank %d finds no run in %s after rank 0 prepared it: the output directory must be one that every rank sees", t.rank, t.opts.OutDir)
		}
		if err := t.loadResume(filepath.Join(t.opts.OutDir, st.Last)); err != nil {
			return fmt.Errorf("train: rank %d: %w", t.rank, err)
		}
		st.Recipe = t.r
		t.st = st
	}
	return t.syncStart()
}

func (t *trainer) prepareOwnState() error {
	dir := t.opts.OutDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	st, err := readState(dir)
	if err != nil {
		return err
	}
	meta, err := json.Marshal(t.opts.Meta)
	if err != nil {
		return fmt.Errorf("train: options meta: %w", err)
	}
	switch {
	case st != nil && !t.opts.Resume:
		return fmt.Errorf("%s already holds a run (%d of %d epochs done): pass --resume to continue it or choose another --out", dir, st.EpochsDone, st.Recipe.Epochs)
	case st != nil:
		if diff := recipeDiff(t.r, st.Recipe); len(diff) > 0 {
			return fmt.Errorf("resume %s: the recipe differs from the run's (%s); resuming would not reproduce the run", dir, strings.Join(diff, "; "))
		}
		cleanStale(dir, st.Last, st.BestFile)
		if err := t.loadResume(filepath.Join(dir, st.Last)); err != nil {
			return fmt.Errorf("resume %s: %w", dir, err)
		}
		st.Recipe = t.r // equal but for fields that change no number
		t.st = st
		t.log.Info("resuming", "dir", dir, "epochs_done", st.EpochsDone, "epochs", t.r.Epochs)
		return nil
	}
	if t.opts.Resume {
		t.log.Info("nothing to resume; starting a new run", "dir", dir)
	}
	cleanStale(dir)
	t.st = &runState{Version: stateVersion, Recipe: t.r, Params: countParams(t.vars)}
	if string(meta) != "null" {
		t.st.Meta = meta
	}
	return t.checkpoint(0)
}

// loadResume restores model variables and momentum buffers.
func (t *trainer) loadResume(path string) error {
	saved, err := loadTensors(path, t.device)
	if err != nil {
		return err
	}
	defer dropAll(saved)
	if err := loadVars(t.vars, saved, path); err != nil {
		return err
	}
	return t.opt.LoadState(saved)
}

// checkpoint writes the resume tensors after `done` epochs, then the
// state pointing at them, then the metrics log, and removes the previous
// resume tensors. A crash anywhere leaves a state naming a complete file.
func (t *trainer) checkpoint(done int) error {
	dir := t.opts.OutDir
	if !t.primary() {
		t.st.EpochsDone, t.st.Last = done, lastFile(done)
		return nil
	}
	name := lastFile(done)
	named := append(varTensors(t.vars), t.opt.State()...)
	if err := saveTensors(filepath.Join(dir, name), named); err != nil {
		return fmt.Errorf("checkpoint after epoch %d: %w", done, err)
	}
	t.st.EpochsDone, t.st.Last = done, name
	t.st.TorchSeed, t.st.LoaderSeed = epochSeed(t.r.Seed, done), t.r.Seed
	t.st.UpdatedAt = time.Now().UTC()
	if err := writeJSON(filepath.Join(dir, StateFile), t.st); err != nil {
		return fmt.Errorf("checkpoint after epoch %d: %w", done, err)
	}
	if err := t.writeLog(); err != nil {
		return err
	}
	cleanStale(dir, name, t.st.BestFile)
	return nil
}

// writeLog rewrites MetricsLog from the state's history, so the log always
// agrees with the state, also after a resume.
func (t *trainer) writeLog() error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, em := range t.st.History {
		if err := enc.Encode(em); err != nil {
			return fmt.Errorf("metrics log: %w", err)
		}
	}
	return atomicfile.WriteFile(filepath.Join(t.opts.OutDir, MetricsLog), buf.Bytes(), 0o644)
}

// Seeds: libtorch's generator is re-seeded from the recipe seed at each
// epoch start and before each evaluation, so each can be replayed alone.
const (
	streamEpoch uint64 = 1 << 60
	streamEval  uint64 = 2 << 60
	streamFinal uint64 = 3 << 60
)

func epochSeed(seed int64, epoch int) int64 {
	return deriveSeed(seed, streamEpoch|uint64(epoch))
}

func deriveSeed(seed int64, stream uint64) int64 {
	x := uint64(seed) ^ (stream * 0x9e3779b97f4a7c15)
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return int64((x ^ (x >> 31)) >> 1) // non-negative
}

// epoch trains and evaluates epoch e (0-based) and checkpoints it.
func (t *trainer) epoch(ctx context.Context, e int) error {
	em, err := t.trainEpoch(ctx, e)
	if err != nil {
		return err
	}
	ev, err := t.evaluate(ctx, t.m.Net, t.evalSrc, t.device, EvalConfig{
		Eps: t.r.EvalEps, Steps: t.r.EvalSteps, BatchSize: t.r.EvalBatchSize,
		Seed: deriveSeed(t.r.Seed, streamEval|uint64(e)), Workers: t.opts.Workers,
		Shard: t.evalShard(), Log: t.log,
	})
	if err != nil {
		return fmt.Errorf("epoch %d evaluation: %w", e+1, err)
	}
	em.CleanAcc, em.PGDAcc, em.EvalSeconds = ev.CleanAcc, ev.PGDAcc, ev.Seconds
	t.lastEvalSeconds = ev.Seconds

	if t.judge(&em) {
		name := bestFile(em.Epoch)
		if t.primary() { // the only rank that writes
			if err := saveTensors(filepath.Join(t.opts.OutDir, name), varTensors(t.vars)); err != nil {
				return fmt.Errorf("epoch %d: %w", em.Epoch, err)
			}
		}
		cp := em
		t.st.Best, t.st.BestFile = &cp, name
	}
	t.st.History = append(t.st.History, em)
	if err := t.checkpoint(e + 1); err != nil {
		return err
	}
	t.log.Info("epoch done", "epoch", fmt.Sprintf("%d/%d", em.Epoch, t.r.Epochs),
		"train_loss", round4(em.TrainLoss), "train_acc", round4(em.TrainAcc),
		"clean_acc", round4(em.CleanAcc), "pgd_acc", round4(em.PGDAcc),
		"best_epoch", t.st.Best.Epoch, "lr", round4(em.LR), "img_per_s", math.Round(em.ImagesPerSec),
		"train_s", math.Round(em.Seconds), "eval_s", math.Round(em.EvalSeconds))
	if t.opts.OnEpoch != nil {
		t.opts.OnEpoch(em)
	}
	return nil
}

// judge flags catastrophic overfitting (per-epoch PGD accuracy more than
// OverfitDrop below the best so far), stopping the run if the recipe says
// so, and reports whether em beats the best epoch: higher PGD accuracy,
// then higher clean accuracy.
func (t *trainer) judge(em *EpochMetrics) (better bool) {
	best := t.st.Best
	if best == nil {
		return true
	}
	if t.r.EvalEps > 0 && em.PGDAcc < best.PGDAcc-t.r.OverfitDrop {
		em.Overfit = true
		if t.st.OverfitEpoch == 0 {
			t.st.OverfitEpoch = em.Epoch
		}
		advice := "pass --stop-on-overfit to stop at the first collapse; the best epoch's checkpoint is kept either way"
		if t.r.StopOnOverfit {
			t.st.Stopped = fmt.Sprintf("catastrophic overfitting at epoch %d", em.Epoch)
			advice = "stopping training; the best epoch's checkpoint is kept"
		}
		t.log.Warn(fmt.Sprintf("catastrophic overfitting: PGD accuracy fell from %.4f (epoch %d) to %.4f at epoch %d while clean accuracy is %.4f; %s",
			best.PGDAcc, best.Epoch, em.PGDAcc, em.Epoch, em.CleanAcc, advice))
	}
	return em.PGDAcc > best.PGDAcc || (em.PGDAcc == best.PGDAcc && em.CleanAcc > best.CleanAcc)
}

// trainEpoch runs the training steps of epoch e.
func (t *trainer) trainEpoch(ctx context.Context, e int) (EpochMetrics, error) {
	em := EpochMetrics{Epoch: e + 1}
	torchrt.Seed(epochSeed(t.r.Seed, e))
	steps := t.loader.NumBatches()
	logEvery := t.opts.LogEvery
	if logEvery == 0 {
		logEvery = max(1, steps/10)
	}
	var lossSum float64
	var correct, seen int64
	start := time.Now()
	for b, err := range t.loader.Batches(ctx, e) {
		if err != nil {
			return em, fmt.Errorf("epoch %d: %w", e+1, err)
		}
		if err := ctx.Err(); err != nil {
			return em, fmt.Errorf("epoch %d step %d: %w", e+1, b.Index+1, err)
		}
		lr := t.r.LRAt(float64(e) + float64(b.Index+1)/float64(steps))
		loss, ok, err := t.step(b, lr)
		if err != nil {
			if nf := (*NonFiniteLossError)(nil); errors.As(err, &nf) {
				nf.Epoch, nf.Step = e+1, b.Index+1
				nf.LastGood = filepath.Join(t.opts.OutDir, t.st.Last)
				nf.LastGoodEpoch = t.st.EpochsDone
			}
			return em, err
		}
		lossSum += loss * float64(b.Total) // loss and ok are the whole batch's
		correct += ok
		seen += int64(b.Total)
		em.LR = lr

		done := b.Index + 1
		elapsed := time.Since(start).Seconds()
		p := Progress{
			Epoch: e + 1, Epochs: t.r.Epochs, Step: done, Steps: steps,
			Loss: lossSum / float64(seen), Acc: float64(correct) / float64(seen), LR: lr,
			ImagesPerSec: float64(seen) / elapsed,
		}
		stepSec := elapsed / float64(done)
		remainingEpochs := t.r.Epochs - e - 1
		eta := stepSec*float64(steps-done+remainingEpochs*steps) + t.lastEvalSeconds*float64(remainingEpochs+1)
		p.ETA = time.Duration(eta * float64(time.Second)).Round(time.Second)
		if t.opts.OnStep != nil {
			t.opts.OnStep(p)
		}
		if logEvery > 0 && (done%logEvery == 0 || done == steps) {
			t.log.Info("train", "epoch", fmt.Sprintf("%d/%d", p.Epoch, p.Epochs), "step", fmt.Sprintf("%d/%d", done, steps),
				"loss", round4(p.Loss), "acc", round4(p.Acc), "lr", round4(lr),
				"img_per_s", math.Round(p.ImagesPerSec), "eta", p.ETA)
		}
	}
	em.Seconds = time.Since(start).Seconds()
	if seen > 0 {
		em.TrainLoss = lossSum / float64(seen)
		em.TrainAcc = float64(correct) / float64(seen)
		em.ImagesPerSec = float64(seen) / em.Seconds
	}
	return em, nil
}

// step trains on one batch: loss, backward, optimiser update. It returns
// the batch's mean loss and its number of correct predictions.
func (t *trainer) step(b *data.Batch, lr float64) (float64, int64, error) {
	if t.sharded() {
		return t.shardedStep(b, lr, b.Epoch)
	}
	x, y, err := torchbatch.Tensors(b, t.device)
	if err != nil {
		return 0, 0, err
	}
	defer drop(x, y)
	loss, logits, err := batchLoss(t.net, x, y, t.r)
	if err != nil {
		return 0, 0, err
	}
	defer drop(loss, logits)
	v, err := item(loss)
	if err != nil {
		return 0, 0, err
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, 0, &NonFiniteLossError{Loss: v}
	}
	var ok int64
	ts.NoGrad(func() { ok, err = countCorrect(logits, y) })
	if err != nil {
		return 0, 0, err
	}
	if t.scaler != nil {
		return v, ok, t.scaledUpdate(loss, lr)
	}
	if err := loss.Backward(); err != nil {
		return 0, 0, fmt.Errorf("backward: %w", err)
	}
	if _, err := t.opt.Step(lr); err != nil {
		return 0, 0, err
	}
	return v, ok, nil
}

// setPrecision wraps the net for the recipe's precision (and makes fp16's
// loss scaler); the weights stay fp32 master weights.
func (t *trainer) setPrecision() error {
	p := t.r.Precision
	if p == "" {
		p = amp.FP32
	}
	net, err := amp.Wrap(t.m.Net, t.device, p)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	t.net = net
	if p == amp.FP16 {
		t.scaler = amp.NewScaler()
	}
	return nil
}

// scaledUpdate is fp16's backward and update: backward of loss × scale,
// gradients unscaled (before any clipping), the step skipped when one of
// them overflowed.
func (t *trainer) scaledUpdate(loss *ts.Tensor, lr float64) error {
	scaled, err := t.scaler.ScaleLoss(loss)
	if err != nil {
		return err
	}
	defer drop(scaled)
	if err := scaled.Backward(); err != nil {
		return fmt.Errorf("backward: %w", err)
	}
	ok, err := t.scaler.Unscale(t.opt.paramPointers())
	if err != nil {
		return err
	}
	if !ok {
		t.log.Debug("fp16 step skipped: inf or NaN gradients", "scale", t.scaler.Scale, "skipped", t.scaler.Skipped)
		return nil
	}
	_, err = t.opt.Step(lr)
	return err
}

// finish evaluates the chosen checkpoint on the final evaluation set and
// writes MetricsFile.
func (t *trainer) finish(ctx context.Context) (*Result, error) {
	st := t.st
	if st.Best == nil {
		return nil, fmt.Errorf("train: no epoch finished, nothing to evaluate")
	}
	if g := t.opts.Group; g != nil {
		// Rank 0 wrote the chosen checkpoint after its last evaluation.
		if err := g.Barrier(); err != nil {
			return nil, fmt.Errorf("final evaluation: wait for rank 0's checkpoint: %w", err)
		}
	}
	model := filepath.Join(t.opts.OutDir, ModelFile)
	if t.primary() {
		if err := linkAtomic(filepath.Join(t.opts.OutDir, st.BestFile), model); err != nil {
			return nil, fmt.Errorf("publish chosen checkpoint: %w", err)
		}
	}
	// Every rank evaluates its share of the final set with the chosen
	// weights (the directory is one every rank sees).
	if err := LoadWeights(t.m, filepath.Join(t.opts.OutDir, st.BestFile)); err != nil {
		return nil, fmt.Errorf("load chosen checkpoint: %w", err)
	}
	finalSrc, err := data.SelectStratified(t.d.Test, t.r.FinalSize, t.r.Seed)
	if err != nil {
		return nil, fmt.Errorf("final evaluation: %w", err)
	}
	t.log.Info("final evaluation of the chosen checkpoint", "epoch", st.Best.Epoch, "examples", finalSrc.Len(), "pgd_steps", t.r.FinalSteps, "eps", t.r.EvalEps)
	ev, err := Evaluate(ctx, t.m.Net, finalSrc, t.device, EvalConfig{
		Eps: t.r.EvalEps, Steps: t.r.FinalSteps, BatchSize: t.r.EvalBatchSize,
		Seed: deriveSeed(t.r.Seed, streamFinal), Workers: t.opts.Workers,
		Shard: t.evalShard(), Log: t.log,
	})
	if err != nil {
		return nil, fmt.Errorf("final evaluation: %w", err)
	}
	if !t.primary() {
		// Rank 0 writes the results; this rank returns the same numbers.
		return &Result{Summary: Summary{CleanAcc: ev.CleanAcc, PGDAcc: ev.PGDAcc, EvalExamples: ev.N, PGDSteps: ev.Steps, EvalEps: ev.Eps,
			Epoch: st.Best.Epoch, Chosen: *st.Best, EpochsRun: len(st.History),
			Method: t.r.Method, Eps: t.r.Eps, Params: st.Params, Recipe: t.r, Meta: st.Meta}}, nil
	}
	s := Summary{
		CleanAcc: ev.CleanAcc, PGDAcc: ev.PGDAcc, EvalExamples: ev.N, PGDSteps: ev.Steps, EvalEps: ev.Eps,
		Epoch: st.Best.Epoch, Chosen: *st.Best, EpochsRun: len(st.History),
		Method: t.r.Method, Eps: t.r.Eps, Params: st.Params, Checkpoint: ModelFile,
		CatastrophicOverfitting: st.OverfitEpoch > 0, OverfitEpoch: st.OverfitEpoch, StoppedEarly: st.Stopped != "",
		EvalSeconds: ev.Seconds, PeakRSSBytes: peakRSS(), Device: deviceName(t.device), Threads: torchrt.Threads(),
		Precision: string(cmpOr(t.r.Precision, amp.FP32)), EvalPrecision: string(amp.FP32),
		Recipe: t.r, Meta: st.Meta,
	}
	var images float64
	for _, em := range st.History {
		s.TrainSeconds += em.Seconds
		s.EvalSeconds += em.EvalSeconds
		images += em.ImagesPerSec * em.Seconds
	}
	if s.TrainSeconds > 0 {
		s.ImagesPerSec = images / s.TrainSeconds
	}
	if t.opts.Export != nil {
		file, err := t.opts.Export(t.opts.OutDir, s)
		if err != nil {
			return nil, fmt.Errorf("export chosen checkpoint: %w", err)
		}
		s.Checkpoint = file
	}
	if err := writeJSON(filepath.Join(t.opts.OutDir, MetricsFile), s); err != nil {
		return nil, err
	}
	t.log.Info("training finished", "clean_acc", round4(s.CleanAcc), "pgd_acc", round4(s.PGDAcc),
		"pgd_steps", s.PGDSteps, "examples", s.EvalExamples, "epoch", s.Epoch, "dir", t.opts.OutDir)
	return &Result{Summary: s, History: append([]EpochMetrics(nil), st.History...)}, nil
}

func cmpOr(p, def amp.Precision) amp.Precision {
	if p == "" {
		return def
	}
	return p
}

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }

func deviceName(d gotch.Device) string {
	if d == gotch.CPU {
		return "cpu"
	}
	return fmt.Sprintf("cuda:%d", d.Value)
}
