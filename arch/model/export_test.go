package model

import (
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// FirstBlockConv is the folded weight of the first block's first conv.
func FirstBlockConv(f *Folded) *ts.Tensor { return f.net.stages[0].blocks[0].convs[0].w }

// Owned lists the folded tensors.
func Owned(f *Folded) []*ts.Tensor { return f.owned }

// Resolve is Net.resolve.
func Resolve(n *Net, f MemoryFormat, dev gotch.Device) MemoryFormat { return n.resolve(f, dev) }
