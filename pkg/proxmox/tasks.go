package proxmox

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// UPID identifies a PVE task:
// UPID:node:pid:pstart:starttime:type:id:user@realm!token: (pid, pstart and
// starttime in upper-case hex).
type UPID string

// UPIDInfo is a UPID taken apart.
type UPIDInfo struct {
	Node      string
	PID       int
	PStart    int64
	StartTime time.Time
	Type      string // "vzstart", "vzshutdown", "vzstop", "hastart"…
	ID        string // the guest's VMID for guest tasks
	User      string // "user@realm" or "user@realm!tokenid"
}

// Parse takes the UPID apart.
func (u UPID) Parse() (UPIDInfo, error) {
	f := strings.Split(string(u), ":")
	// Nine fields: the trailing colon leaves an empty last one.
	if len(f) != 9 || f[0] != "UPID" || f[1] == "" || f[8] != "" {
		return UPIDInfo{}, fmt.Errorf("malformed upid %q", string(u))
	}
	pid, err1 := strconv.ParseInt(f[2], 16, 64)
	pstart, err2 := strconv.ParseInt(f[3], 16, 64)
	start, err3 := strconv.ParseInt(f[4], 16, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return UPIDInfo{}, fmt.Errorf("malformed upid %q: pid, pstart and starttime must be hex", string(u))
	}
	return UPIDInfo{
		Node: f[1], PID: int(pid), PStart: pstart, StartTime: time.Unix(start, 0),
		Type: f[5], ID: f[6], User: f[7],
	}, nil
}

// Task is the status of a PVE task.
type Task struct {
	UPID       UPID
	Node       string
	Type       string
	ID         string
	User       string
	Status     string // "running" or "stopped"
	ExitStatus string // set once stopped: "OK", "WARNINGS: n" or an error text
}

// Running reports whether the task is still running.
func (t Task) Running() bool { return t.Status == "running" }

// Err returns nil for a task that succeeded ("OK", or "WARNINGS: n": PVE's
// warnings do not fail a task), a *TaskError carrying PVE's text otherwise.
// A task that still runs has no error yet.
func (t Task) Err() error {
	if t.Running() || t.ExitStatus == "OK" || strings.HasPrefix(t.ExitStatus, "WARNINGS") {
		return nil
	}
	return &TaskError{UPID: t.UPID, ExitStatus: t.ExitStatus}
}

// TaskStatus returns the status of a task. node may be empty: it is then
// read from the UPID, as a task is always queried on its own node.
func (c *Client) TaskStatus(ctx context.Context, node string, upid UPID) (Task, error) {
	if node == "" {
		info, err := upid.Parse()
		if err != nil {
			return Task{}, err
		}
		node = info.Node
	}
	var w struct {
		UPID       string `json:"upid"`
		Node       string `json:"node"`
		Type       string `json:"type"`
		ID         string `json:"id"`
		User       string `json:"user"`
		Status     string `json:"status"`
		ExitStatus string `json:"exitstatus"`
	}
	path := "/nodes/" + url.PathEscape(node) + "/tasks/" + url.PathEscape(string(upid)) + "/status"
	if err := c.get(ctx, path, nil, &w); err != nil {
		return Task{}, err
	}
	return Task{
		UPID: upid, Node: w.Node, Type: w.Type, ID: w.ID, User: w.User,
		Status: w.Status, ExitStatus: w.ExitStatus,
	}, nil
}

// Task polling backs off from the first interval to the last: most guest
// tasks end within a second or two, and a shutdown may take its whole timeout.
const (
	taskPollFirst = 100 * time.Millisecond
	taskPollMax   = time.Second
)

// WaitTask polls a task until it stops or ctx ends. It returns nil when the
// task succeeded, a *TaskError with PVE's text when it failed, and the first
// error of a status call as is (nothing is retried here).
func (c *Client) WaitTask(ctx context.Context, node string, upid UPID) error {
	return poll(ctx, taskPollFirst, taskPollMax, func() (bool, error) {
		t, err := c.TaskStatus(ctx, node, upid)
		if err != nil {
			return false, err
		}
		if t.Running() {
			return false, nil
		}
		return true, t.Err()
	})
}

// poll calls check until it reports done or fails, waiting first, then
// twice as long each time up to last, and stops with ctx's cause.
func poll(ctx context.Context, first, last time.Duration, check func() (bool, error)) error {
	delay := first
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for {
		done, err := check()
		if done || err != nil {
			return err
		}
		t.Reset(delay)
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-t.C:
		}
		delay = min(delay*2, last)
	}
}

// viaHA reports whether the task only asked the HA manager (hastart,
// hastop), which acts on its own loop after the task ends.
func (u UPID) viaHA() bool {
	info, err := u.Parse()
	return err == nil && strings.HasPrefix(info.Type, "ha")
}
