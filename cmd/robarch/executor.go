package main

import (
	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/sweep"
)

// newExecutor wires the real trial pieces: arch/model builds (in memory
// format f), train trains, and the attack package evaluates what the sweep
// asks beyond PGD.
func newExecutor(f model.MemoryFormat) *sweep.Executor {
	return &sweep.Executor{Build: sweep.BuildModelIn(f)}
}
