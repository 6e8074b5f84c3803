package dockertest

import (
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
)

// SocketProxy stands between a client under test and the engine's socket,
// so a test can cut the connection as an engine restart would, without
// restarting the engine under every other test.
type SocketProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	conns map[net.Conn]bool
	down  bool
	wg    sync.WaitGroup
}

// NewSocketProxy listens on a unix socket in a temp dir and forwards every
// connection to target (a unix socket path, /var/run/docker.sock by default).
// It stops when the test ends.
func NewSocketProxy(t testing.TB, target string) *SocketProxy {
	t.Helper()
	if target == "" {
		target = "/var/run/docker.sock"
	}
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "docker.sock"))
	if err != nil {
		t.Fatal(err)
	}
	p := &SocketProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// Host is the DOCKER_HOST value that reaches the engine through the proxy.
func (p *SocketProxy) Host() string { return "unix://" + p.ln.Addr().String() }

// Cut closes every open connection (event streams included) and refuses new
// ones until Restore.
func (p *SocketProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		_ = c.Close()
	}
}

// Restore accepts connections again.
func (p *SocketProxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

func (p *SocketProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		up, err := net.Dial("unix", p.target)
		if err != nil {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *SocketProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}
