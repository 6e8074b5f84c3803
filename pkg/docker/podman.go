package docker

import (
	"context"
	"strings"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/moby/moby/client"
)

// Engine kinds, as engineKind caches them; kindUnknown until /version
// answered once.
const (
	kindUnknown int32 = iota
	kindDocker
	kindPodman
)

// podman reports whether the engine is Podman's Docker-compatible service.
// Its API version says nothing about behaviour there (Podman 5.8 reports
// 1.44 yet ignores stop's signal), so paths that differ ask this. The answer
// is cached once /version has answered; a failed call is asked again later
// and counts as Docker meanwhile.
func (d *Docker) podman(ctx context.Context) bool {
	switch d.kind.Load() {
	case kindPodman:
		return true
	case kindDocker:
		return false
	}
	v, err := d.cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return false
	}
	kind := kindDocker
	if isPodman(v) {
		kind = kindPodman
	}
	d.kind.Store(kind)
	return kind == kindPodman
}

// isPodman reads /version: Podman lists a "Podman Engine" component (its
// ping's "Server: Libpod/…" header is not exposed by the client), Docker an
// "Engine" one.
func isPodman(v client.ServerVersionResult) bool {
	for _, c := range v.Components {
		if strings.HasPrefix(c.Name, "Podman") {
			return true
		}
	}
	return false
}

// podmanGone reports Podman's answer to an inspect that races the
// container's removal: the name still resolved, the container was gone from
// its database by the time it read it, and it says so with a 500 ("container
// … does not exist in database: no such container"), not a 404. Only the
// text tells it apart from a real engine failure; taken for an error, it
// would keep the removed container listed until the next relist.
func podmanGone(err error) bool {
	return cerrdefs.IsInternal(err) && strings.Contains(err.Error(), "no such container")
}
