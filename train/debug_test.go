package train

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/data"
	"github.com/robarch/robarch/internal/torchrt"
)

func rssMB() float64 {
	b, _ := os.ReadFile("/proc/self/statm")
	f := strings.Fields(string(b))
	p, _ := strconv.Atoi(f[1])
	return float64(p*4096) / 1e6
}

func TestDebugMicroRSS(t *testing.T) {
	if os.Getenv("DEBUG_RSS") == "" { t.Skip() }
	lockThread(t)
	torchrt.SetThreads(2)
	spec, _ := arch.Get("micro")
	torchrt.Seed(1)
	vs := nn.NewVarStore(gotch.CPU)
	net, err := model.Build(vs, spec)
	if err != nil { t.Fatal(err) }
	src, _ := data.SyntheticConfig{Classes: 10, C: 1, H: 28, W: 28, Seed: 1}.Generate(128*20, data.Train)
	r := Recipe{Method: FGSMRS, Eps: 0.1, Epochs: 1, BatchSize: 128, Seed: 1}.WithDefaults()
	tr, err := newTrainer(Model{Net: net, Vars: vs}, Data{Train: src, Test: src}, r, Options{OutDir: t.TempDir(), Logger: quietLogger()})
	if err != nil { t.Fatal(err) }
	var batches []*data.Batch
	for b, _ := range tr.loader.Batches(context.Background(), 0) { batches = append(batches, b) }
	for round := 0; round < 6; round++ {
		for _, b := range batches {
			if _, _, err := tr.step(b, 0.01); err != nil { t.Fatal(err) }
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		t.Logf("after %d steps: rss %.0f MB, go heap inuse %.0f MB sys %.0f MB, gc %d, live tensors %d", (round+1)*len(batches), rssMB(), float64(ms.HeapInuse)/1e6, float64(ms.Sys)/1e6, ms.NumGC, len(ts.ExistingTensors))
	}
}
