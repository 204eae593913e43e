package testenv

import "syscall"

// sysProcAttr kills a child when this process dies, so that a test binary that is killed
// leaves no Consul or Jaeger behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
