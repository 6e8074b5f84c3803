//go:build race

package proxy

// raceEnabled: the race detector drops sync.Pool items on purpose, so
// allocation counts mean nothing under it.
const raceEnabled = true
