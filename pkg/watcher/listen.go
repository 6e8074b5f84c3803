package watcher

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// procRoot is where the host's process table is mounted.
const procRoot = "/proc"

// tcpListen is the LISTEN state in /proc/net/tcp's st column.
const tcpListen = "0A"

// sockets reads the TCP sockets of one container's network namespace
// through its main process under a proc root. A published port answers
// before the app listens (the proxy in front of it accepts anyway), so
// what the app's own namespace says is the only signal that is not time.
//
// The socket tables are dear: to print them the kernel walks the host's
// whole connection hash, some milliseconds on a host with much memory,
// whatever the namespace holds. The namespace's socket count (sockstat)
// is a counter read: the tables are walked only when it says there is a
// socket and has changed since the last walk, or that walk is rewalkEvery
// old (a socket closed as the listener opened leaves the count as it was).
// A walk stops at the first listener that answers.
type sockets struct {
	dir      string // <proc>/<pid>
	walkedAt time.Time
	walkedN  int // the count at the last walk that found no listener
}

// rewalkEvery bounds how long an unchanged, non-zero socket count spares
// the tables a walk.
const rewalkEvery = 50 * time.Millisecond

// containerSockets returns c's sockets when proc shows c's main process:
// c has a Pid, and that process's cgroup names c's ID. Anything else (no
// pid, a proc root that is not the runtime host's, a pid reused or from
// another host) returns false and the caller keeps to the slower rule.
// The probes of one wake use it one after another: no lock.
func containerSockets(proc string, c Container) (*sockets, bool) {
	if c.Pid <= 0 || len(c.ID) < 12 {
		return nil, false
	}
	dir := filepath.Join(proc, strconv.Itoa(c.Pid))
	cg, err := os.ReadFile(filepath.Join(dir, "cgroup"))
	if err != nil || !strings.Contains(string(cg), c.ID) {
		return nil, false
	}
	return &sockets{dir: dir, walkedN: -1}, true
}

// verdict says whether something listens on port where a client of c can
// reach it (see judgeListening).
func (s *sockets) verdict(port uint16, c Container) (listenVerdict, error) {
	n, err := s.count()
	if err != nil || n == 0 {
		return listenNone, err
	}
	now := time.Now()
	if n == s.walkedN && now.Sub(s.walkedAt) < rewalkEvery {
		return listenNone, nil
	}
	v := listenNone
	for _, f := range []string{"net/tcp6", "net/tcp"} {
		fv, err := s.walk(f, port, c)
		if err != nil {
			return listenNone, err
		}
		if fv == listenReady {
			s.walkedN = -1 // a count is worth sparing a walk only after one found nothing
			return listenReady, nil
		}
		v = max(v, fv)
	}
	s.walkedN, s.walkedAt = n, now
	return v, nil
}

// count is the number of TCP sockets hashed in the namespace (listening or
// connected), IPv4 and IPv6. A missing sockstat6 (IPv6 disabled) counts 0.
func (s *sockets) count() (int, error) {
	total := 0
	for _, f := range []string{"net/sockstat", "net/sockstat6"} {
		b, err := os.ReadFile(filepath.Join(s.dir, f))
		if errors.Is(err, fs.ErrNotExist) && f == "net/sockstat6" {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("read socket count: %w", err)
		}
		n, err := tcpInUse(string(b))
		if err != nil {
			return 0, fmt.Errorf("read socket count in %s: %w", f, err)
		}
		total += n
	}
	return total, nil
}

// tcpInUse reads "TCP: inuse N" or "TCP6: inuse N" from a sockstat file.
func tcpInUse(sockstat string) (int, error) {
	for line := range strings.Lines(sockstat) {
		f := strings.Fields(line)
		if len(f) >= 3 && (f[0] == "TCP:" || f[0] == "TCP6:") && f[1] == "inuse" {
			return strconv.Atoi(f[2])
		}
	}
	return 0, errors.New("no TCP inuse line")
}

// walk reads one socket table until a listener on port that c's clients
// reach. Small reads keep the kernel from walking further than that.
func (s *sockets) walk(table string, port uint16, c Container) (listenVerdict, error) {
	f, err := os.Open(filepath.Join(s.dir, table))
	if errors.Is(err, fs.ErrNotExist) && table == "net/tcp6" {
		return listenNone, nil
	}
	if err != nil {
		return listenNone, fmt.Errorf("read listening sockets: %w", err)
	}
	defer f.Close()
	v := listenNone
	err = scanListening(bufio.NewReaderSize(f, 512), func(ap netip.AddrPort) bool {
		if ap.Port() == port {
			v = max(v, judgeListening([]netip.Addr{ap.Addr()}, c))
		}
		return v == listenReady
	})
	if err != nil {
		return listenNone, fmt.Errorf("read listening sockets in %s: %w", table, err)
	}
	return v, nil
}

// scanListening calls fn with the local address of every LISTEN socket in
// a /proc/net/tcp or /proc/net/tcp6 table, until fn returns true.
func scanListening(r io.Reader, fn func(netip.AddrPort) bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), 64<<10)
	for first := true; sc.Scan(); first = false {
		f := strings.Fields(sc.Text())
		if first || len(f) < 4 || f[3] != tcpListen {
			continue // the header, or a socket not listening
		}
		ap, err := parseProcAddr(f[1])
		if err != nil {
			return err
		}
		if fn(ap) {
			return nil
		}
	}
	return sc.Err()
}

// parseProcAddr decodes the kernel's "ADDR:PORT" form: the address as
// 32-bit words each printed in the host's byte order (8 hex digits for
// IPv4, 32 for IPv6), the port in plain hex.
func parseProcAddr(s string) (netip.AddrPort, error) {
	host, port, ok := strings.Cut(s, ":")
	p, perr := strconv.ParseUint(port, 16, 16)
	raw, herr := hex.DecodeString(host)
	if !ok || perr != nil || herr != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("bad socket address %q", s)
	}
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(raw[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	a, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(a, uint16(p)), nil
}

// listenVerdict is what the listening sockets say about a port.
type listenVerdict int

const (
	listenNone    listenVerdict = iota // nobody listens where a client can reach
	listenUnknown                      // listening on an address sleeper cannot place
	listenReady                        // listening on every address or on c's own
)

// judgeListening tells whether addrs, the addresses listening on the target
// port, take a connection from outside c's namespace. An app on loopback
// only is not reachable (neither the proxy of a published port nor a peer
// on the network gets there), so it is not ready; an address that is none
// of c's known ones is left to the dial rule.
func judgeListening(addrs []netip.Addr, c Container) listenVerdict {
	v := listenNone
	for _, a := range addrs {
		a = a.Unmap()
		switch {
		case a.IsUnspecified():
			return listenReady
		case a.IsLoopback():
			continue
		}
		for _, n := range c.Networks {
			if n.IP == a {
				return listenReady
			}
		}
		v = listenUnknown
	}
	return v
}
