package torchrt

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// voluntarySwitches reads every thread's count of voluntary context switches.
func voluntarySwitches(t *testing.T) map[int]int {
	t.Helper()
	tids, err := threadIDs()
	require.NoError(t, err)
	out := map[int]int{}
	for _, tid := range tids {
		b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/status")
		if err != nil {
			continue // the thread exited
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				out[tid], _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
	}
	return out
}

// TestSysmonThreadIsTheTicker checks the nanosleep rule against an
// independent sign: while a goroutine keeps running, sysmon is the thread
// that blocks most often, once per tick; the runtime's other threads wait
// on futexes until there is work.
func TestSysmonThreadIsTheTicker(t *testing.T) {
	tid, err := SysmonThread()
	require.NoError(t, err)
	assert.NotEqual(t, os.Getpid(), tid, "sysmon never runs on the main thread")

	before := voluntarySwitches(t)
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
	}
	after := voluntarySwitches(t)
	most, mostTid := 0, 0
	for id, n := range after {
		if d := n - before[id]; d > most {
			most, mostTid = d, id
		}
	}
	assert.Equal(t, tid, mostTid, "switches in 300 ms: %d by thread %d, %d by the one found", most, mostTid, after[tid]-before[tid])
	assert.GreaterOrEqual(t, after[tid]-before[tid], 20, "sysmon ticks at least every 10 ms while a goroutine runs")
}

func TestQuietSysmon(t *testing.T) {
	tid, err := SysmonThread()
	require.NoError(t, err)
	before, err := unix.SchedGetAttr(tid, 0)
	require.NoError(t, err)
	// Best effort: going back from SCHED_IDLE needs RLIMIT_NICE or
	// CAP_SYS_NICE, which -count=N reruns then lack.
	t.Cleanup(func() { _ = unix.SchedSetAttr(tid, &unix.SchedAttr{Policy: before.Policy}, 0) })
	tests := []struct {
		name, optOut, want string
		policy             uint32
	}{
		{"opted out", "default", "normal priority (ROBARCH_SYSMON=default)", before.Policy},
		{"default", "", "SCHED_IDLE", unix.SCHED_IDLE},
	}
	for _, tt := range tests { // in order: the opt-out must find sysmon untouched
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(SysmonEnvOptOut, tt.optOut)
			assert.Equal(t, tt.want, QuietSysmon())
			a, err := unix.SchedGetAttr(tid, 0)
			require.NoError(t, err)
			assert.Equal(t, tt.policy, a.Policy)
		})
	}
}
