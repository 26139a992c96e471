package train

import (
	"cmp"
	"fmt"
	"runtime"
	"slices"

	"github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"
)

// namedVar is one variable of a VarStore: a trainable parameter or a
// buffer such as a batch-norm running mean.
type namedVar struct {
	name      string
	t         *ts.Tensor
	trainable bool
	// owned marks a handle made here (a shallow clone sharing the
	// variable's storage), which releaseVars frees.
	owned bool
	shape []int64
}

// varsOf lists the variables of vs sorted by name, so that optimiser state
// and checkpoints line up across processes. Trainable entries are the very
// tensors the model holds (matched by C handle). VarStore hands out only
// struct copies for the others, which do not keep the original alive: its
// finalizer may free the C tensor under them once the VarStore is
// unreachable. Buffers therefore get their own handle (a shallow clone on
// the same storage); release them with releaseVars.
func varsOf(vs *nn.VarStore) ([]namedVar, error) {
	trainables := vs.TrainableVariables()
	all := vs.Variables()
	out := make([]namedVar, 0, len(all))
	fail := func(err error) ([]namedVar, error) {
		releaseVars(out)
		return nil, err
	}
	for name, v := range all {
		copied := v
		nv := namedVar{name: name}
		for _, p := range trainables {
			if sameHandle(p, &copied) {
				nv.t, nv.trainable = p, true
				break
			}
		}
		if nv.t == nil {
			clone, err := copied.ShallowClone()
			if err != nil {
				return fail(fmt.Errorf("variable %s: %w", name, err))
			}
			nv.t, nv.owned = clone, true
		}
		shape, err := nv.t.Size()
		if err != nil {
			return fail(fmt.Errorf("variable %s: %w", name, err))
		}
		nv.shape = shape
		out = append(out, nv)
	}
	runtime.KeepAlive(vs)
	slices.SortFunc(out, func(a, b namedVar) int { return cmp.Compare(a.name, b.name) })
	return out, nil
}

// releaseVars frees the handles varsOf made.
func releaseVars(vars []namedVar) {
	for _, v := range vars {
		if v.owned {
			drop(v.t)
		}
	}
}

// countParams returns the number of trainable scalars.
func countParams(vars []namedVar) int64 {
	var n int64
	for _, v := range vars {
		if v.trainable {
			size := int64(1)
			for _, d := range v.shape {
				size *= d
			}
			n += size
		}
	}
	return n
}
