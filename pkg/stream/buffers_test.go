package stream

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

func TestQueueDropsOldest(t *testing.T) {
	t.Parallel()
	d := func(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }
	cases := []struct {
		name        string
		items, size int
		push        [][]byte
		wantDropped int
		want        [][]byte
	}{
		{name: "within bounds", items: 3, size: 100, push: [][]byte{d(1, 'a'), d(2, 'b')}, want: [][]byte{d(1, 'a'), d(2, 'b')}},
		{name: "too many", items: 2, size: 100, push: [][]byte{d(1, 'a'), d(1, 'b'), d(1, 'c')},
			wantDropped: 1, want: [][]byte{d(1, 'b'), d(1, 'c')}},
		{name: "too many bytes", items: 10, size: 10, push: [][]byte{d(4, 'a'), d(4, 'b'), d(4, 'c')},
			wantDropped: 1, want: [][]byte{d(4, 'b'), d(4, 'c')}},
		{name: "one huge datagram is kept alone", items: 10, size: 10, push: [][]byte{d(4, 'a'), d(20, 'b')},
			wantDropped: 1, want: [][]byte{d(20, 'b')}},
		{name: "empty datagrams count", items: 2, size: 10, push: [][]byte{{}, {}, {}},
			wantDropped: 1, want: [][]byte{{}, {}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q := newQueue(tc.items, tc.size)
			dropped := 0
			for _, p := range tc.push {
				dropped += q.push(p)
			}
			if dropped != tc.wantDropped {
				t.Errorf("dropped %d, want %d", dropped, tc.wantDropped)
			}
			got := q.take()
			if len(got) != len(tc.want) {
				t.Fatalf("got %d datagrams, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], tc.want[i]) {
					t.Errorf("datagram %d = %q, want %q", i, got[i], tc.want[i])
				}
			}
			if q.len() != 0 || q.bytes != 0 {
				t.Errorf("after take: %d items, %d bytes", q.len(), q.bytes)
			}
		})
	}
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// TestReadAheadBounded: a client that sends more than the buffer holds gets
// exactly maxPending bytes taken; the rest stays in the socket, in order.
func TestReadAheadBounded(t *testing.T) {
	t.Parallel()
	client, server := tcpPair(t)
	sent := make([]byte, maxPending+36<<10)
	for i := range sent {
		sent[i] = byte(i % 251)
	}
	go func() { _, _ = client.Write(sent); _ = client.CloseWrite() }()
	ra := startReadAhead(server, make([]byte, maxPending), func() { t.Error("onError called") })
	select {
	case <-ra.done: // stopped by itself: the buffer is full
	case <-time.After(5 * time.Second):
		t.Fatal("read-ahead did not stop at a full buffer")
	}
	p := ra.stop()
	if len(p.data) != maxPending || p.eof || p.err != nil {
		t.Fatalf("got %d bytes eof=%v err=%v, want exactly %d", len(p.data), p.eof, p.err, maxPending)
	}
	rest, err := io.ReadAll(server)
	if err != nil {
		t.Fatal(err)
	}
	if got := append(p.data, rest...); !bytes.Equal(got, sent) {
		t.Fatal("bytes lost or reordered across the read-ahead")
	}
}

// TestReadAheadEOF: a client that sends and half-closes during the wake is
// remembered as done.
func TestReadAheadEOF(t *testing.T) {
	t.Parallel()
	client, server := tcpPair(t)
	_, _ = client.Write([]byte("SELECT 1"))
	_ = client.CloseWrite()
	ra := startReadAhead(server, make([]byte, maxPending), func() { t.Error("onError called") })
	<-ra.done
	p := ra.stop()
	if string(p.data) != "SELECT 1" || !p.eof || p.err != nil {
		t.Fatalf("got %q eof=%v err=%v", p.data, p.eof, p.err)
	}
}

// TestReadAheadStop: stopping a read blocked on a silent client returns at
// once and leaves the connection usable without a deadline.
func TestReadAheadStop(t *testing.T) {
	t.Parallel()
	client, server := tcpPair(t)
	ra := startReadAhead(server, make([]byte, maxPending), func() { t.Error("onError called") })
	// A stop that waited for the silent client would never return.
	p := ra.stop()
	if len(p.data) != 0 || p.eof || p.err != nil {
		t.Fatalf("got %q eof=%v err=%v", p.data, p.eof, p.err)
	}
	go func() { _, _ = client.Write([]byte("later")) }()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(server, buf); err != nil || string(buf) != "later" {
		t.Fatalf("read after stop: %q %v", buf, err)
	}
}

// TestReadAheadClientReset: a client that resets makes the read-ahead call
// onError, so the wake wait for it ends.
func TestReadAheadClientReset(t *testing.T) {
	t.Parallel()
	client, server := tcpPair(t)
	called := make(chan struct{})
	ra := startReadAhead(server, make([]byte, maxPending), func() { close(called) })
	_ = client.SetLinger(0) // close with RST
	_ = client.Close()
	select {
	case <-called:
	case <-time.After(5 * time.Second):
		t.Fatal("onError not called after a reset")
	}
	if p := ra.stop(); p.err == nil {
		t.Fatal("no error recorded after a reset")
	}
}

// TestCopyBuffered covers the user-space relay used where splice is not.
func TestCopyBuffered(t *testing.T) {
	t.Parallel()
	ups := startUpstreams(t, "")
	w, _ := newWatcher(t, "buffered", ups, nil, false)
	s := NewServer(Config{Log: testLog(t)})
	src := bytes.Repeat([]byte("0123456789abcdef"), 10000)
	var dst bytes.Buffer
	tc := &toucher{w: w}
	if err := s.copyBuffered(&dst, bytes.NewReader(src), tc); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst.Bytes(), src) {
		t.Fatal("copy differs")
	}
	if tc.next.Load() == 0 {
		t.Fatal("bytes did not touch the watcher")
	}
}
