package amp

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Module runs a network's forward pass under autocast and returns its
// logits in fp32, so that losses, softmaxes and attack gradients with
// respect to the (fp32) input are computed in fp32. The cast back is
// part of the autograd graph: gradients flow through it into the
// low-precision forward and on to the fp32 weights.
type Module struct {
	net       ts.ModuleT
	device    gotch.Device
	precision Precision
}

var _ ts.ModuleT = (*Module)(nil)

// Wrap returns net running at precision p on device: net itself for fp32,
// a *Module otherwise. p must be concrete (not auto) and valid for device.
func Wrap(net ts.ModuleT, device gotch.Device, p Precision) (ts.ModuleT, error) {
	if p == "" || p == FP32 {
		return net, nil
	}
	if err := Check(p, device); err != nil {
		return nil, err
	}
	return &Module{net: net, device: device, precision: p}, nil
}

// Unwrap is the network inside.
func (m *Module) Unwrap() ts.ModuleT { return m.net }

// Precision is the forward pass's precision.
func (m *Module) Precision() Precision { return m.precision }

// ForwardT runs the inner ForwardT under autocast (a scope of its own, so
// the cast cache is cleared when it ends unless an outer scope is open)
// and casts the result to fp32. Like gotch modules, it panics on errors.
func (m *Module) ForwardT(x *ts.Tensor, train bool) *ts.Tensor {
	var out *ts.Tensor
	if err := Do(m.device, m.precision, func() error {
		out = m.net.ForwardT(x, train)
		return nil
	}); err != nil {
		drop(out)
		panic(fmt.Errorf("amp forward: %w", err))
	}
	dt, err := DTypeOf(out)
	if err != nil {
		drop(out)
		panic(fmt.Errorf("amp forward: %w", err))
	}
	if dt == gotch.Float {
		return out
	}
	f, err := out.Totype(gotch.Float, true)
	if err != nil {
		panic(fmt.Errorf("amp forward: logits to fp32: %w", err))
	}
	return f
}

// evalModuler matches train.EvalModuler without importing train.
type evalModuler interface {
	EvalModule() (ts.ModuleT, func(), error)
}

// EvalModule is the inner network's evaluation module (batch norms folded,
// for arch/model nets) at the same precision.
func (m *Module) EvalModule() (ts.ModuleT, func(), error) {
	em, ok := m.net.(evalModuler)
	if !ok {
		return m, func() {}, nil
	}
	inner, release, err := em.EvalModule()
	if err != nil {
		return nil, nil, err
	}
	return &Module{net: inner, device: m.device, precision: m.precision}, release, nil
}

// PrecisionOf is the precision a (possibly wrapped) network runs at.
func PrecisionOf(net ts.ModuleT) Precision {
	if m, ok := net.(*Module); ok {
		return m.precision
	}
	return FP32
}

func drop(ts ...*ts.Tensor) {
	for _, t := range ts {
		if t != nil {
			_ = t.Drop()
		}
	}
}
