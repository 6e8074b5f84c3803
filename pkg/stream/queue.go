package stream

// Bounds of the datagrams a UDP flow keeps while its container wakes.
const (
	maxQueuedDatagrams = 256
	maxQueuedBytes     = 1 << 20
)

// queue is a bounded FIFO of datagrams that drops the oldest beyond its
// bounds: for games and DNS alike a fresh datagram is worth more than a
// stale one, and a sender that outruns a wake must not grow our memory.
type queue struct {
	items    [][]byte
	bytes    int
	maxItems int
	maxBytes int
}

func newQueue(maxItems, maxBytes int) queue {
	return queue{maxItems: maxItems, maxBytes: maxBytes}
}

// push appends d and returns how many old datagrams were dropped to fit it.
// A datagram larger than maxBytes on its own is kept alone.
func (q *queue) push(d []byte) (dropped int) {
	q.items = append(q.items, d)
	q.bytes += len(d)
	for len(q.items) > 1 && (len(q.items) > q.maxItems || q.bytes > q.maxBytes) {
		q.bytes -= len(q.items[0])
		q.items[0] = nil // let the dropped datagram be collected
		q.items = q.items[1:]
		dropped++
	}
	return dropped
}

// take removes and returns every queued datagram, oldest first.
func (q *queue) take() [][]byte {
	items := q.items
	q.items, q.bytes = nil, 0
	return items
}

func (q *queue) len() int { return len(q.items) }
