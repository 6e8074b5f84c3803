package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"
)

// testappPackage is the app the images run; see its package doc for its knobs.
const testappPackage = "sleeper/internal/testapp"

// buildTimeout bounds compiling the app plus building one image. A cold Go build cache
// takes a few seconds; anything near this limit means something hangs.
const buildTimeout = 3 * time.Minute

// dockerfileBase is shared by every variant. STOPSIGNAL is spelled out, although it is
// the default, because the app's exit code 0 on docker stop depends on it.
// No "# syntax=" line: it would make the engine pull a frontend image, and there is no
// registry here. The daemon builds with the legacy builder (BuildKit needs buildx).
const dockerfileBase = `FROM scratch
COPY app /app
EXPOSE 8080
STOPSIGNAL SIGTERM
`

// healthcheckLine is exec form because scratch has no shell; intervals are short so
// tests see a health state within seconds instead of the 30 s default. It has no
// --start-period: the default is already 0, and the 20.10 builder rejects an explicit
// "0s" ("cannot be less than 1ms").
const healthcheckLine = `HEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD ["/app","-healthcheck"]
`

const entrypointLine = `ENTRYPOINT ["/app"]
`

// Image caches: package-level state, which the house rules forbid elsewhere, is
// accepted here because this is test-only code and a test binary should compile the
// app and build each image once however many tests ask. Failures are cached too, so
// every test that needs the image reports the same build error.
var (
	testappBinary = sync.OnceValues(buildBinary)
	plainImage    = sync.OnceValues(func() (string, error) {
		return ensureImage("sleeper-testapp", dockerfileBase+entrypointLine)
	})
	healthImage = sync.OnceValues(func() (string, error) {
		return ensureImage("sleeper-testapp-health", dockerfileBase+healthcheckLine+entrypointLine)
	})
)

// Image returns the tag of the testapp image, building it on first use in this test
// process. The tag is sleeper-testapp:<first 12 hex digits of the binary's sha256>.
func Image(t testing.TB) string {
	t.Helper()
	tag, err := plainImage()
	if err != nil {
		t.Fatalf("dockertest: testapp image: %v", err)
	}
	return tag
}

// HealthImage is Image with a HEALTHCHECK that probes /healthz every second, one
// failure making the container unhealthy. Its tag is sleeper-testapp-health:<hash>.
func HealthImage(t testing.TB) string {
	t.Helper()
	tag, err := healthImage()
	if err != nil {
		t.Fatalf("dockertest: testapp health image: %v", err)
	}
	return tag
}

// buildBinary compiles the testapp statically for Linux on this architecture.
func buildBinary() ([]byte, error) { return goBuildStatic("", testappPackage) }

// goBuildStatic compiles pkg (from dir, "" for the current one) as a static
// Linux binary for this architecture and returns its bytes: static because
// scratch has no libc, Linux even when tests run on a Mac against a Linux VM,
// -trimpath so the bytes, and so the image tag, do not depend on where the
// checkout lives. The temporary directory is removed at once: the bytes are
// all an image build needs, and a test-scoped TempDir would vanish with the
// first test.
func goBuildStatic(dir, pkg string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "sleeper-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "bin")

	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	// "go test" puts its own toolchain first on PATH, so "go" is the one running us.
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %w\n%s", pkg, err, msg)
	}
	return os.ReadFile(out)
}

// ensureImage returns repo:<hash>, building it unless the engine already has it. The
// tag hashes only the binary; the Dockerfile of each repository is fixed in this file.
func ensureImage(repo, dockerfile string) (string, error) {
	bin, err := testappBinary()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(bin)
	tag := repo + ":" + hex.EncodeToString(sum[:])[:12]

	return tag, buildImage(tag, []tarFile{
		{name: "Dockerfile", mode: 0o644, data: []byte(dockerfile)},
		{name: "app", mode: 0o755, data: bin},
	})
}

// buildImage builds tag from the given context files with the legacy builder,
// unless the engine already has it.
func buildImage(tag string, files []tarFile) error {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cli, err := connect(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()

	_, err = cli.ImageInspect(ctx, tag)
	switch {
	case err == nil:
		return nil
	case !cerrdefs.IsNotFound(err):
		return fmt.Errorf("inspect image %s: %w", tag, err)
	}
	buildContext, err := contextTar(files)
	if err != nil {
		return err
	}
	res, err := cli.ImageBuild(ctx, buildContext, client.ImageBuildOptions{
		Tags:        []string{tag},
		Version:     build.BuilderV1,
		Remove:      true,
		ForceRemove: true,
	})
	if err != nil {
		return fmt.Errorf("build image %s: %w", tag, err)
	}
	defer res.Body.Close()
	if err := readBuildOutput(res.Body); err != nil {
		return fmt.Errorf("build image %s: %w", tag, err)
	}
	return nil
}

type tarFile struct {
	name string
	mode int64
	data []byte
}

// contextTar builds the in-memory build context.
func contextTar(files []tarFile) (io.Reader, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("build context %s: %w", f.name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("build context %s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	return &buf, nil
}

// buildMessage is the part of the build stream's JSON lines we read.
type buildMessage struct {
	Stream      string `json:"stream"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
}

// readBuildOutput drains the whole stream: the engine reports a failed build as an
// "error" message inside a 200 response, so only reading to the end tells success.
func readBuildOutput(r io.Reader) error {
	var log strings.Builder
	dec := json.NewDecoder(r)
	for {
		var m buildMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read build output: %w\n%s", err, log.String())
		}
		log.WriteString(m.Stream)
		if m.Error != "" || m.ErrorDetail != nil {
			msg := m.Error
			if msg == "" {
				msg = m.ErrorDetail.Message
			}
			return fmt.Errorf("engine reported: %s\n%s", msg, log.String())
		}
	}
}
