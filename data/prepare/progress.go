package prepare

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/robarch/robarch/data"
)

// SourceDir reads the folder of a dataset prepare can copy: imagefolder:DIR.
func SourceDir(dataset string) (string, error) {
	dir, ok := strings.CutPrefix(dataset, data.NameImageFolder+":")
	if !ok || dir == "" {
		return "", fmt.Errorf("dataset %q: allowed form is imagefolder:DIR", dataset)
	}
	return dir, nil
}

// logEvery is how often Reporter logs without a bar.
const logEvery = 10 * time.Second

// Reporter returns a Config.Progress that draws a bar on w or, without
// bar (stderr not a terminal: CI, nohup), logs a line every ten seconds
// and at the end; finish ends the bar's line.
func Reporter(w io.Writer, bar bool) (report func(Stats), finish func()) {
	var (
		mu   sync.Mutex
		pb   *progressbar.ProgressBar
		last time.Time
	)
	report = func(st Stats) {
		mu.Lock()
		defer mu.Unlock()
		if bar {
			if pb == nil {
				pb = progressbar.NewOptions(st.Total, progressbar.OptionSetWriter(w), progressbar.OptionShowCount(),
					progressbar.OptionSetWidth(30), progressbar.OptionShowIts(), progressbar.OptionThrottle(200*time.Millisecond),
					progressbar.OptionSetDescription("prepare"))
			}
			_ = pb.Set(st.Done())
			return
		}
		if time.Since(last) >= logEvery || st.Done() == st.Total {
			last = time.Now()
			slog.Info("prepare", "done", st.Done(), "total", st.Total, "resized", st.Resized, "copied", st.Copied, "skipped", st.Skipped)
		}
	}
	finish = func() {
		mu.Lock()
		defer mu.Unlock()
		if pb != nil {
			_ = pb.Finish()
			fmt.Fprintln(w)
		}
	}
	return report, finish
}
