package pvefake

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// task is one PVE worker task. It runs for TaskDelay, then does its work
// (which flips the guest's state) and records the exit status.
type task struct {
	upid    string
	node    string
	typ     string // vzstart, vzshutdown, vzstop
	vmid    int
	user    string // "user@realm!tokenid", as in the UPID
	pid     int
	pstart  int64
	start   time.Time
	running bool
	exit    string
	timer   *time.Timer
}

// startTaskLocked creates a task that runs for TaskDelay and schedules its
// work. Callers hold s.mu.
func (s *Server) startTaskLocked(node, typ string, vmid int, user string, work func() string) string {
	return s.startTaskForLocked(node, typ, vmid, user, s.cfg.TaskDelay, work)
}

// afterLocked runs fn after delay, unless the server closes first: what the
// HA manager does on its own loop. Callers hold s.mu.
func (s *Server) afterLocked(delay time.Duration, fn func()) {
	if s.closed {
		return
	}
	s.wg.Add(1)
	s.timers = append(s.timers, time.AfterFunc(delay, func() {
		defer s.wg.Done()
		fn()
	}))
}

// startTaskForLocked is startTaskLocked with a delay of its own (negative:
// at once). Callers hold s.mu.
func (s *Server) startTaskForLocked(node, typ string, vmid int, user string, delay time.Duration, work func() string) string {
	s.pid++
	now := time.Now()
	t := &task{
		node: node, typ: typ, vmid: vmid, user: user, start: now, running: true,
		pid: 0x10000 + s.pid,
		// pstart is the worker's start in clock ticks since boot.
		pstart: 0x00C0FFEE + int64(s.pid)*100,
	}
	// PVE's format: UPID:node:pid:pstart:starttime:type:id:user: with the
	// three numbers in upper-case hex, pid and pstart padded to 8.
	t.upid = fmt.Sprintf("UPID:%s:%08X:%08X:%08X:%s:%d:%s:", node, t.pid, t.pstart, now.Unix(), typ, vmid, user)
	s.tasks[t.upid] = t
	finish := func() {
		defer s.wg.Done()
		exit := work()
		s.mu.Lock()
		defer s.mu.Unlock()
		t.running, t.exit = false, exit
	}
	if s.closed {
		return t.upid // a closed server finishes nothing
	}
	s.wg.Add(1)
	if delay < 0 {
		go finish()
	} else {
		t.timer = time.AfterFunc(delay, finish)
	}
	return t.upid
}

// taskJSON is the task's status as PVE reports it: a token's tasks carry
// the user and the token apart.
func (t *task) json() map[string]any {
	user, token, _ := strings.Cut(t.user, "!")
	m := map[string]any{
		"upid": t.upid, "node": t.node, "pid": t.pid, "pstart": t.pstart,
		"starttime": t.start.Unix(), "type": t.typ, "id": strconv.Itoa(t.vmid),
		"user": user, "status": "running",
	}
	if token != "" {
		m["tokenid"] = token
	}
	if !t.running {
		m["status"] = "stopped"
		m["exitstatus"] = t.exit
	}
	return m
}

// kindWord is how PVE names a guest in its messages: CT or VM.
func (g *guest) kindWord() string {
	if g.kind == "qemu" {
		return "VM"
	}
	return "CT"
}

// taskType is PVE's task type of an action on the guest: vzstart, qmstart…
func (g *guest) taskType(action string) string {
	if g.kind == "qemu" {
		return "qm" + action
	}
	return "vz" + action
}

func (s *Server) startWork(g *guest) func() string {
	return func() string {
		s.mu.Lock()
		fail := g.failStart
		s.mu.Unlock()
		if fail != "" {
			return fail
		}
		if err := s.transition(g, true); err != nil {
			return fmt.Sprintf("startup for %s '%d' failed: %v", map[string]string{"lxc": "container", "qemu": "VM"}[g.kind], g.vmid, err)
		}
		return "OK"
	}
}

// shutdownTiming is how long a shutdown task runs: a guest that ignores
// the shutdown keeps lxc-stop --nokill busy for the timeout and PVE waits
// timeout+5 s more before failing (2T+5), unless forceStop kills it at T.
func (s *Server) shutdownTiming(g *guest, timeout int, force bool) time.Duration {
	sec := s.real.Second
	if sec <= 0 || !g.hangShutdown {
		return s.cfg.TaskDelay
	}
	if force {
		return time.Duration(timeout) * sec
	}
	return time.Duration(2*timeout+5) * sec
}

// shutdownWork mirrors PVE's vm_shutdown: lxc-stop with a timeout, and with
// forceStop a kill when that fails, which ends the task with a warning.
func (s *Server) shutdownWork(g *guest, timeout int, force bool) func() string {
	return func() string {
		s.mu.Lock()
		hang := g.hangShutdown
		s.mu.Unlock()
		if hang && !force {
			if g.kind == "qemu" {
				return "VM quit/powerdown failed - got timeout"
			}
			return "container did not stop"
		}
		_ = s.transition(g, false)
		if hang {
			return "WARNINGS: 1"
		}
		return "OK"
	}
}

func (s *Server) stopWork(g *guest) func() string {
	return func() string {
		_ = s.transition(g, false)
		return "OK"
	}
}

// haWork is an hastart or hastop task: it only sets the HA state; the HA
// manager moves the guest RealNode.HADelay later.
func (s *Server) haWork(g *guest, running bool) func() string {
	return func() string {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.afterLocked(s.real.HADelay, func() { _ = s.transition(g, running) })
		return "OK"
	}
}
