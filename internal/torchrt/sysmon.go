package torchrt

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// SysmonEnvOptOut is the environment variable that, set to "default",
// leaves the Go runtime's monitor thread at normal priority.
const SysmonEnvOptOut = "ROBARCH_SYSMON"

// Why sysmon is moved out of the way: the Go runtime's monitor thread
// (sysmon) takes the P of a goroutine that stays in one cgo call for more
// than 10 ms and, with every P idle, sleeps until the call returns; that
// wakes it to poll every 20 µs for about 50 ticks before it backs off
// towards 10 ms. A backward pass is such a call, so during training and
// attacks sysmon wakes 1,000-2,300 times a second. On a machine whose
// cores all run libtorch's OpenMP threads each wake-up preempts one of
// them, and the others wait for it at the next barrier: on micro PGD-10
// (2 cores) the OpenMP worker was preempted ~1,300 times a second in
// robarch and ~40 times in PyTorch's process. At SCHED_IDLE a wake-up no
// longer preempts a running thread; sysmon runs on spare CPU instead,
// which delays only its housekeeping (retaking Ps, preempting goroutines
// that run > 10 ms without yielding), none of which torch work needs.

// SysmonThread finds the thread id of the Go runtime's monitor thread. It
// is the only thread that sleeps in nanosleep between ticks (every other
// idle runtime thread waits on a futex), so it is the thread seen in
// nanosleep far more often than any other in a few hundred samples of
// /proc/self/task/*/syscall taken over up to 50 ms. The caller must keep
// running meanwhile (sampling is a busy loop), or sysmon would fall into
// its deep sleep on a futex.
func SysmonThread() (int, error) {
	const rounds, window = 200, 50 * time.Millisecond
	inSleep := map[int]int{}
	done := 0
	for deadline := time.Now().Add(window); done < rounds && time.Now().Before(deadline); done++ {
		tids, err := threadIDs()
		if err != nil {
			return 0, err
		}
		for _, tid := range tids {
			if sleepingInNanosleep(tid) {
				inSleep[tid]++
			}
		}
	}
	best, second := 0, 0
	for tid, n := range inSleep {
		if n > inSleep[best] {
			best = tid
		}
	}
	for tid, n := range inSleep {
		if tid != best && n > second {
			second = n
		}
	}
	// Clearly ahead of any rival: other runtime threads nanosleep only for
	// a few µs (spin back-off), so they are rarely caught in it. sysmon
	// itself is often seen "running" when the CPUs are busy (runnable
	// counts as running), so a tenth of the samples is evidence enough.
	if best == 0 || inSleep[best] < max(10, done/10) || second*4 > inSleep[best] {
		return 0, fmt.Errorf("sysmon thread not found: no thread stood out in nanosleep in %d samples (best %d, runner-up %d)", done, inSleep[best], second)
	}
	return best, nil
}

func threadIDs() ([]int, error) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, fmt.Errorf("list threads: %w", err)
	}
	tids := make([]int, 0, len(ents))
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

// sleepingInNanosleep says whether thread tid is blocked in nanosleep or
// clock_nanosleep; the first field of /proc/.../syscall is the number of
// the system call a blocked thread is in ("running" otherwise).
func sleepingInNanosleep(tid int) bool {
	b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/syscall")
	if err != nil {
		return false
	}
	nr, _, _ := strings.Cut(string(b), " ")
	n, err := strconv.Atoi(strings.TrimSpace(nr))
	return err == nil && (n == unix.SYS_NANOSLEEP || n == unix.SYS_CLOCK_NANOSLEEP)
}

// QuietSysmon moves the runtime's monitor thread to SCHED_IDLE (see the
// comment above SysmonThread) and describes what it did. It changes
// nothing when ROBARCH_SYSMON=default. Lowering a thread's priority needs
// no privilege.
func QuietSysmon() string {
	if os.Getenv(SysmonEnvOptOut) == "default" {
		return "normal priority (" + SysmonEnvOptOut + "=default)"
	}
	tid, err := SysmonThread()
	if err == nil {
		err = unix.SchedSetAttr(tid, &unix.SchedAttr{Policy: unix.SCHED_IDLE}, 0)
	}
	if err != nil {
		// Not "normal priority": an earlier call may have quieted it, and
		// at SCHED_IDLE on a busy machine it is seldom caught sleeping.
		return "not changed (" + err.Error() + ")"
	}
	return "SCHED_IDLE"
}
