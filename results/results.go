// Package results defines the record of one sweep trial: the value that flows
// from the sweep runner into the store and from the store into the guidelines
// report. It is plain data so that every layer can depend on it.
package results

import (
	"encoding/json"
	"time"
)

// Status of a trial in the store.
type Status string

const (
	StatusPending Status = "pending"
	StatusRunning Status = "running"
	StatusDone    Status = "done"
	StatusFailed  Status = "failed"
)

// BaselineFactor marks the trial of the unmodified baseline network.
const BaselineFactor = "baseline"

// Well-known metric keys. Accuracies are fractions in [0,1].
const (
	CleanAcc = "clean_acc"
	PGDAcc   = "pgd_acc"
	AAAcc    = "aa_acc"
	// EvalExamples is how many test examples the final evaluation used.
	EvalExamples = "eval_examples"
	// The AutoAttack check (a sweep's eval.check): its PGD and its
	// stronger attacks on one fixed subset, and the subset's size.
	CheckPGDAcc   = "check_pgd_acc"
	CheckAAAcc    = "check_aa_acc"
	CheckExamples = "check_examples"
)

// Trial is one (variant, seed) pair of a sweep and, once finished, its outcome.
type Trial struct {
	Sweep   string `json:"sweep"`   // sweep name
	Variant string `json:"variant"` // unique within a sweep, e.g. "kernel=5"
	Factor  string `json:"factor"`  // varied component, or BaselineFactor
	Level   string `json:"level"`   // the factor's value for this variant
	Seed    int64  `json:"seed"`

	Params          int64   `json:"params"`
	MACs            int64   `json:"macs"`
	WidthDepthRatio float64 `json:"width_depth_ratio"`

	Status  Status             `json:"status"`
	Metrics map[string]float64 `json:"metrics,omitempty"`
	Error   string             `json:"error,omitempty"`

	// Worker holds (or last held) the trial's lease; the store only accepts
	// Finish/Fail from it. Attempts counts how often the trial was claimed.
	Worker   string `json:"worker,omitempty"`
	Attempts int    `json:"attempts,omitempty"`

	Spec   json.RawMessage   `json:"spec,omitempty"`   // arch.Spec as JSON
	Config json.RawMessage   `json:"config,omitempty"` // fully resolved trial config
	Env    map[string]string `json:"env,omitempty"`    // host, libtorch and robarch versions

	StartedAt  time.Time `json:"started_at,omitempty"`
	FinishedAt time.Time `json:"finished_at,omitempty"`
	Seconds    float64   `json:"seconds,omitempty"` // wall time of the trial
}

// Key identifies a trial within a store.
func (t Trial) Key() string { return t.Sweep + "/" + t.Variant + "/" + itoa(t.Seed) }

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
