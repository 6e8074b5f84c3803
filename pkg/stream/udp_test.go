package stream

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"sleeper/pkg/labels"
	"sleeper/pkg/watcher"
)

// TestUDPManySourcesEvictOldest: one datagram from each of 10,050 source
// ports fills the flow table past its bound; the least recently active
// flows make room, so every source, and then a new client, is answered,
// while the table and the goroutines stay bounded.
func TestUDPManySourcesEvictOldest(t *testing.T) {
	key := loopbackStream(t, labels.UDP, 9001)
	w, _ := newWatcher(t, "flood", startUpstreams(t, "re:"), []labels.Stream{key}, true)
	routes := newFakeRoutes()
	routes.set(map[labels.Stream]*watcher.Watcher{key: w})
	s, _ := startServer(t, routes, Config{})
	dialStream(t, key) // the listener is bound

	const sources = 10050
	for i := range sources {
		// Distinct loopback addresses make distinct sources for sure: a
		// port of a closed socket may come back for the next one.
		src := netip.AddrFrom4([4]byte{127, 1, byte(i / 250), byte(i%250 + 1)})
		askUDP(t, key, src, fmt.Sprintf("src-%d", i))
		if n := s.flowCount.Load(); n > maxFlows {
			t.Fatalf("after %d sources: %d flows, bound %d", i+1, n, maxFlows)
		}
	}
	askUDP(t, key, netip.MustParseAddr("127.2.0.1"), "newcomer")
	if n := s.flowCount.Load(); n > maxFlows {
		t.Fatalf("%d flows, bound %d", n, maxFlows)
	}
	// Each idle flow parks one reader; no worker outlives its datagrams.
	if g := runtime.NumGoroutine(); g > maxFlows+200 {
		t.Fatalf("%d goroutines for at most %d flows", g, maxFlows)
	}
}

// askUDP sends msg from src until the echo answers it.
func askUDP(t *testing.T, key labels.Stream, src netip.Addr, msg string) {
	t.Helper()
	d := net.Dialer{LocalAddr: net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0))}
	c, err := d.Dial("udp", listenAddr(key))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Retried: the listener may still be binding, and UDP may drop.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		_, _ = c.Write([]byte(msg))
		if got := readDatagramWithin(c, 100*time.Millisecond); got == "re:"+msg {
			return
		}
	}
	t.Fatalf("source %s never answered", msg)
}
