//go:build !linux

package main

import "syscall"

// sysProcAttr sets nothing outside Linux: the benchmark program runs its children as its own
// user and stops them itself.
func sysProcAttr(*account) *syscall.SysProcAttr { return nil }
