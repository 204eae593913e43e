package pgtest

import "syscall"

// sysProcAttr runs a child as acct (when set) and kills it when this process dies, so that a
// test binary that is killed leaves no server behind.
func sysProcAttr(acct *account) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if acct != nil {
		attr.Credential = &syscall.Credential{Uid: acct.uid, Gid: acct.gid, Groups: []uint32{}}
	}
	return attr
}

// memoryDir returns /dev/shm when it is a tmpfs with room for a test cluster, and "" (the
// default temporary directory) otherwise. Creating a database copies a few hundred files,
// which takes a quarter of a second on some virtual disks and a few milliseconds in memory.
// Containers often get a small /dev/shm, which PostgreSQL also needs for its shared memory.
func memoryDir() string {
	const (
		tmpfsMagic = 0x01021994
		room       = 1 << 30
	)
	var st syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &st); err != nil || st.Type != tmpfsMagic {
		return ""
	}
	if st.Bavail*uint64(st.Bsize) < room {
		return ""
	}
	return "/dev/shm"
}
