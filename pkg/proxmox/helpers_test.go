package proxmox

import (
	"context"
	"log/slog"
	"net/netip"
	"sleeper/internal/syncbuf"
	"strings"
	"testing"
	"time"

	"sleeper/pkg/proxmox/pvefake"
)

// The fake LXC's address: all of 127.0.0.0/8 is loopback on Linux.
var guestAddr = netip.MustParseAddr("127.0.0.2")

// newFake starts a fake with fast defaults (tests wait milliseconds, not
// pveproxy's 3 s) and one stopped LXC, 101 on pve1.
func newFake(t *testing.T, cfg pvefake.Config) *pvefake.Server {
	t.Helper()
	if cfg.UnauthorizedDelay == 0 {
		cfg.UnauthorizedDelay = 5 * time.Millisecond
	}
	if cfg.TaskDelay == 0 {
		cfg.TaskDelay = 20 * time.Millisecond
	}
	f := pvefake.New(cfg)
	t.Cleanup(f.Close)
	f.AddLXC("pve1", 101, "jellyfin", guestAddr)
	return f
}

// newClient returns a client of the fake that pins its certificate; mod
// may change the config first.
func newClient(t *testing.T, f *pvefake.Server, mod func(*Config)) *Client {
	t.Helper()
	log, _ := testLogger(t)
	cfg := Config{
		URL: f.URL(), TokenID: f.TokenID(), Secret: f.Secret(),
		Fingerprint: f.Fingerprint(), Log: log,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustContainText(t *testing.T, s, want string) {
	t.Helper()
	if !strings.Contains(s, want) {
		t.Fatalf("%q does not contain %q", s, want)
	}
}

func testLogger(t *testing.T) (*slog.Logger, *syncbuf.Buffer) {
	t.Helper()
	b := &syncbuf.Buffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}
