package docker

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/moby/moby/client"
)

// execOutputLimit bounds what is read of a test's output: only its exit code
// matters, but the stream must be drained for the exec to finish.
const execOutputLimit = 1 << 20

// Exec implements watcher.Execer: it runs cmd in the running container as
// the engine runs a health test (the container's user and environment),
// waits for it to end and returns its exit code. It needs the engine's exec
// permission, which least-privilege socket proxies withhold by default.
func (d *Docker) Exec(ctx context.Context, id string, cmd []string) (int, error) {
	created, err := d.cli.ExecCreate(ctx, id, client.ExecCreateOptions{
		Cmd: cmd, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return -1, fmt.Errorf("exec create in %.12s: %w", id, err)
	}
	// Attaching starts the exec; the stream ends when the command exits.
	att, err := d.cli.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		return -1, fmt.Errorf("exec start in %.12s: %w", id, err)
	}
	stop := context.AfterFunc(ctx, func() { att.Close() })
	_, _ = io.Copy(io.Discard, io.LimitReader(att.Reader, execOutputLimit))
	att.Close()
	stop()
	if err := ctx.Err(); err != nil {
		return -1, err
	}
	// The exit may be recorded a moment after the stream closes: look again
	// briefly rather than report a finished test as failed.
	for delay := time.Millisecond; ; delay *= 2 {
		res, err := d.cli.ExecInspect(ctx, created.ID, client.ExecInspectOptions{})
		if err != nil {
			return -1, fmt.Errorf("exec inspect in %.12s: %w", id, err)
		}
		if !res.Running {
			return res.ExitCode, nil
		}
		if delay > 100*time.Millisecond {
			return -1, fmt.Errorf("exec in %.12s: still running after its output closed", id)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return -1, ctx.Err()
		case <-t.C:
		}
	}
}
