package sweeprun

import (
	"errors"
	"fmt"
	"strings"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/attack"
	"github.com/robarch/robarch/data"
	"github.com/robarch/robarch/internal/devicename"
	"github.com/robarch/robarch/internal/dist"
	"github.com/robarch/robarch/internal/torchrt"
	"github.com/robarch/robarch/sweep"
)

// PreflightOptions say what Preflight may take for granted.
type PreflightOptions struct {
	// DeviceAvailable also checks that this machine has the sweep's device.
	// Off when trials are only enqueued for workers elsewhere, whose devices
	// this machine cannot see (the device's syntax is checked regardless).
	DeviceAvailable bool
}

// Preflight checks everything a trial of the plan will need before any
// trial trains: the evaluation attacks and their options, the whole
// training recipe, the dataset (present, readable, its shape and classes
// those of every variant) and the device. A typo otherwise surfaces only
// after a trial has trained to the end. The error names each bad field
// and the allowed values.
func Preflight(f *sweep.File, p *sweep.Plan, opts PreflightOptions) error {
	var errs []error
	bad := func(field string, err error) { errs = append(errs, fmt.Errorf("%s: %w", field, err)) }

	for i, name := range f.Eval.Attacks {
		if _, err := attack.ByName(name, attack.Linf, f.Eval.Eps, 0); err != nil {
			bad(fmt.Sprintf("eval.attacks[%d]", i), err)
		}
	}
	for i, name := range f.Eval.Check.Attacks {
		if _, err := attack.ByName(name, attack.Linf, f.Eval.Eps, 0); err != nil {
			bad(fmt.Sprintf("eval.check.attacks[%d]", i), err)
		}
	}
	// What the file alone decides (the recipe of every trial included) is
	// checked at load; a File built in code is checked here the same way.
	if err := f.Validate(); err != nil {
		errs = append(errs, err)
	}
	if f.NprocPerTrial > 1 && !dist.Available() {
		bad("nproc_per_trial", fmt.Errorf("%d: this build has no c10d Gloo backend; install libgloo-dev and run `make setup`", f.NprocPerTrial))
	}
	if err := checkDevice(f.Device, opts.DeviceAvailable); err != nil {
		bad("device", err)
	} else if opts.DeviceAvailable {
		if _, err := TrainPrecision(f); err != nil {
			errs = append(errs, err)
		}
	}

	if err := checkDataset(f, p); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("sweep %s cannot run: %w", f.Name, errors.Join(errs...))
	}
	return nil
}

// checkDevice checks a device name's syntax, and with available also that
// libtorch sees it here.
func checkDevice(name string, available bool) error {
	if _, err := devicename.Parse(name); err != nil || !available {
		return err
	}
	_, err := torchrt.ParseDevice(name)
	return err
}

// checkDataset opens the sweep's dataset as a trial will and compares its
// image shape and classes with every feasible variant's input and head.
func checkDataset(f *sweep.File, p *sweep.Plan) error {
	c := f.Dataset
	splits, err := data.Open(c.Name, data.Options{Dir: c.Dir, TrainSize: c.TrainSize, TestSize: c.TestSize})
	if err != nil {
		return fmt.Errorf("dataset (name %q, dir %q): %w; names: %s", c.Name, c.Dir, err, strings.Join(data.Names(), ", "))
	}
	for _, v := range p.Feasible() {
		// Planned counts are not refitted: every variant must match the
		// data as it is (variants share the baseline's input and head,
		// so the first mismatch says it for all).
		if _, _, err := arch.ForData(v.Spec, splits.Shape(), false); err != nil {
			return fmt.Errorf("dataset %s: variant %s: %w", c.Name, v.Name, err)
		}
	}
	return nil
}
