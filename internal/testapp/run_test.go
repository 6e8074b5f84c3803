package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func loopbackConfig() config {
	return config{Name: "r", HTTPAddr: "127.0.0.1:0", TCPEchoAddr: "127.0.0.1:0", UDPEchoAddr: "127.0.0.1:0"}
}

func TestRunExitsZeroOnSignal(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	codes := make(chan int, 1)
	go func() { codes <- run(ctx, loopbackConfig(), slog.New(slog.DiscardHandler)) }()
	cancel() // what signal.NotifyContext does on SIGTERM
	select {
	case code := <-codes:
		if code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

func TestRunSignalDuringStartDelay(t *testing.T) {
	t.Parallel()
	cfg := loopbackConfig()
	cfg.StartDelay = time.Hour
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if code := run(ctx, cfg, slog.New(slog.DiscardHandler)); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}

func TestRunExitAfter(t *testing.T) {
	t.Parallel()
	cfg := loopbackConfig()
	cfg.ExitAfter = 50 * time.Millisecond
	if code := run(t.Context(), cfg, slog.New(slog.DiscardHandler)); code != exitCrash {
		t.Errorf("exit code %d, want %d", code, exitCrash)
	}
}

func TestRunListenFailure(t *testing.T) {
	t.Parallel()
	cfg := loopbackConfig()
	cfg.UDPEchoAddr = "256.0.0.1:1"
	if code := run(t.Context(), cfg, slog.New(slog.DiscardHandler)); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
}

func TestHealthURL(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		":8080":          "http://127.0.0.1:8080/healthz",
		"0.0.0.0:81":     "http://127.0.0.1:81/healthz",
		"[::]:82":        "http://127.0.0.1:82/healthz",
		"127.0.0.2:83":   "http://127.0.0.2:83/healthz",
		"localhost:8080": "http://localhost:8080/healthz",
	}
	for addr, want := range tests {
		got, err := healthURL(addr)
		if err != nil || got != want {
			t.Errorf("healthURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
	if _, err := healthURL("8080"); err == nil {
		t.Error(`healthURL("8080"): want an error`)
	}
}

func TestProbe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		code int
		want int
	}{
		{"healthy", 200, 0},
		{"unhealthy", 503, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/healthz" {
					http.NotFound(w, r)
					return
				}
				w.WriteHeader(tt.code)
				io.WriteString(w, "x")
			}))
			defer srv.Close()
			addr := strings.TrimPrefix(srv.URL, "http://")
			if got := probe(addr, 2*time.Second); got != tt.want {
				t.Errorf("probe = %d, want %d", got, tt.want)
			}
		})
	}
	if got := probe("127.0.0.1:1", time.Second); got != 1 {
		t.Errorf("probe of a closed port = %d, want 1", got)
	}
}
