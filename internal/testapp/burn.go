package main

import (
	"fmt"
	"net/http"
	"sync"
)

// burner keeps one CPU busy between POST /burn?on=1 and POST /burn?on=0, so
// that a test can show sleeper's busy guard a container that works without
// requests. Its goroutine ends when told to, or with the process.
type burner struct {
	mu   sync.Mutex
	stop chan struct{} // nil while idle
}

func (b *burner) handle(w http.ResponseWriter, r *http.Request) {
	on := r.URL.Query().Get("on")
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case on == "1" && b.stop == nil:
		b.stop = make(chan struct{})
		go spin(b.stop)
	case on == "0" && b.stop != nil:
		close(b.stop)
		b.stop = nil
	case on != "0" && on != "1":
		http.Error(w, "want on=1 or on=0", http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "burning=%v\n", b.stop != nil)
}

// spin uses a CPU until stop is closed, checking it every few thousand rounds.
func spin(stop <-chan struct{}) {
	x := uint64(1)
	for {
		for range 1 << 16 {
			x = x*6364136223846793005 + 1442695040888963407
		}
		select {
		case <-stop:
			_ = x
			return
		default:
		}
	}
}
