package guidelines

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/results"
)

// findChromium returns Debian's chromium (or another Chrome) on PATH.
func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// loadedPage is what headless Chromium saw of a page.
type loadedPage struct {
	title, heading, body string
	images, decoded      int
	// overflow is how many CSS pixels the widest table (or the page)
	// sticks out of its container in a 1300×900 window: > 0 means a
	// reader must scroll sideways or loses columns.
	overflow int
	problems []string // exceptions, console errors/warnings, failed requests
}

// loadInChromium opens file in headless Chromium and reports what it saw;
// it skips the test when no Chromium is installed.
func loadInChromium(t *testing.T, file string) loadedPage {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	bin := findChromium()
	if bin == "" {
		t.Skip("chromium not found on PATH; install Debian's chromium (apt-get install chromium) to run the browser test")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox, // tests run as root in containers
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()

	var mu sync.Mutex
	var lp loadedPage
	listen := func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg := e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
			lp.problems = append(lp.problems, "exception: "+msg)
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning {
				var args []string
				for _, arg := range e.Args {
					args = append(args, string(arg.Value))
				}
				lp.problems = append(lp.problems, fmt.Sprintf("console %s: %s", e.Type, strings.Join(args, " ")))
			}
		case *network.EventLoadingFailed:
			lp.problems = append(lp.problems, "request failed: "+e.ErrorText)
		}
	}
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(listen))
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()

	_, err := chromedp.Call(ctx, network.Enable, network.EnableParams{})
	require.NoError(t, err, "start %s", bin)
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(1300, 900), chromedp.Navigate("file://"+file), chromedp.WaitReady("body")))
	title, err := chromedp.Run(ctx, chromedp.Title())
	require.NoError(t, err)
	heading, err := chromedp.Run(ctx, chromedp.TextContent("h1"))
	require.NoError(t, err)
	body, err := chromedp.Run(ctx, chromedp.Text("body"))
	require.NoError(t, err)
	images, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.images.length`))
	require.NoError(t, err)
	// naturalWidth is 0 for an image the browser could not decode.
	decoded, err := chromedp.Run(ctx, chromedp.Evaluate[int](`Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length`))
	require.NoError(t, err)
	// Let late events (a failing image, a deferred error) arrive.
	overflow, err := chromedp.Run(ctx, chromedp.Evaluate[int](`Math.max(document.documentElement.scrollWidth - window.innerWidth,
		...Array.from(document.querySelectorAll('table')).map(t => Math.ceil(t.getBoundingClientRect().right - t.parentElement.getBoundingClientRect().right)))`))
	require.NoError(t, err)
	// ROBARCH_SCREENSHOT=page.png keeps a picture of the page for a
	// person to look at.
	if shot := os.Getenv("ROBARCH_SCREENSHOT"); shot != "" {
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(shot, buf, 0o644))
	}
	time.Sleep(200 * time.Millisecond)

	mu.Lock()
	defer mu.Unlock()
	lp.title, lp.heading, lp.body, lp.images, lp.decoded, lp.overflow = title, heading, body, images, decoded, overflow
	return lp
}

// The report page loads in headless Chromium without JavaScript errors
// or failed requests, shows its title and sections, and every embedded
// plot decodes in the browser.
func TestReportLoadsInChromium(t *testing.T) {
	trials := synthSweep(t, 3, true, silu, kernel5, se25)
	trials = withStatus(trials, "se_ratio=0.25", 2, results.StatusPending)
	dir, a := writeSynthReport(t, trials)
	lp := loadInChromium(t, filepath.Join(dir, HTMLFile))

	want := "robarch guidelines report: " + a.Sweep
	assert.Equal(t, want, lp.title)
	assert.Equal(t, want, lp.heading)
	for _, s := range []string{"Guidelines, ranked by effect on AutoAttack accuracy", "activation=silu", "The RobArch paper's 18 guidelines",
		"Recommended architecture", "1 trial(s) missing"} {
		assert.True(t, strings.Contains(lp.body, s), "the page shows %q", s)
	}
	assert.GreaterOrEqual(t, lp.images, 8, "every plot is on the page")
	assert.Equal(t, lp.images, lp.decoded, "every embedded plot decodes")
	assert.Empty(t, lp.problems, "the page loads without errors")
	assert.LessOrEqual(t, lp.overflow, 0, "every table fits a 1300-px-wide window")
}

// The check above can fail: a page with a script error, a broken image
// and a missing resource is caught.
func TestChromiumCheckCatchesBrokenPage(t *testing.T) {
	file := filepath.Join(t.TempDir(), "broken.html")
	page := `<!DOCTYPE html><html><head><title>broken</title></head><body><h1>broken</h1>
<img src="data:image/png;base64,bm90IGEgcG5n" alt="bad"><img src="missing.png" alt="missing">
<table><tr><td style="white-space:nowrap">` + strings.Repeat("wide ", 400) + `</td></tr></table>
<script>console.error("boom"); undefinedFunction();</script></body></html>`
	require.NoError(t, os.WriteFile(file, []byte(page), 0o644))
	lp := loadInChromium(t, file)
	assert.Equal(t, "broken", lp.title)
	assert.Equal(t, 2, lp.images)
	assert.Equal(t, 0, lp.decoded)
	joined := strings.Join(lp.problems, "\n")
	assert.Contains(t, joined, "console error: \"boom\"")
	assert.Contains(t, joined, "undefinedFunction")
	assert.Contains(t, joined, "request failed")
	assert.Greater(t, lp.overflow, 0, "a table wider than the window is caught")
}
