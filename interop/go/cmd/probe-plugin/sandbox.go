package main

// Sandbox probes: a Get of the key "probe:<action> <argument>" tries
// something a host's sandbox should stop and answers "ok:<detail>" or
// "err:<ERRNO>", as goplug-test's Rust sandbox-probe does:
//
//	read PATH, write PATH (creates PATH), connect HOST:PORT,
//	exec PATH (runs PATH -c true), ptrace PID, signal PID (signal 0),
//	abstract NAME (connects to an abstract Unix socket), env NAME;
//	memory   reserves 64 MiB at a time, never touched, up to 16 GiB (a
//	         limit makes the Go runtime die: "out of memory", exit 2);
//	threads  locks goroutines to new OS threads until one cannot start
//	         (at most 4096; the Go runtime dies when clone fails);
//	burn     spins until a CPU time limit ends the process (Go ignores
//	         SIGXCPU, so the hard limit's SIGKILL does).

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var held [][]byte

func sandboxProbe(key string) ([]byte, bool) {
	probe, ok := strings.CutPrefix(key, "probe:")
	if !ok {
		return nil, false
	}
	action, argument, _ := strings.Cut(probe, " ")
	detail, err := runProbe(action, argument)
	if err != nil {
		return []byte("err:" + errnoName(err)), true
	}
	return []byte("ok:" + detail), true
}

func runProbe(action, argument string) (string, error) {
	switch action {
	case "read":
		data, err := os.ReadFile(argument)
		return strings.TrimSpace(string(data)), err
	case "write":
		return "", os.WriteFile(argument, []byte("written by the probe"), 0o644)
	case "connect":
		conn, err := net.DialTimeout("tcp", argument, 10*time.Second)
		if err == nil {
			conn.Close()
		}
		return "", err
	case "exec":
		err := exec.Command(argument, "-c", "true").Run()
		return "", err
	case "ptrace":
		pid, err := strconv.Atoi(argument)
		if err != nil {
			return "", err
		}
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := syscall.PtraceAttach(pid); err != nil {
			return "", err
		}
		return "", syscall.PtraceDetach(pid)
	case "signal":
		pid, err := strconv.Atoi(argument)
		if err != nil {
			return "", err
		}
		return "", syscall.Kill(pid, 0)
	case "abstract":
		conn, err := net.Dial("unix", "@"+argument)
		if err == nil {
			conn.Close()
		}
		return "", err
	case "env":
		return os.Getenv(argument), nil
	case "memory":
		for i := 0; i < 256; i++ {
			held = append(held, make([]byte, 64<<20))
		}
		return fmt.Sprintf("reserved %d MiB with no limit", len(held)*64), nil
	case "threads":
		for i := 0; i < 4096; i++ {
			go func() {
				runtime.LockOSThread()
				select {}
			}()
		}
		time.Sleep(2 * time.Second)
		return "started 4096 threads with no limit", nil
	case "burn":
		x := uint64(0)
		for {
			x = x*6364136223846793005 + 1
		}
	}
	return "", fmt.Errorf("unknown probe %q", action)
}

func errnoName(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if name := errnoNames[errno]; name != "" {
			return name
		}
		return fmt.Sprintf("errno %d", int(errno))
	}
	return err.Error()
}

var errnoNames = map[syscall.Errno]string{
	syscall.EACCES:       "EACCES",
	syscall.EPERM:        "EPERM",
	syscall.ENOENT:       "ENOENT",
	syscall.ECONNREFUSED: "ECONNREFUSED",
	syscall.ENETUNREACH:  "ENETUNREACH",
	syscall.EAGAIN:       "EAGAIN",
	syscall.EROFS:        "EROFS",
}
