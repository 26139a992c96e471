package main

import (
	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/sweep/sweeprun"
)

// newExecutor wires the real trial pieces: arch/model builds (in memory
// format f), train trains, and the attack package evaluates what the sweep
// asks beyond PGD.
func newExecutor(f model.MemoryFormat) *sweeprun.Executor {
	return &sweeprun.Executor{Build: sweeprun.BuildModelIn(f)}
}
