//go:build !linux

package testenv

import "syscall"

// sysProcAttr sets nothing: outside Linux a child cannot be told to die with its parent, so a
// test binary that is killed leaves its children running; t.Cleanup stops them otherwise.
func sysProcAttr() *syscall.SysProcAttr { return nil }
