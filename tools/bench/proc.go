package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// proc is a child process whose output goes to a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // set before done is closed
}

// account is a user a child runs as; nil means this process's own.
type account struct{ uid, gid uint32 }

// startProc starts a binary with its output in dir/name.log and env as its environment (nil:
// this process's). The child dies with this process (on Linux), so an interrupted run leaves
// nothing behind.
func startProc(dir, name string, acct *account, env []string, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	if acct != nil {
		_ = f.Chown(int(acct.uid), int(acct.gid))
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = env
	cmd.SysProcAttr = sysProcAttr(acct)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// pid returns the child's process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the child has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig and waits up to timeout for the child to exit, then kills it.
func (p *proc) stop(sig os.Signal, timeout time.Duration) error {
	if p.exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(sig)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
		p.kill()
		return fmt.Errorf("%s did not stop within %s of %v; killed", p.name, timeout, sig)
	}
}

// kill kills the child and waits for it.
func (p *proc) kill() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// tail returns the last n lines of the child's log.
func (p *proc) tail(n int) string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// failure describes why the child is not usable, with the end of its log.
func (p *proc) failure(err error) error {
	return fmt.Errorf("%s: %w\nlast lines of %s:\n%s", p.name, err, p.log, p.tail(20))
}

// waitUntil polls cond every interval until it returns true, the child exits, ctx ends or
// timeout passes.
func (p *proc) waitUntil(ctx context.Context, timeout time.Duration, what string, cond func(context.Context) bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond(ctx) {
			return nil
		}
		select {
		case <-p.done:
			return p.failure(fmt.Errorf("exited before %s: %v", what, p.err))
		case <-ctx.Done():
			return p.failure(fmt.Errorf("not %s after %s", what, timeout))
		case <-tick.C:
		}
	}
}

// procUsage is what /proc says about a process: CPU time used and memory.
type procUsage struct {
	CPU      time.Duration // user + system
	RSS, HWM int64         // resident set now and at its peak, bytes
}

// usageOf reads a process's CPU time and memory from /proc. It returns zeros where /proc
// cannot be read.
func usageOf(pid int) procUsage {
	var u procUsage
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		// The command name is in parentheses and may hold spaces; fields follow the last ')'.
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			f := strings.Fields(s[i+1:])
			// f[0] is field 3 (state); utime and stime are fields 14 and 15.
			if len(f) > 13 {
				ut, _ := strconv.ParseInt(f[11], 10, 64)
				st, _ := strconv.ParseInt(f[12], 10, 64)
				u.CPU = time.Duration(ut+st) * time.Second / clockTicks
			}
		}
	}
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			var dst *int64
			switch k {
			case "VmRSS":
				dst = &u.RSS
			case "VmHWM":
				dst = &u.HWM
			default:
				continue
			}
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				*dst = kb * 1024
			}
		}
	}
	return u
}

// treeCPU returns the CPU time used by a process and its direct children (a PostgreSQL
// postmaster and its backends) that are alive now.
func treeCPU(root int) time.Duration {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var total time.Duration
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		if pid != root && ppid != root {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(ut+st) * time.Second / clockTicks
	}
	return total
}

// clockTicks is the kernel's USER_HZ, which is 100 on every Linux architecture Go supports.
const clockTicks = 100

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr() (string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := lis.Addr().String()
	return addr, lis.Close()
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
