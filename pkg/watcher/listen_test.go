package watcher

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sleeper/internal/await"
	"sleeper/pkg/labels"
)

const (
	tcpHeader  = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	tcp6Header = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
)

// procWord prints 4 address bytes as the kernel does: one 32-bit word in
// the host's byte order.
func procWord(b []byte) string {
	return strings.ToUpper(strconv.FormatUint(uint64(0x100000000|uint64(binary.NativeEndian.Uint32(b))), 16)[1:])
}

// procLine is one socket line of /proc/net/tcp or tcp6 for local ap in
// state st.
func procLine(ap netip.AddrPort, st string) string {
	raw := ap.Addr().AsSlice()
	var host string
	for i := 0; i < len(raw); i += 4 {
		host += procWord(raw[i : i+4])
	}
	zero := strings.Repeat("0", len(host))
	return "   0: " + host + ":" + strings.ToUpper(strconv.FormatUint(uint64(ap.Port())|0x10000, 16)[1:]) +
		" " + zero + ":0000 " + st + " 00000000:00000000 00:00000000 00000000     0        0 4072368 1 0000000050f75258 100 0 0 10 0\n"
}

// TestParseListening: LISTEN sockets of both tables are read with their
// address and port; other states and the header are skipped; a mangled
// address is an error. The literal lines are as a little-endian kernel
// prints them; the last cases build lines for this host's byte order.
func TestParseListening(t *testing.T) {
	t.Parallel()
	le := binary.NativeEndian.Uint16([]byte{1, 0}) == 1
	tests := []struct {
		name    string
		table   string
		want    []string
		wantErr bool
		leOnly  bool
	}{
		{name: "ipv4 any", leOnly: true, table: tcpHeader +
			"   0: 00000000:2328 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n",
			want: []string{"0.0.0.0:9000"}},
		{name: "ipv4 loopback and container address", leOnly: true, table: tcpHeader +
			"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n" +
			"   1: 020012AC:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0\n",
			want: []string{"127.0.0.1:8080", "172.18.0.2:80"}},
		{name: "ipv4 established skipped", leOnly: true, table: tcpHeader +
			"   0: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n" +
			"   1: 0100007F:1F90 00000000:0000 06 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n"},
		{name: "ipv6 any (a dual-stack listener)", leOnly: true, table: tcp6Header +
			"   0: 00000000000000000000000000000000:2328 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 2 0 100 0 0 10 0\n",
			want: []string{"[::]:9000"}},
		{name: "ipv6 loopback and mapped ipv4", leOnly: true, table: tcp6Header +
			"   0: 00000000000000000000000001000000:2328 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 2 0 100 0 0 10 0\n" +
			"   1: 0000000000000000FFFF0000020012AC:2328 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 2 0 100 0 0 10 0\n",
			want: []string{"[::1]:9000", "[::ffff:172.18.0.2]:9000"}},
		{name: "host order ipv4", table: tcpHeader + procLine(netip.MustParseAddrPort("10.1.2.3:5432"), "0A"),
			want: []string{"10.1.2.3:5432"}},
		{name: "host order ipv6", table: tcp6Header + procLine(netip.MustParseAddrPort("[fd00::1:2]:443"), "0A"),
			want: []string{"[fd00::1:2]:443"}},
		{name: "empty table", table: tcpHeader},
		{name: "bad address", wantErr: true, table: tcpHeader +
			"   0: 0100007:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n"},
		{name: "bad port", wantErr: true, table: tcpHeader +
			"   0: 0100007F:XYZ 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.leOnly && !le {
				t.Skip("literal lines of a little-endian kernel")
			}
			var got []netip.AddrPort
			err := scanListening(strings.NewReader(tt.table), func(ap netip.AddrPort) bool {
				got = append(got, ap)
				return false
			})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			var s []string
			for _, ap := range got {
				s = append(s, ap.String())
			}
			if !slices.Equal(s, tt.want) {
				t.Errorf("got %v, want %v", s, tt.want)
			}
		})
	}
}

// TestJudgeListening: every address or one of the container's is ready;
// loopback only is not (nothing outside the namespace reaches it); an
// address sleeper cannot place is unknown.
func TestJudgeListening(t *testing.T) {
	t.Parallel()
	c := Container{Networks: []Network{{Name: "front", IP: netip.MustParseAddr("172.18.0.2")}}}
	tests := []struct {
		addrs []string
		want  listenVerdict
	}{
		{nil, listenNone},
		{[]string{"127.0.0.1"}, listenNone},
		{[]string{"::1", "127.0.0.11"}, listenNone},
		{[]string{"0.0.0.0"}, listenReady},
		{[]string{"::"}, listenReady},
		{[]string{"127.0.0.1", "172.18.0.2"}, listenReady},
		{[]string{"::ffff:172.18.0.2"}, listenReady},
		{[]string{"10.9.9.9"}, listenUnknown},
		{[]string{"10.9.9.9", "::"}, listenReady},
	}
	for _, tt := range tests {
		var addrs []netip.Addr
		for _, a := range tt.addrs {
			addrs = append(addrs, netip.MustParseAddr(a))
		}
		if got := judgeListening(addrs, c); got != tt.want {
			t.Errorf("%v: got %v, want %v", tt.addrs, got, tt.want)
		}
	}
}

// fakeProc is a proc root with one process, pid 4242, whose cgroup names
// id; listen writes its TCP tables.
type fakeProc struct {
	t    *testing.T
	root string
}

const fakePid = 4242

func newFakeProc(t *testing.T, cgroupID string) fakeProc {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, strconv.Itoa(fakePid))
	if err := os.MkdirAll(filepath.Join(dir, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup"), []byte("0::/system.slice/runtime-"+cgroupID+".scope\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := fakeProc{t: t, root: root}
	f.listen()
	return f
}

// listen replaces the tables with LISTEN sockets on aps (IPv4 ones in tcp,
// IPv6 ones in tcp6), and the socket counts with their numbers.
func (f fakeProc) listen(aps ...string) {
	f.t.Helper()
	f.listenCounting(-1, aps...)
}

// listenCounting is listen with sockstat's TCP count set to n (-1: the
// number of aps), as when other sockets come and go.
func (f fakeProc) listenCounting(n int, aps ...string) {
	f.t.Helper()
	v4, v6 := tcpHeader, tcp6Header
	n4, n6 := 0, 0
	for _, s := range aps {
		ap := netip.MustParseAddrPort(s)
		if ap.Addr().Is4() {
			v4 += procLine(ap, "0A")
			n4++
		} else {
			v6 += procLine(ap, "0A")
			n6++
		}
	}
	if n >= 0 {
		n4, n6 = n, 0
	}
	dir := filepath.Join(f.root, strconv.Itoa(fakePid), "net")
	files := map[string]string{
		"tcp": v4, "tcp6": v6,
		"sockstat":  "sockets: used 3\nTCP: inuse " + strconv.Itoa(n4) + " orphan 0 tw 0 alloc 2 mem 0\nUDP: inuse 0 mem 0\n",
		"sockstat6": "TCP6: inuse " + strconv.Itoa(n6) + "\nUDP6: inuse 0\n",
	}
	for name, body := range files {
		// Write then rename: the probe may read at any moment.
		tmp := filepath.Join(dir, name+".tmp")
		if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
			f.t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			f.t.Fatal(err)
		}
	}
}

const fakeID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// socketProbe is the TCP probe of a container with id and fakePid whose
// port 5432 is published at addr and which is at 172.18.0.2, reading proc.
func socketProbe(t *testing.T, proc, id, addr string) (func() bool, bool) {
	t.Helper()
	c := Container{
		ID: id, Pid: fakePid,
		Published: map[string]string{"5432/tcp": addr},
		Networks:  []Network{{Name: "front", IP: netip.MustParseAddr("172.18.0.2")}},
	}
	spec := &labels.Spec{Streams: []labels.Stream{{Listen: 5432, Target: 5432, Protocol: labels.TCP}}}
	p := newProber()
	p.proc = proc
	probe, bySockets := p.tcp(c, spec, nil)
	return func() bool { return probe(t.Context()) }, bySockets
}

// TestTCPProbeReadsListeningSockets: with the container's process visible,
// a proxy that keeps connections open is not taken for the app until a
// socket listens on the target port on a reachable address; one on
// loopback only, or on another port, is not ready; then the probe says
// ready at once, without waiting for a hang-up.
func TestTCPProbeReadsListeningSockets(t *testing.T) {
	t.Parallel()
	addr, up := fakeDockerProxy(t)
	up.Store(true) // a proxy that never hangs up: only the sockets can tell
	proc := newFakeProc(t, fakeID)
	probe, bySockets := socketProbe(t, proc.root, fakeID, addr)
	if !bySockets {
		t.Fatal("the container's sockets are not read")
	}
	for _, state := range [][]string{nil, {"127.0.0.1:5432"}, {"[::1]:5432"}, {"0.0.0.0:5433"}} {
		proc.listen(state...)
		if probe() {
			t.Fatalf("ready with listeners %v", state)
		}
	}
	proc.listen("127.0.0.1:5432", "[::]:5432")
	if !probe() {
		t.Fatal("not ready with the app listening on every address")
	}
	proc.listen("172.18.0.2:5432")
	if !probe() {
		t.Fatal("not ready with the app listening on the container's address")
	}
}

// TestTCPProbeSocketCountGates: the tables are walked only when the socket
// count says there is something new, yet a listener that opened as another
// socket closed (the count unchanged) is found at the next periodic walk.
func TestTCPProbeSocketCountGates(t *testing.T) {
	t.Parallel()
	addr, up := fakeDockerProxy(t)
	up.Store(true)
	proc := newFakeProc(t, fakeID)
	probe, _ := socketProbe(t, proc.root, fakeID, addr)
	proc.listenCounting(0, "0.0.0.0:5432") // a table the count says is empty
	if probe() {
		t.Fatal("tables walked with a socket count of 0")
	}
	proc.listenCounting(1, "127.0.0.1:5432")
	if probe() {
		t.Fatal("ready with a loopback listener")
	}
	proc.listenCounting(1, "0.0.0.0:5432") // same count: one closed, one listens
	await.Eventually(t, 5*time.Second, "the listener found by a later walk", probe)
}

// TestTCPProbeSocketsNeedTheProxy: a listening app behind a port nobody
// accepts on yet (the proxy not started) is not ready: the client's dial
// would be refused.
func TestTCPProbeSocketsNeedTheProxy(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	proc := newFakeProc(t, fakeID)
	proc.listen("0.0.0.0:5432")
	probe, _ := socketProbe(t, proc.root, fakeID, addr)
	if probe() {
		t.Fatal("ready with nothing accepting at the published address")
	}
}

// TestTCPProbeOtherProcess: a process whose cgroup does not name the
// container (a pid from another host or process table), or no pid, is
// not read: the probe keeps to the hang-up rule, which a hanging-up proxy
// never passes whatever that process listens on.
func TestTCPProbeOtherProcess(t *testing.T) {
	t.Parallel()
	addr, _ := fakeDockerProxy(t) // hangs up: the app is not there
	other := newFakeProc(t, strings.Repeat("f", 64))
	other.listen("0.0.0.0:5432")
	for name, proc := range map[string]string{"other cgroup": other.root, "no proc": filepath.Join(t.TempDir(), "none")} {
		probe, bySockets := socketProbe(t, proc, fakeID, addr)
		if bySockets {
			t.Errorf("%s: sockets read", name)
		}
		if probe() {
			t.Errorf("%s: ready while the proxy hangs up", name)
		}
	}
}

// TestTCPInUse: the TCP count of sockstat and sockstat6; a file without
// one is an error, not a count of 0.
func TestTCPInUse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{in: "sockets: used 6\nTCP: inuse 3 orphan 93 tw 0 alloc 114 mem 326\nUDP: inuse 0 mem 256\n", want: 3},
		{in: "TCP6: inuse 2\nUDP6: inuse 1\n", want: 2},
		{in: "UDP6: inuse 1\n", wantErr: true},
		{in: "TCP: inuse x\n", wantErr: true},
	}
	for _, tt := range tests {
		got, err := tcpInUse(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("%q: got %d, %v; want %d (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
