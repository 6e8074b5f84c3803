package dockertest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// sleeperPackage is the command the sleeper image runs.
const sleeperPackage = "./cmd/sleeper"

// sleeperDockerfile is the Dockerfile, relative to the module root, that users
// run to build an image from a local binary. The tests build from that very
// file, so an image that works in the tests is the image the docs describe.
const sleeperDockerfile = "deploy/Dockerfile.local"

// sleeperImage caches the build per test process, failures included, for the
// same reason as the testapp images in image.go.
var sleeperImage = sync.OnceValues(buildSleeperImage)

// SleeperImage returns the tag of an image of sleeper itself, compiled from this
// checkout and packed with deploy/Dockerfile.local, building it on first use in
// this test process. The tag is sleeper-test:<first 12 hex digits of the sha256
// of the binary and the Dockerfile>, so an image left by an earlier run with the
// same code is reused and an edit to either makes a new one.
func SleeperImage(t testing.TB) string {
	t.Helper()
	tag, err := sleeperImage()
	if err != nil {
		t.Fatalf("dockertest: sleeper image: %v", err)
	}
	return tag
}

func buildSleeperImage() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	dockerfile, err := os.ReadFile(filepath.Join(root, sleeperDockerfile))
	if err != nil {
		return "", err
	}
	bin, err := goBuildStatic(root, sleeperPackage)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write(bin)
	h.Write(dockerfile)
	tag := "sleeper-test:" + hex.EncodeToString(h.Sum(nil))[:12]

	// The same context deploy/build-local.sh sends: the Dockerfile and the
	// binary named "sleeper" (deploy/.dockerignore drops everything else).
	return tag, buildImage(tag, []tarFile{
		{name: "Dockerfile", mode: 0o644, data: dockerfile},
		{name: "sleeper", mode: 0o755, data: bin},
	})
}

// moduleRoot finds the checkout from the test's working directory (its package
// directory): the binary and the Dockerfile must come from the code under test.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("go env GOMOD: not inside the sleeper module")
	}
	return filepath.Dir(gomod), nil
}

// SleeperBinary builds sleeper from this checkout into the test's temp dir
// and returns its path, for tests that run the real command on the host
// (its startup, flags and signals) rather than the packages it wires.
func SleeperBinary(t testing.TB) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatalf("dockertest: sleeper binary: %v", err)
	}
	bin, err := goBuildStatic(root, sleeperPackage)
	if err != nil {
		t.Fatalf("dockertest: sleeper binary: %v", err)
	}
	path := filepath.Join(t.TempDir(), "sleeper")
	if err := os.WriteFile(path, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}
