package bench

import (
	"context"
	"math"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/arch/model"
)

// workload sets up w on every configuration that runs it (warm-up steps
// included, one configuration at a time), then runs the timed steps, one
// step of each configuration in turn. format is the layout robarch's
// workers resolved.
func (c *coordinator) workload(ctx context.Context, w Workload, spec arch.Spec, rep *ParallelReport) (ParallelResult, model.MemoryFormat, error) {
	cfg := c.cfg
	res := ParallelResult{Model: cfg.Model, Workload: w, Nproc: cfg.Nproc, ThreadsPerProcess: cfg.Threads, Batch: cfg.Batch,
		Steps: cfg.Steps, Warmup: cfg.Warmup}
	if w == Allreduce {
		res.Floats, res.Tensors = cfg.AllreduceFloats, cfg.AllreduceTensors
	}
	var sides []*side
	for _, s := range c.sides {
		if w == Train || s.procs > 1 {
			sides = append(sides, s)
		}
	}
	var format model.MemoryFormat
	for _, s := range sides {
		m := workerMsg{Cmd: "setup", Spec: &spec, Params: rep.Params, MACs: rep.MACs, Threads: s.threads, Batch: s.batch,
			Eps: cfg.Eps, LR: cfg.LR, Seed: cfg.Seed, Workload: w, Warmup: cfg.Warmup, Device: "cpu",
			Floats: cfg.AllreduceFloats, Tensors: cfg.AllreduceTensors, MemoryFormat: cfg.MemoryFormat, Precision: cfg.Precision}
		if s.name == pytorchDDP || s.name == pytorchSingle {
			m.MemoryFormat, m.Precision = cfg.PeerMemoryFormat, cfg.PeerPrecision
		}
		replies, err := s.call(m)
		if err != nil {
			return res, "", err
		}
		if f := replies[0].MemoryFormat; f != "" && s.name == robarchDDP {
			format = f
		}
	}
	steps := make([][]workerReply, len(sides)) // per side, one aggregate per step
	for i := 0; i < cfg.Steps; i++ {
		for k, s := range sides {
			if err := ctx.Err(); err != nil {
				return res, "", err
			}
			replies, err := s.call(workerMsg{Cmd: "step"})
			if err != nil {
				return res, "", err
			}
			steps[k] = append(steps[k], aggregate(replies))
			cfg.Logger.Debug("bench step", "workload", w, "config", s.name, "step", i+1, "seconds", replies[0].Seconds)
		}
	}
	for k, s := range sides {
		res.Configs = append(res.Configs, summarizeConfig(s, steps[k]))
	}
	res.pair()
	cfg.Logger.Info("bench done", "workload", w, "paired_ratio", round2(res.PairedRatio), "scaling_efficiency", round2(res.ScalingEfficiency))
	return res, format, nil
}

// aggregate is one step of a configuration: the slowest process's time,
// the processes' mean allreduce, overlap and broadcast times, and the
// images of all.
func aggregate(rs []workerReply) workerReply {
	var out workerReply
	n := float64(len(rs))
	for _, r := range rs {
		out.Seconds = math.Max(out.Seconds, r.Seconds)
		out.AllreduceSeconds += r.AllreduceSeconds / n
		out.OverlapSeconds += r.OverlapSeconds / n
		out.BroadcastSeconds += r.BroadcastSeconds / n
		out.Images += r.Images
	}
	return out
}

func summarizeConfig(s *side, steps []workerReply) ConfigResult {
	r := ConfigResult{Name: s.name, Processes: s.procs, ThreadsPerProcess: s.threads, BatchPerProcess: s.batch}
	var secs, ar, share, over, bc []float64
	for _, st := range steps {
		secs = append(secs, st.Seconds)
		ar = append(ar, st.AllreduceSeconds)
		over = append(over, st.OverlapSeconds)
		bc = append(bc, st.BroadcastSeconds)
		if st.Seconds > 0 {
			share = append(share, st.AllreduceSeconds/st.Seconds)
			rate := 1 / st.Seconds // allreduce: exchanges per second
			if st.Images > 0 {
				rate = float64(st.Images) / st.Seconds
			}
			r.rates = append(r.rates, rate)
		}
	}
	r.StepSpread = Summarize(secs)
	r.StepSeconds = r.StepSpread.Median
	if len(steps) > 0 && steps[0].Images > 0 {
		r.ImagesPerS = Summarize(r.rates).Median
	}
	r.AllreduceSeconds = Summarize(ar).Median
	r.AllreduceShare = Summarize(share).Median
	r.OverlapSeconds = Summarize(over).Median
	r.BroadcastSeconds = Summarize(bc).Median
	return r
}

// pair fills the paired ratios: robarch's data-parallel step against
// PyTorch DDP's, and each framework's Nproc×Threads against 1×all.
func (res *ParallelResult) pair() {
	by := map[string]*ConfigResult{}
	for i := range res.Configs {
		by[res.Configs[i].Name] = &res.Configs[i]
	}
	paired := func(a, b string) (float64, *Interval) {
		x, y := by[a], by[b]
		if x == nil || y == nil {
			return 0, nil
		}
		return pairedRatioAt(x.rates, y.rates)
	}
	res.PairedRatio, res.RatioInterval = paired(robarchDDP, pytorchDDP)
	res.ScalingEfficiency, res.ScalingInterval = paired(robarchDDP, robarchSingle)
	res.PeerScalingEfficiency, res.PeerScalingInterval = paired(pytorchDDP, pytorchSingle)
}
