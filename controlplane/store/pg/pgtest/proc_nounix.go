//go:build !unix

package pgtest

import "syscall"

// sysProcAttr has nothing to set where there are no unix accounts.
func sysProcAttr(*account) *syscall.SysProcAttr { return nil }

// memoryDir is "": the default temporary directory.
func memoryDir() string { return "" }
