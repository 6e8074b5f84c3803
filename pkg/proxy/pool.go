package proxy

import (
	"bufio"
	"io"
	"sync"
)

// Buffers of the lean path and of upstream connections are pooled and
// held only while a request uses them: a herd of held requests released
// at once by a wake would otherwise own a 32 KiB copy buffer and 8 KiB of
// connection buffers each (BENCHMARKS.md, herd).

// smallBody is the largest answer copied with a small buffer.
const smallBody = 2 << 10

// copyBuffers pools the body copy buffers of the lean path in two sizes:
// answers known to be small (most API answers, redirects, 304s) take a
// small one.
type copyBuffers struct{ small, large sync.Pool }

func (c *copyBuffers) get(contentLength int64) *[]byte {
	p, size := &c.large, 32<<10
	if contentLength >= 0 && contentLength <= smallBody {
		p, size = &c.small, smallBody
	}
	if b, ok := p.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, size)
	return &b
}

func (c *copyBuffers) put(b *[]byte) {
	if cap(*b) == smallBody {
		c.small.Put(b)
	} else {
		c.large.Put(b)
	}
}

// connBufSize is the standard transport's buffer size.
const connBufSize = 4 << 10

// connBuffers pools upstream connections' readers and writers: a writer is
// held only while a request head is written, a reader only while the
// connection is in use (an idle connection has nothing buffered).
type connBuffers struct{ readers, writers sync.Pool }

func (c *connBuffers) reader(r io.Reader) *bufio.Reader {
	if br, ok := c.readers.Get().(*bufio.Reader); ok {
		br.Reset(r)
		return br
	}
	return bufio.NewReaderSize(r, connBufSize)
}

func (c *connBuffers) putReader(br *bufio.Reader) {
	br.Reset(nil)
	c.readers.Put(br)
}

func (c *connBuffers) writer(w io.Writer) *bufio.Writer {
	if bw, ok := c.writers.Get().(*bufio.Writer); ok {
		bw.Reset(w)
		return bw
	}
	return bufio.NewWriterSize(w, connBufSize)
}

func (c *connBuffers) putWriter(bw *bufio.Writer) {
	bw.Reset(nil)
	c.writers.Put(bw)
}
