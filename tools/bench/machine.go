package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// machine describes where a run happened and with what software. Every result is printed
// with it.
type machine struct {
	Cores    int
	CPUModel string
	MemTotal int64  // bytes
	Kernel   string // kernel release
	// DataFS describes the file system the PostgreSQL data directory is on, without paths:
	// "ext4 on vda (the kernel reports it rotational)".
	DataFS string
	// Versions of what was measured, as "name version" lines.
	Go, Postgres, Pgbench, Tock, GRPC string
	// Settings are the PostgreSQL settings of note.
	Settings []string
	// Start is when the run started, LoadAtStart the load average then.
	Start       time.Time
	LoadAtStart string
}

// probeMachine reads what it can about the machine; unknown parts stay empty.
func probeMachine() machine {
	m := machine{Cores: runtime.NumCPU(), Go: runtime.Version(), Start: time.Now(), LoadAtStart: loadAverage()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				f := strings.Fields(v)
				if len(f) > 0 {
					kb, _ := strconv.ParseInt(f[0], 10, 64)
					m.MemTotal = kb * 1024
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "google.golang.org/grpc" {
				m.GRPC = dep.Version
			}
		}
	}
	return m
}

// fileSystemOf describes the file system holding path, from /proc/mounts: its type and the
// name of its device, with whether the kernel calls the disk rotational. No path appears in
// the result.
func fileSystemOf(path string) string {
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	abs, err := filepath.Abs(path)
	if err != nil {
		return "unknown"
	}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil {
		abs = resolved
	}
	var bestMount, bestDev, bestType string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		dev, mnt, typ := fields[0], fields[1], fields[2]
		if (abs == mnt || strings.HasPrefix(abs, strings.TrimSuffix(mnt, "/")+"/")) && len(mnt) >= len(bestMount) {
			bestMount, bestDev, bestType = mnt, dev, typ
		}
	}
	if bestType == "" {
		return "unknown"
	}
	dev := filepath.Base(bestDev)
	desc := bestType + " on " + dev
	// /sys/block/<disk>/queue/rotational; a partition's disk is its name without the digits.
	disk := strings.TrimRight(dev, "0123456789")
	if strings.HasPrefix(disk, "nvme") {
		disk = strings.TrimSuffix(strings.TrimRight(dev, "0123456789"), "p")
	}
	if b, err := os.ReadFile(filepath.Join("/sys/block", disk, "queue", "rotational")); err == nil {
		if strings.TrimSpace(string(b)) == "1" {
			desc += " (the kernel reports it rotational)"
		} else {
			desc += " (the kernel reports it non-rotational)"
		}
	}
	return desc
}

// loadAverage returns the 1, 5 and 15-minute load averages, or "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// gitDescribe returns `git describe --always --dirty --tags` of the repository at root.
func gitDescribe(ctx context.Context, root string) string {
	cmd := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty", "--tags")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// header is the machine and versions, as markdown lines.
func (m machine) header() []string {
	return []string{
		fmt.Sprintf("- Machine: %d cores (%s), %.1f GiB memory, Linux %s", m.Cores, orUnknown(m.CPUModel),
			float64(m.MemTotal)/(1<<30), orUnknown(m.Kernel)),
		fmt.Sprintf("- PostgreSQL data directory: %s", orUnknown(m.DataFS)),
		fmt.Sprintf("- PostgreSQL %s (%s), pgbench %s", orUnknown(m.Postgres), strings.Join(m.Settings, ", "), orUnknown(m.Pgbench)),
		fmt.Sprintf("- Go %s, gRPC-Go %s, Tock %s", m.Go, orUnknown(m.GRPC), orUnknown(m.Tock)),
		fmt.Sprintf("- Run started %s, load average at start %s", m.Start.UTC().Format(time.RFC3339), m.LoadAtStart),
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
