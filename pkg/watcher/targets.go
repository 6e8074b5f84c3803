package watcher

import "sleeper/pkg/labels"

// Targets is how a provider that drives workloads behind stub containers
// (a guest on a hypervisor, say) tells the registry what a stub stands for.
// The registry asks it about every parsed container; a container that
// stands for no other workload is driven by RegistryConfig.Runtime. It reads
// the parsed labels only and does no I/O: it is called under no lock but on
// every Apply.
type Targets interface {
	// Target returns the workload a container with this spec stands for.
	// ok is false when it stands for none (the container is its own
	// workload). err is a config error that names the label and value at
	// fault; the container is then not managed.
	Target(spec labels.Spec) (t Target, ok bool, err error)
}

// Target is the workload behind a stub container.
type Target struct {
	// Key names the workload: every stub naming the same workload has the
	// same Key, shares one Runtime and sleeps only with the others.
	Key string
	// Provider names the provider in the API ("provider" field).
	Provider string
	// Runtime drives the workload. Its methods are given the stub's ID,
	// which means nothing to it: it is bound to the workload it was built for.
	Runtime Runtime
}
