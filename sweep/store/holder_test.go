package store

import (
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHolder(t *testing.T) {
	host, err := os.Hostname()
	require.NoError(t, err)
	me := NewWorkerID()
	h, ok := ParseHolder(me)
	require.True(t, ok, me)
	assert.Equal(t, host, h.Host)
	assert.Equal(t, os.Getpid(), h.PID)
	assert.False(t, h.Dead(), "this process is alive")

	gone := exec.Command("true")
	require.NoError(t, gone.Run())
	for _, tc := range []struct {
		name   string
		worker string
		ok     bool
		dead   bool
	}{
		{"exited process", host + "-" + strconv.Itoa(gone.Process.Pid) + "-" + strconv.FormatUint(h.Start, 10) + "-00ff", true, true},
		{"pid reused by a later process", host + "-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(h.Start+1, 10) + "-00ff", true, true},
		{"other host", "elsewhere-a-b-" + strconv.Itoa(gone.Process.Pid) + "-5-00ff", true, false},
		{"hyphenated host", "my-box-12-7-abcd", true, host != "my-box"},
		{"old name host-pid-random", host + "-123-abcd", false, false},
		{"name given by hand", "laptop", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, ok := ParseHolder(tc.worker)
			assert.Equal(t, tc.ok, ok)
			if ok && tc.name != "hyphenated host" {
				assert.Equal(t, tc.dead, h.Dead())
			}
		})
	}
	h, _ = ParseHolder("my-box-12-7-abcd")
	assert.Equal(t, Holder{Host: "my-box", PID: 12, Start: 7}, h)
}
