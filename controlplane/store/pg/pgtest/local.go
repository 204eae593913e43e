package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// localServer is a PostgreSQL this process started.
type localServer struct {
	// dir holds the data directory, the socket and the log.
	dir string
	// url is the admin URL: the postgres database as the postgres role.
	url string
	// cmd is the postmaster; exited is closed when it has exited.
	cmd    *exec.Cmd
	exited chan struct{}
}

// startLocal initialises a cluster in a temporary directory and starts it.
func startLocal() (*localServer, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	acct, err := serverAccount()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(memoryDir(), "tock-pgtest-")
	if err != nil {
		return nil, err
	}
	if acct != nil {
		if err := os.Chown(dir, int(acct.uid), int(acct.gid)); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := command(acct, dir, filepath.Join(bin, "initdb"), "-D", data, "--auth=trust",
		"--username=postgres", "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions")
	if out, err := initdb.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w: %s", err, bytes.TrimSpace(out))
	}

	// A port found free can be taken before the server binds it; try a few.
	var errs []error
	for range 3 {
		s, err := startPostmaster(acct, bin, dir, data)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
	}
	_ = os.RemoveAll(dir)
	return nil, errors.Join(errs...)
}

// startPostmaster starts postgres on a free loopback port and waits until it accepts
// connections.
func startPostmaster(acct *account, bin, dir, data string) (*localServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "postgres-"+strconv.Itoa(port)+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := command(acct, dir, filepath.Join(bin, "postgres"), "-D", data,
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+dir,
		"-c", "max_connections=300",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_pred_locks_per_transaction=256",
		"-c", "logging_collector=off",
		"-c", "log_min_messages=warning",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	s := &localServer{
		dir:    dir,
		url:    fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port),
		cmd:    cmd,
		exited: make(chan struct{}),
	}
	go func() {
		_ = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(30 * time.Second); err != nil {
		_ = s.kill()
		log, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("postgres on port %d: %w\n%s", port, err, tail(log, 20))
	}
	return s, nil
}

// waitReady polls the server until it accepts a connection, exits, or timeout passes.
func (s *localServer) waitReady(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, time.Second)
		conn, err := pgx.Connect(attempt, s.url)
		cancelAttempt()
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-s.exited:
			return errors.New("exited during start")
		case <-ctx.Done():
			return fmt.Errorf("not ready after %s: %w", timeout, err)
		case <-tick.C:
		}
	}
}

// stop shuts the server down (fast mode) and removes its directory.
func (s *localServer) stop() error {
	err := s.cmd.Process.Signal(os.Interrupt)
	if err == nil {
		timer := time.NewTimer(30 * time.Second)
		defer timer.Stop()
		select {
		case <-s.exited:
		case <-timer.C:
			err = errors.Join(errors.New("postgres did not stop in 30s"), s.kill())
		}
	} else {
		err = s.kill()
	}
	return errors.Join(err, os.RemoveAll(s.dir))
}

// kill kills the server and waits for it to exit.
func (s *localServer) kill() error {
	err := s.cmd.Process.Kill()
	<-s.exited
	if errors.Is(err, os.ErrProcessDone) {
		err = nil
	}
	return err
}

// BinDir returns the folder holding initdb, postgres and the other programs named (pgbench,
// say): from PATH, from pg_config, or the newest of the folders PostgreSQL packages install
// them in.
func BinDir(programs ...string) (string, error) {
	has := func(dir string) bool {
		for _, name := range append([]string{"initdb", "postgres"}, programs...) {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if p, err := exec.LookPath("initdb"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	if p, err := exec.LookPath("pg_config"); err == nil {
		if out, err := exec.Command(p, "--bindir").Output(); err == nil {
			if dir := strings.TrimSpace(string(out)); has(dir) {
				return dir, nil
			}
		}
	}
	var candidates []string
	for _, pattern := range []string{
		"/usr/lib/postgresql/*/bin", // Debian, Ubuntu
		"/usr/pgsql-*/bin",          // PGDG RPMs
		"/usr/local/pgsql/bin",      // built from source
		"/opt/homebrew/opt/postgresql@*/bin",
		"/usr/local/opt/postgresql@*/bin",
	} {
		matches, _ := filepath.Glob(pattern)
		for _, m := range matches {
			if has(m) {
				candidates = append(candidates, m)
			}
		}
	}
	if len(candidates) == 0 {
		return "", errNoPostgres
	}
	// The newest major version: compare the number in the path.
	slices.SortStableFunc(candidates, func(a, b string) int { return versionOf(b) - versionOf(a) })
	return candidates[0], nil
}

// versionOf returns the first number in a path, 0 when there is none.
func versionOf(path string) int {
	start := strings.IndexAny(path, "0123456789")
	if start < 0 {
		return 0
	}
	end := start
	for end < len(path) && path[end] >= '0' && path[end] <= '9' {
		end++
	}
	n, _ := strconv.Atoi(path[start:end])
	return n
}

// account is a user the server runs as.
type account struct{ uid, gid uint32 }

// serverAccount returns the account to run initdb and postgres as: nil (this process's own)
// unless this process is root, which they refuse; then the postgres user's.
func serverAccount() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and PostgreSQL refuses root: %w (create a postgres user or run the tests as another user)", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &account{uid: uint32(uid), gid: uint32(gid)}, nil
}

// command returns a command run in dir as acct, with no PG* variables of ours leaking in.
func command(acct *account, dir, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "LC_ALL=C")
	cmd.SysProcAttr = sysProcAttr(acct)
	return cmd
}

// freePort returns a loopback TCP port nobody listens on.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
