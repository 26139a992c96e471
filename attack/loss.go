package attack

import (
	"math"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// lossFn maps logits z [N, classes] to per-sample losses [N] that the
// attack maximises; its temporaries go to s. With z carrying autograd
// history, so does the loss.
type lossFn func(s *scope, z *ts.Tensor) *ts.Tensor

// libtorch's reduction codes and "no ignored class".
const (
	reductionNone = 0
	ignoreNone    = -100
)

func classes(z *ts.Tensor) int64 { return size(z)[1] }

// classMask [N, classes] marks class y of every sample.
func (s *scope) classMask(z, y *ts.Tensor) *ts.Tensor {
	ar := s.t(ts.Arange(ts.IntScalar(classes(z)), gotch.Int64, device(z)))
	return s.t(s.t(y.Unsqueeze(1, false)).EqTensor(s.t(ar.Unsqueeze(0, false)), false))
}

// pick is z[i, y[i]] for every sample [N].
func (s *scope) pick(z, y *ts.Tensor) *ts.Tensor {
	g := s.t(z.Gather(1, s.t(y.Unsqueeze(1, false)), false, false))
	return s.t(g.Reshape([]int64{-1}, false))
}

// bestOther is max_{j≠y} z_j per sample.
func (s *scope) bestOther(z, y *ts.Tensor) *ts.Tensor {
	masked := s.t(z.MaskedFill(s.classMask(z, y), scalar(math.Inf(-1)), false))
	return s.t(masked.Amax([]int64{1}, false, false))
}

// ranked returns the k-th largest logit of every sample (k = 1 is the
// maximum), from z sorted ascending; k beyond the class count gives the
// smallest logit.
func (s *scope) ranked(sorted *ts.Tensor, k int64) *ts.Tensor {
	c := size(sorted)[1]
	return s.t(sorted.Select(1, max(c-k, 0), false))
}

func ceLoss(y *ts.Tensor) lossFn {
	return func(s *scope, z *ts.Tensor) *ts.Tensor {
		return s.t(z.CrossEntropyLoss(y, ts.None, reductionNone, ignoreNone, 0, false))
	}
}

// cwLoss is the CW margin max_{j≠y} z_j − z_y: positive once fooled.
func cwLoss(y *ts.Tensor) lossFn {
	return func(s *scope, z *ts.Tensor) *ts.Tensor {
		return s.t(s.bestOther(z, y).Sub(s.pick(z, y), false))
	}
}

// dlrLoss is −(z_y − max_{j≠y} z_j) / (z_π1 − z_π3 + 1e-12), z_π sorted
// descending: invariant to shifting and scaling the logits.
func dlrLoss(y *ts.Tensor) lossFn {
	return func(s *scope, z *ts.Tensor) *ts.Tensor {
		if classes(z) < 3 {
			fail("the DLR loss needs at least 3 classes, the model has %d", classes(z))
		}
		sorted, _ := s.t2(z.Sort(1, false, false))
		den := s.t(s.t(s.ranked(sorted, 1).Sub(s.ranked(sorted, 3), false)).AddScalar(scalar(1e-12), false))
		num := s.t(s.bestOther(z, y).Sub(s.pick(z, y), false))
		return s.t(num.Div(den, false))
	}
}

// targetedDLRLoss is APGD-T's −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2 +
// 1e-12). With 3 classes z_π4 does not exist and the smallest logit stands
// in; with 2 classes the ratio is ±1 whatever the input (no gradient), so
// the targeted cross-entropy −CE(z, t) is used instead.
func targetedDLRLoss(y, t *ts.Tensor) lossFn {
	return func(s *scope, z *ts.Tensor) *ts.Tensor {
		if classes(z) < 3 {
			ce := s.t(z.CrossEntropyLoss(t, ts.None, reductionNone, ignoreNone, 0, false))
			return s.t(ce.Neg(false))
		}
		sorted, _ := s.t2(z.Sort(1, false, false))
		mid := s.t(s.t(s.ranked(sorted, 3).Add(s.ranked(sorted, 4), false)).MulScalar(scalar(0.5), false))
		den := s.t(s.t(s.ranked(sorted, 1).Sub(mid, false)).AddScalar(scalar(1e-12), false))
		num := s.t(s.pick(z, t).Sub(s.pick(z, y), false))
		return s.t(num.Div(den, false))
	}
}

// targetMargin is z_t − z_y: FAB-T's decision function, positive once x is
// classified as t rather than y.
func targetMargin(y, t *ts.Tensor) lossFn {
	return func(s *scope, z *ts.Tensor) *ts.Tensor {
		return s.t(s.pick(z, t).Sub(s.pick(z, y), false))
	}
}

// lossFor returns the per-sample loss named l for labels y.
func lossFor(l Loss, y *ts.Tensor) lossFn {
	switch l {
	case CW:
		return cwLoss(y)
	case DLR:
		return dlrLoss(y)
	default:
		return ceLoss(y)
	}
}
