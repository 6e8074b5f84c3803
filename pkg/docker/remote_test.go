package docker

import (
	"net/netip"
	"reflect"
	"testing"

	"sleeper/pkg/watcher"
)

// TestRemoteEngineDialsItsHostAddress: a remote engine's published ports
// are dialled on its host address, and its bridge addresses are never
// offered; a local engine's container is left as it is.
func TestRemoteEngineDialsItsHostAddress(t *testing.T) {
	t.Parallel()
	c := func() watcher.Container {
		return watcher.Container{
			Published: map[string]string{"8080/tcp": "127.0.0.1:49153", "53/udp": "[::1]:49154"},
			Networks:  []watcher.Network{{Name: "bridge", IP: netip.MustParseAddr("172.17.0.2")}},
		}
	}
	remote := &Docker{hostAddr: netip.MustParseAddr("192.0.2.7")}
	got := remote.remote(c())
	want := map[string]string{"8080/tcp": "192.0.2.7:49153", "53/udp": "192.0.2.7:49154"}
	if !reflect.DeepEqual(got.Published, want) || got.Networks != nil {
		t.Fatalf("remote: published %v networks %v; want %v and none", got.Published, got.Networks, want)
	}
	if local := (&Docker{}).remote(c()); !reflect.DeepEqual(local, c()) {
		t.Fatalf("local engine's container changed: %+v", local)
	}
}
