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
)

// procRoot is where the host's process table is mounted.
const procRoot = "/proc"

// tcpListen is the LISTEN state in /proc/net/tcp's st column.
const tcpListen = "0A"

// sockets reads the TCP sockets of one container's network namespace
// through its main process under a proc root. A published port answers
// before the app listens (the proxy in front of it accepts anyway), so
// what the app's own namespace says is the only signal that is not time.
type sockets struct {
	dir string // <proc>/<pid>
}

// containerSockets returns c's sockets when proc shows c's main process:
// c has a Pid, and that process's cgroup names c's ID. Anything else (no
// pid, a proc root that is not the runtime host's, a pid reused or from
// another host) returns false and the caller keeps to the slower rule.
func containerSockets(proc string, c Container) (sockets, bool) {
	if c.Pid <= 0 || len(c.ID) < 12 {
		return sockets{}, false
	}
	dir := filepath.Join(proc, strconv.Itoa(c.Pid))
	cg, err := os.ReadFile(filepath.Join(dir, "cgroup"))
	if err != nil || !strings.Contains(string(cg), c.ID) {
		return sockets{}, false
	}
	return sockets{dir: dir}, true
}

// listening returns the local addresses of the namespace's TCP sockets
// listening on port, IPv4 and IPv6. A missing tcp6 (IPv6 disabled) is no
// error.
func (s sockets) listening(port uint16) ([]netip.Addr, error) {
	var addrs []netip.Addr
	for _, f := range []string{"net/tcp", "net/tcp6"} {
		b, err := os.ReadFile(filepath.Join(s.dir, f))
		if errors.Is(err, fs.ErrNotExist) && f == "net/tcp6" {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read listening sockets: %w", err)
		}
		ls, err := parseListening(strings.NewReader(string(b)))
		if err != nil {
			return nil, fmt.Errorf("read listening sockets in %s: %w", f, err)
		}
		for _, l := range ls {
			if l.Port() == port {
				addrs = append(addrs, l.Addr())
			}
		}
	}
	return addrs, nil
}

// parseListening returns the local address of every LISTEN socket in a
// /proc/net/tcp or /proc/net/tcp6 table.
func parseListening(r io.Reader) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), 64<<10)
	for first := true; sc.Scan(); first = false {
		f := strings.Fields(sc.Text())
		if first || len(f) < 4 || f[3] != tcpListen {
			continue // the header, or a socket not listening
		}
		ap, err := parseProcAddr(f[1])
		if err != nil {
			return nil, err
		}
		out = append(out, ap)
	}
	return out, sc.Err()
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
	listenReady                        // listening on every address or on c's own
	listenUnknown                      // listening on an address sleeper cannot place
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
