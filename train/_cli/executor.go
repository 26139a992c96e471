package main

import (
	"github.com/robarch/robarch/sweep"
)

// newExecutor wires the real trial pieces: arch/model builds, train trains,
// and the attack package evaluates what the sweep asks beyond PGD.
func newExecutor() *sweep.Executor {
	return &sweep.Executor{Build: sweep.BuildModel}
}
