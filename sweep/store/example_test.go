package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/sweep/store"
)

// A worker's loop: claim, heartbeat while training (every third of the
// lease), then finish. Re-running it after a crash skips finished trials.
func Example() {
	dir, _ := os.MkdirTemp("", "store-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	s, err := store.Open(ctx, filepath.Join(dir, "results.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	plan := []results.Trial{
		{Sweep: "demo", Variant: "kernel=3", Factor: "kernel", Level: "3", Seed: 1},
		{Sweep: "demo", Variant: "kernel=5", Factor: "kernel", Level: "5", Seed: 1},
	}
	added, _ := s.AddTrials(ctx, plan)
	fmt.Println("added", added)

	const lease = 30 * time.Second
	worker := store.NewWorkerID()
	for {
		t, err := s.Claim(ctx, "demo", worker, lease)
		if errors.Is(err, store.ErrNoTrial) {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		// ... train, calling s.Heartbeat(ctx, t.Key(), worker, lease) every lease/3 ...
		t.Metrics = map[string]float64{results.CleanAcc: 0.9}
		t.Seconds = 42 // left 0, the store takes finish time minus t.StartedAt
		if err := s.Finish(ctx, *t); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("finished", t.Variant)
	}

	added, _ = s.AddTrials(ctx, plan) // the same command again
	counts, _ := s.Counts(ctx, "demo")
	fmt.Printf("re-added %d, done %d of %d\n", added, counts.Done, counts.Total())
	_ = store.Export(os.Stdout, store.FormatCSV, mustTrials(s.Trials(ctx, "demo")))
	// Output:
	// added 2
	// finished kernel=3
	// finished kernel=5
	// re-added 0, done 2 of 2
	// sweep,variant,factor,level,seed,params,macs,width_depth_ratio,status,clean_acc,pgd_acc,aa_acc,seconds
	// demo,kernel=3,kernel,3,1,0,0,0,done,0.9,,,42
	// demo,kernel=5,kernel,5,1,0,0,0,done,0.9,,,42
}

func mustTrials(ts []results.Trial, err error) []results.Trial {
	if err != nil {
		panic(err)
	}
	return ts
}
