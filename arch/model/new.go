package model

import (
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/nn"

	"github.com/robarch/robarch/arch"
)

// New is the one door from a spec to a fresh network: a VarStore of its
// own on device, the net built from spec (initialised from libtorch's
// global generator: seed it first), and its weights in memory format f
// (auto picks per net and device). The caller destroys vs. Whether spec
// fits the data is arch.ForData's to say, before New.
//
// Precision is not New's: training runs its forward passes in the
// recipe's precision and its evaluations in fp32 on the same weights
// (train.Run wraps the net per phase), and evaluation wraps the folded
// copy (amp.Wrap), so a net built in one precision would be wrong for
// one of the two.
func New(spec arch.Spec, device gotch.Device, f MemoryFormat) (*nn.VarStore, *Net, error) {
	vs := nn.NewVarStore(device)
	net, err := Build(vs, spec)
	if err == nil {
		err = net.SetMemoryFormat(f)
	}
	if err != nil {
		vs.Destroy()
		return nil, nil, err
	}
	return vs, net, nil
}
