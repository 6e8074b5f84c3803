package bench

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sleeper/internal/dockertest"
)

// TestUDPFlood sends one datagram from each of SOURCES (12,000 by default)
// source ports through a sleeper.streams UDP listener to a container's UDP
// echo, each waiting for its echo, then checks that a new client is still
// answered. It reports sleeper's peak and final RSS. SLEEPER_BIN runs an
// already built binary instead (to compare with another version).
func TestUDPFlood(t *testing.T) {
	benchOnly(t)
	sources := 12000
	if n, err := strconv.Atoi(os.Getenv("SOURCES")); err == nil && n > 0 {
		sources = n
	}
	var s *sleeperProcess
	if bin := os.Getenv("SLEEPER_BIN"); bin != "" {
		s = startSleeperBinary(t, bin)
	} else {
		s = startSleeperProcess(t)
	}
	cli := dockertest.Client(t)
	name := "udpflood-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	listen := freeUDPAddr(t)
	dockertest.Run(t, cli, dockertest.Spec{
		Name: name, Image: dockertest.Image(t),
		Labels:  map[string]string{s.prefix + ".enable": "true", s.prefix + ".streams": listen + ":9001/udp"},
		Publish: []string{"9001/udp"},
	})
	s.waitManaged(t, name)
	if !askUDP(listen, "wake", 30*time.Second) {
		t.Fatal("the first client was never answered")
	}
	rss0, _ := procStat(t, s.cmd.Process.Pid)

	var peak atomic.Int64
	done := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if rss, _ := procStat(t, s.cmd.Process.Pid); rss > peak.Load() {
					peak.Store(rss)
				}
			}
		}
	})
	// Every socket stays open until the end, so that each source port is
	// distinct; eight senders at a time, each waiting for its echo.
	conns := make([]net.Conn, sources)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	var answered atomic.Int64
	next := atomic.Int64{}
	var senders sync.WaitGroup
	t0 := time.Now()
	for range 8 {
		senders.Go(func() {
			for i := int(next.Add(1)) - 1; i < sources; i = int(next.Add(1)) - 1 {
				c, err := net.Dial("udp", listen)
				if err != nil {
					t.Error(err)
					return
				}
				conns[i] = c
				if askOn(c, "src-"+strconv.Itoa(i), 2*time.Second) {
					answered.Add(1)
				}
			}
		})
	}
	senders.Wait()
	flood := time.Since(t0)
	newcomer := askUDP(listen, "newcomer", 10*time.Second)
	close(done)
	sampler.Wait()
	rss1, _ := procStat(t, s.cmd.Process.Pid)
	fmt.Printf("udp flood: %d source ports, %d answered in %s; new client answered afterwards: %v\n",
		sources, answered.Load(), flood.Round(time.Millisecond), newcomer)
	fmt.Printf("  sleeper RSS: %.1f MB before, peak %.1f MB, %.1f MB after; goroutines after %d\n",
		float64(rss0)/1e6, float64(max(peak.Load(), rss1))/1e6, float64(rss1)/1e6, s.goroutines(t))
	if !newcomer {
		t.Error("a new client was not answered after the flood")
	}
}

func freeUDPAddr(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().String()
}

// askUDP sends msg from a fresh socket until its echo comes back or d passes.
func askUDP(addr, msg string, d time.Duration) bool {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return false
	}
	defer c.Close()
	return askOn(c, msg, d)
}

// askOn sends msg on c, again every 200 ms, until its echo comes back or d passes.
func askOn(c net.Conn, msg string, d time.Duration) bool {
	buf := make([]byte, 1500)
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		if _, err := c.Write([]byte(msg)); err != nil {
			time.Sleep(10 * time.Millisecond) // an ICMP error from an earlier try
			continue
		}
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := c.Read(buf)
		if err == nil && string(buf[:n]) == msg {
			return true
		}
	}
	return false
}
