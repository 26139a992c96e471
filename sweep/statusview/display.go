package statusview

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/sweep/sweeprun"
	"github.com/robarch/robarch/train"
)

// Display keeps two lines at the bottom of a terminal: the sweep's trials
// (done/total, failed, ETA from finished trials) and the current trial's
// epoch. Log lines written through it scroll above the two.
type Display struct {
	mu             sync.Mutex
	w              io.Writer
	overall, trial string
	drawn          bool
	lastStep       time.Time
}

// NewDisplay draws on w, a terminal.
func NewDisplay(w io.Writer) *Display { return &Display{w: w} }

// Write is for the logger: clear the bars, write the line, draw them again.
func (d *Display) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.clear()
	n, err := d.w.Write(p)
	d.draw()
	return n, err
}

// clear erases the two bar lines, leaving the cursor where they began.
func (d *Display) clear() {
	if d.drawn {
		fmt.Fprint(d.w, "\r\x1b[2K\x1b[1A\r\x1b[2K")
		d.drawn = false
	}
}

func (d *Display) draw() {
	if d.overall == "" {
		return
	}
	fmt.Fprintf(d.w, "%s\n%s", d.overall, d.trial)
	d.drawn = true
}

// Sweep is a sweeprun.Runner's OnProgress.
func (d *Display) Sweep(p sweeprun.Progress) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.clear()
	d.overall = overallLine(p)
	if p.Current != nil {
		d.trial = "trial " + p.Current.Key() + ": starting"
	}
	d.draw()
}

// Step is a trial executor's OnStep: the current trial's bar, redrawn at
// most every 200ms but always at an epoch's last step.
func (d *Display) Step(t results.Trial, p train.Progress) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p.Step != p.Steps && time.Since(d.lastStep) < 200*time.Millisecond {
		return
	}
	d.lastStep = time.Now()
	d.clear()
	d.trial = fmt.Sprintf("trial %s: epoch %d/%d %s %d/%d loss %.3f %.0f img/s ETA %s",
		t.Key(), p.Epoch, p.Epochs, bar(p.Step, p.Steps, 20), p.Step, p.Steps, p.Loss, p.ImagesPerSec, p.ETA.Round(time.Second))
	d.draw()
}

// Close leaves the last bars on screen, followed by a newline.
func (d *Display) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.drawn {
		fmt.Fprintln(d.w)
		d.drawn = false
	}
	d.overall = ""
}

func overallLine(p sweeprun.Progress) string {
	c := p.Counts
	finished := c.Done + c.Failed
	eta := "ETA after the first trial"
	if p.ETA > 0 {
		eta = "ETA " + p.ETA.Round(time.Second).String()
	}
	return fmt.Sprintf("sweep %s %d/%d trials, %d failed, %d running, elapsed %s, %s",
		bar(finished, c.Total(), 30), finished, c.Total(), c.Failed, c.Running, p.Elapsed.Round(time.Second), eta)
}

// bar draws n of total as a fixed-width bar.
func bar(n, total, width int) string {
	filled := 0
	if total > 0 {
		filled = min(width, max(0, n*width/total))
	}
	return "[" + strings.Repeat("=", filled) + strings.Repeat(" ", width-filled) + "]"
}
