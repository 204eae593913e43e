//go:build unix && !linux

package pgtest

import "syscall"

// sysProcAttr runs a child as acct (when set). Outside Linux a child cannot be told to die
// with its parent; Main stops the server when the tests end.
func sysProcAttr(acct *account) *syscall.SysProcAttr {
	if acct == nil {
		return nil
	}
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: acct.uid, Gid: acct.gid, Groups: []uint32{}}}
}

// memoryDir is "": the default temporary directory.
func memoryDir() string { return "" }
