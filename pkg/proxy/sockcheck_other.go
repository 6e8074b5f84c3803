//go:build !linux

package proxy

import "net"

// quiet cannot look at a socket without reading it here: sleeper's builds
// are for Linux, and elsewhere an idle connection is trusted as the
// standard library's own pool would be without its reader goroutine. The
// bodiless answers are still never reused, and Buffered bytes are still
// caught when the connection is put back.
func quiet(net.Conn) bool { return true }
