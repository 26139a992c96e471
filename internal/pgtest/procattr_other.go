//go:build !linux

package pgtest

import "syscall"

// serverProcAttr runs the server as cred (nil: as ourselves).
func serverProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred}
}
