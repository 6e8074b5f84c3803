package stream

import (
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"sleeper/pkg/watcher"
)

const (
	// copyBufSize is io.Copy's own buffer size, pooled per server.
	copyBufSize = 32 << 10
	// spliceChunk is how much one kernel splice may move before the relay
	// looks at the clock to Touch the watcher: a busy connection touches
	// about once a second, and the check costs nothing next to the copy. A
	// trickle touches less often, which is harmless: the open connection
	// holds the watcher anyway, and its end counts as activity.
	spliceChunk = 1 << 20
	// touchInterval is how often bytes on one connection count as activity.
	touchInterval = time.Second
)

// canSplice reports whether TCPConn.ReadFrom from another TCPConn moves bytes
// inside the kernel (splice(2)) rather than through a user-space buffer.
const canSplice = runtime.GOOS == "linux"

// relay copies both ways until both directions ended, half-closing each
// side once its peer has finished sending, as a TCP client expects of a
// direct connection. clientDone says the client already half-closed.
func (s *Server) relay(w *watcher.Watcher, client, up *net.TCPConn, clientDone bool) {
	t := &toucher{w: w}
	var wg sync.WaitGroup
	if !clientDone {
		wg.Go(func() { s.half(up, client, t) })
	}
	s.half(client, up, t)
	wg.Wait()
}

// half copies src to dst until src's EOF, then passes the EOF on.
func (s *Server) half(dst, src *net.TCPConn, t *toucher) {
	if err := s.copy(dst, src, t); err != nil {
		// A reset, or a write to a peer that is gone: the other direction
		// cannot usefully go on either. Closing both ends it.
		_ = src.Close()
		_ = dst.Close()
		return
	}
	_ = dst.CloseWrite()
}

// copy moves bytes from src to dst until src's EOF (nil) or an error,
// touching the watcher as they flow.
func (s *Server) copy(dst, src *net.TCPConn, t *toucher) error {
	if !canSplice {
		return s.copyBuffered(dst, src, t)
	}
	// Raw TCPConns on both sides let ReadFrom splice; an io.LimitedReader
	// around the source keeps that path (a wrapper would not) while giving
	// the relay a chance to Touch after every chunk.
	lr := io.LimitedReader{R: src}
	for {
		lr.N = spliceChunk
		n, err := dst.ReadFrom(&lr)
		if n > 0 {
			t.touch()
		}
		if err != nil {
			return err
		}
		if lr.N > 0 {
			return nil // the chunk ended early: src reached EOF
		}
	}
}

// copyBuffered is copy through a pooled user-space buffer, for systems
// without splice. Hiding ReadFrom and WriteTo makes io.CopyBuffer use it.
func (s *Server) copyBuffered(dst io.Writer, src io.Reader, t *toucher) error {
	bp := s.copyBufs.Get().(*[]byte)
	defer s.copyBufs.Put(bp)
	_, err := io.CopyBuffer(writerOnly{dst}, &touchReader{r: src, t: t}, *bp)
	return err
}

type writerOnly struct{ io.Writer }

// touchReader touches the watcher on every read that returned bytes.
type touchReader struct {
	r io.Reader
	t *toucher
}

func (r *touchReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.t.touch()
	}
	return n, err
}

// toucher rate-limits Touch to about once per touchInterval. Both directions
// of a connection share one.
type toucher struct {
	w    *watcher.Watcher
	next atomic.Int64 // UnixNano before which touching again is pointless
}

func (t *toucher) touch() {
	now := time.Now().UnixNano()
	if now < t.next.Load() {
		return
	}
	t.next.Store(now + int64(touchInterval))
	t.w.Touch()
}
