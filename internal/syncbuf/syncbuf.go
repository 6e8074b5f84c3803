// Package syncbuf is a bytes.Buffer that one goroutine may read while
// others write: the destination of a logger, or of a child process's
// output, that a test reads while the code under test runs.
package syncbuf

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer collects writes; its zero value is ready to use. slog's handlers
// write whole records, so a read never sees half a line of theirs.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Count returns how many times s was written, as strings.Count counts.
func (b *Buffer) Count(s string) int { return strings.Count(b.String(), s) }

// Tail returns the last n bytes written.
func (b *Buffer) Tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	all := b.buf.Bytes()
	return string(all[max(0, len(all)-n):])
}
