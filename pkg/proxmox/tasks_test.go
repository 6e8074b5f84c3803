package proxmox

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"sleeper/pkg/proxmox/pvefake"
)

func TestUPIDParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		upid    UPID
		want    UPIDInfo
		wantErr bool
	}{
		{upid: "UPID:pve1:0000A1B2:00C0FFEE:6543A1B2:vzstart:101:sleeper@pve!sleeper:",
			want: UPIDInfo{Node: "pve1", PID: 0xA1B2, PStart: 0xC0FFEE, StartTime: time.Unix(0x6543A1B2, 0),
				Type: "vzstart", ID: "101", User: "sleeper@pve!sleeper"}},
		{upid: "UPID:pve1:0000A1B2:00C0FFEE:6543A1B2:vzstart:101:root@pam", wantErr: true}, // no trailing colon
		{upid: "UPID:pve1:XYZ:00C0FFEE:6543A1B2:vzstart:101:root@pam:", wantErr: true},
		{upid: "TASK:pve1:0000A1B2:00C0FFEE:6543A1B2:vzstart:101:root@pam:", wantErr: true},
		{upid: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := tt.upid.Parse()
		if (err != nil) != tt.wantErr {
			t.Errorf("Parse(%q) err %v, wantErr %v", tt.upid, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && got != tt.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tt.upid, got, tt.want)
		}
	}
}

func TestTaskErr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		task Task
		ok   bool
	}{
		{Task{Status: "running"}, true},
		{Task{Status: "stopped", ExitStatus: "OK"}, true},
		{Task{Status: "stopped", ExitStatus: "WARNINGS: 2"}, true},
		{Task{Status: "stopped", ExitStatus: "startup for container '101' failed"}, false},
		{Task{Status: "stopped", ExitStatus: ""}, false},
	}
	for _, tt := range tests {
		err := tt.task.Err()
		if (err == nil) != tt.ok {
			t.Errorf("%+v: Err() = %v", tt.task, err)
		}
		var te *TaskError
		if err != nil && (!errors.As(err, &te) || te.ExitStatus != tt.task.ExitStatus) {
			t.Errorf("%+v: Err() = %#v, want a *TaskError with the exit status", tt.task, err)
		}
	}
}

// TestTaskLifecycle walks a guest through start and shutdown: the POST
// returns a UPID in PVE's format at once, the state flips only when the
// task finishes, and interfaces are null while stopped.
func TestTaskLifecycle(t *testing.T) {
	t.Parallel()
	f := newFake(t, pvefake.Config{TaskDelay: 150 * time.Millisecond})
	c := newClient(t, f, nil)
	ctx := testContext(t)

	if ifs, err := c.Interfaces(ctx, "pve1", 101); err != nil || ifs != nil {
		t.Fatalf("Interfaces while stopped = %v, %v; want nil, nil", ifs, err)
	}
	upid, err := c.Start(ctx, "pve1", 101)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	info, err := upid.Parse()
	if err != nil {
		t.Fatal(err)
	}
	if info.Node != "pve1" || info.Type != "vzstart" || info.ID != "101" || info.User != f.TokenID() {
		t.Errorf("UPID %s parses to %+v", upid, info)
	}
	task, err := c.TaskStatus(ctx, "", upid) // node read from the UPID
	if err != nil {
		t.Fatalf("TaskStatus: %v", err)
	}
	if !task.Running() || f.Status("pve1", 101) != "stopped" {
		t.Fatalf("right after the POST: task %+v, guest %s; want a running task, a stopped guest", task, f.Status("pve1", 101))
	}
	if err := c.WaitTask(ctx, "pve1", upid); err != nil {
		t.Fatalf("WaitTask: %v", err)
	}
	st, err := c.Status(ctx, "pve1", 101)
	if err != nil || !st.Running() || st.Name != "jellyfin" || st.VMID != 101 {
		t.Fatalf("Status after start = %+v, %v", st, err)
	}
	ifs, err := c.Interfaces(ctx, "pve1", 101)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(ifs))
	for _, i := range ifs {
		names = append(names, i.Name+" "+i.Inet)
	}
	if !slices.Equal(names, []string{"lo 127.0.0.1/8", "eth0 127.0.0.2/24"}) {
		t.Errorf("interfaces %v", names)
	}

	upid, err = c.Shutdown(ctx, "pve1", 101, 3*time.Second, true)
	if err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if form := f.LastForm(pvefake.EndpointShutdown); form.Get("timeout") != "3" || form.Get("forceStop") != "1" {
		t.Errorf("shutdown form %v", form)
	}
	if err := c.WaitTask(ctx, "pve1", upid); err != nil {
		t.Fatalf("WaitTask(shutdown): %v", err)
	}
	if st, err := c.Status(ctx, "pve1", 101); err != nil || st.Running() {
		t.Fatalf("Status after shutdown = %+v, %v", st, err)
	}
}

func TestWaitTaskFailure(t *testing.T) {
	t.Parallel()
	f := newFake(t, pvefake.Config{})
	const text = "startup for container '101' failed"
	f.FailStart("pve1", 101, text)
	c := newClient(t, f, nil)
	ctx := testContext(t)
	upid, err := c.Start(ctx, "pve1", 101)
	if err != nil {
		t.Fatal(err)
	}
	err = c.WaitTask(ctx, "pve1", upid)
	var te *TaskError
	if !errors.As(err, &te) || te.ExitStatus != text || te.UPID != upid {
		t.Fatalf("WaitTask = %v, want a *TaskError carrying %q", err, text)
	}
	if f.Status("pve1", 101) != "stopped" {
		t.Error("a failed start left the guest running")
	}
}

func TestWaitTaskHonoursContext(t *testing.T) {
	t.Parallel()
	f := newFake(t, pvefake.Config{TaskDelay: time.Hour})
	c := newClient(t, f, nil)
	upid, err := c.Start(testContext(t), "pve1", 101)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(testContext(t), 300*time.Millisecond)
	defer cancel()
	// The task runs for an hour: only the context can end the wait.
	err = c.WaitTask(ctx, "pve1", upid)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitTask = %v, want the context's deadline", err)
	}
	// A busy machine polls less often, never more: only the upper bound
	// says something about the backoff.
	if n := f.Calls(pvefake.EndpointTaskStatus); n < 1 || n > 10 {
		t.Errorf("%d task status calls in 300ms, want a few (backoff from 100ms)", n)
	}
}
