package pgtest

import "syscall"

// serverProcAttr runs the server as cred (nil: as ourselves) and has the
// kernel send it SIGQUIT (immediate shutdown) if the test process dies
// without calling Stop, so no server outlives a crashed test.
func serverProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
}
