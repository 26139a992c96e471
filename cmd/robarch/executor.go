package main

import (
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/nn"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/sweep"
	"github.com/robarch/robarch/train"
)

// newExecutor wires the real trial pieces: arch/model builds, train trains,
// and the attack package evaluates what the sweep asks beyond PGD.
func newExecutor() *sweep.Executor {
	return &sweep.Executor{Build: buildSpecModel}
}

func buildSpecModel(spec arch.Spec, device gotch.Device) (train.Model, error) {
	vs := nn.NewVarStore(device)
	net, err := model.Build(vs, spec)
	if err != nil {
		return train.Model{}, err
	}
	return train.Model{Net: net, Vars: vs}, nil
}
