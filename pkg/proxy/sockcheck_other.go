//go:build !linux

package proxy

import "net"

// sleeper's builds are for Linux; elsewhere sockets are not inspected.

// peerClosed cannot tell; a held request is then forwarded as before.
func peerClosed(net.Conn) bool { return false }

// peeker trusts an idle connection as the standard library's own pool
// would without its reader goroutine. The bodiless answers are still never
// reused, and buffered bytes are still caught when the connection is put back.
type peeker struct{}

func newPeeker(net.Conn) *peeker { return &peeker{} }

func (*peeker) quiet() bool { return true }
