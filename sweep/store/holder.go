package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
)

// Holder is the process behind a worker name: the host it runs on, its
// pid and its start time (clock ticks since boot, from /proc/PID/stat),
// which tells a live process from a later one that reuses its pid.
type Holder struct {
	Host  string
	PID   int
	Start uint64
}

// NewWorkerID returns a worker name unique across machines and processes
// that records its holder: host-pid-start-random. A worker that finds a
// lease held by a dead process on its own host can take it over at once
// (Holder.Dead) instead of waiting for the lease to expire.
func NewWorkerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "host"
	}
	start, _ := processStart(os.Getpid())
	return fmt.Sprintf("%s-%d-%d-%04x", host, os.Getpid(), start, rand.Uint32()&0xffff)
}

// ParseHolder reads the holder from a worker name made by NewWorkerID; ok
// is false for other names (older robarch versions, names given by hand).
func ParseHolder(worker string) (h Holder, ok bool) {
	parts := strings.Split(worker, "-")
	if len(parts) < 4 {
		return h, false
	}
	n := len(parts)
	pid, err1 := strconv.Atoi(parts[n-3])
	start, err2 := strconv.ParseUint(parts[n-2], 10, 64)
	_, err3 := strconv.ParseUint(parts[n-1], 16, 32)
	host := strings.Join(parts[:n-3], "-")
	if err1 != nil || err2 != nil || err3 != nil || pid <= 0 || host == "" || start == 0 {
		return h, false
	}
	return Holder{Host: host, PID: pid, Start: start}, true
}

// Dead reports whether h is known to be gone: it ran on this host and no
// process with its pid and start time exists. A holder on another host,
// or one this host cannot check, is never called dead.
func (h Holder) Dead() bool {
	host, err := os.Hostname()
	if err != nil || host != h.Host {
		return false
	}
	start, err := processStart(h.PID)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return true // no such pid
	case err != nil:
		return false
	}
	return start != h.Start // the pid was reused by a later process
}

// processStart is field 22 of /proc/PID/stat, the process's start time in
// clock ticks since boot.
func processStart(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && procMounted() {
			return 0, os.ErrNotExist
		}
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("process %d: unreadable stat", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 20 {
		return 0, fmt.Errorf("process %d: short stat", pid)
	}
	// fields[0] is field 3 (state); field 22 is fields[19]. A zombie has
	// exited: its lease is as dead as its process.
	if fields[0] == "Z" || fields[0] == "X" {
		return 0, os.ErrNotExist
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// procMounted tells "no such process" from "no /proc on this system".
func procMounted() bool {
	_, err := os.Stat("/proc/self/stat")
	return err == nil
}
