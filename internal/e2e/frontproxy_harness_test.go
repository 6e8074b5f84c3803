package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sleeper/internal/await"
	"sleeper/internal/syncbuf"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A front proxy here is a real Caddy, nginx or Traefik process run by the
// test on a loopback port, terminating TLS with a certificate made for the
// test and forwarding to the stack's sleeper over plain HTTP, the way most
// people run sleeper behind the proxy they already have.

// traefikVersion is the Traefik the harness runs; it is built from its
// module, once, into traefikBinary's cache directory.
const traefikVersion = "v3.7.13"

// clientAddr is the address the test's client connects to the front proxy
// from: not 127.0.0.1, so that the client's address and the proxy's (which
// sleeper sees) differ in X-Forwarded-For.
const clientAddr = "127.0.0.2"

// frontProxy is one running front proxy.
type frontProxy struct {
	name string
	addr string // 127.0.0.1:port, TLS
	pool *x509.CertPool
}

// url is an https URL for host through the proxy; the client dials the
// proxy whatever the host.
func (fp *frontProxy) url(host, path string) string {
	_, port, _ := net.SplitHostPort(fp.addr)
	return "https://" + net.JoinHostPort(host, port) + path
}

// dial connects to the proxy from clientAddr.
func (fp *frontProxy) dial(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientAddr)}, Timeout: 5 * time.Second}
	return d.DialContext(ctx, "tcp", fp.addr)
}

// client is an HTTP/1.1 client that trusts the test certificate and sends
// every request to the proxy. HTTP/1.1 because an Upgrade needs it.
func (fp *frontProxy) client() *http.Client {
	return &http.Client{
		Timeout: 90 * time.Second,
		Transport: &http.Transport{
			DialContext:     func(ctx context.Context, _, _ string) (net.Conn, error) { return fp.dial(ctx) },
			TLSClientConfig: &tls.Config{RootCAs: fp.pool, NextProtos: []string{"http/1.1"}},
		},
	}
}

// tlsDial opens a TLS connection to the proxy for host, for raw HTTP/1.1.
func (fp *frontProxy) tlsDial(t *testing.T, host string) *tls.Conn {
	t.Helper()
	raw, err := fp.dial(context.Background())
	if err != nil {
		t.Fatalf("dial %s: %v", fp.name, err)
	}
	conn := tls.Client(raw, &tls.Config{RootCAs: fp.pool, ServerName: host, NextProtos: []string{"http/1.1"}})
	if err := conn.Handshake(); err != nil {
		raw.Close()
		t.Fatalf("TLS handshake with %s: %v", fp.name, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// testCert writes a self-signed certificate for hosts to dir and returns the
// file names and a pool that trusts it.
func testCert(t *testing.T, dir string, hosts []string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: hosts[0]},
		DNSNames:              hosts,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeTestFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeTestFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func writeTestFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startProcess runs a proxy in the foreground until the test ends, and
// waits for it to accept connections on addr. Its output is logged when the
// test fails.
func startProcess(t *testing.T, name, addr string, env []string, bin string, args ...string) {
	t.Helper()
	out := &syncbuf.Buffer{}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			t.Fatalf("%s exited before listening: %v\n%s", name, err, out.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen on %s\n%s", name, addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lookPath finds a proxy's binary or skips the test with how to get it.
func lookPath(t *testing.T, bin, how string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	if err != nil {
		t.Skipf("%s not found (%v): %s", bin, err, how)
	}
	return p
}

// upstreamAddr is sleeper's host:port, as the proxies are configured.
func (s *stack) upstreamAddr() string {
	return strings.TrimPrefix(s.base, "http://")
}

// startCaddy runs Debian's caddy: one site for hosts, reverse_proxy to
// sleeper. Caddy sets X-Forwarded-For/Proto/Host itself and streams
// text/event-stream responses without buffering.
func startCaddy(t *testing.T, s *stack, hosts []string) *frontProxy {
	t.Helper()
	bin := lookPath(t, "caddy", "apt-get install caddy")
	dir := t.TempDir()
	certFile, keyFile, pool := testCert(t, dir, hosts)
	addr := "127.0.0.1:" + freePort(t)
	_, port, _ := net.SplitHostPort(addr)
	var sites []string
	for _, h := range hosts {
		sites = append(sites, "https://"+net.JoinHostPort(h, port))
	}
	conf := fmt.Sprintf(`{
	admin off
	auto_https off
	skip_install_trust
	storage file_system %[1]s/data
	default_bind 127.0.0.1
}
%[2]s {
	tls %[3]s %[4]s
	reverse_proxy %[5]s
}
`, dir, strings.Join(sites, ", "), certFile, keyFile, s.upstreamAddr())
	caddyfile := filepath.Join(dir, "Caddyfile")
	writeTestFile(t, caddyfile, conf)
	env := []string{"HOME=" + dir, "XDG_DATA_HOME=" + dir + "/data", "XDG_CONFIG_HOME=" + dir + "/config"}
	startProcess(t, "caddy", addr, env, bin, "run", "--config", caddyfile, "--adapter", "caddyfile")
	return &frontProxy{name: "caddy", addr: addr, pool: pool}
}

// startNginx runs Debian's nginx in the foreground with its own prefix,
// config and temp dirs. The settings are the README's: HTTP/1.1 with the
// Upgrade headers, X-Forwarded-*, and a read timeout longer than a wake.
// Buffering stays at nginx's default: sleeper's event stream sends
// X-Accel-Buffering: no, which turns it off for that response.
func startNginx(t *testing.T, s *stack, hosts []string) *frontProxy {
	t.Helper()
	bin := lookPath(t, "nginx", "apt-get install nginx-light")
	dir := t.TempDir()
	certFile, keyFile, pool := testCert(t, dir, hosts)
	addr := "127.0.0.1:" + freePort(t)
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log stderr notice;
events { worker_connections 256; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	map $http_upgrade $connection_upgrade {
		default upgrade;
		''      "";
	}
	server {
		listen %[2]s ssl;
		server_name %[3]s;
		ssl_certificate %[4]s;
		ssl_certificate_key %[5]s;
		location / {
			proxy_pass http://%[6]s;
			proxy_http_version 1.1;
			proxy_set_header Host $host;
			proxy_set_header Upgrade $http_upgrade;
			proxy_set_header Connection $connection_upgrade;
			proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Proto $scheme;
			proxy_set_header X-Forwarded-Host $host;
			proxy_read_timeout 1h;
		}
	}
}
`, dir, addr, strings.Join(hosts, " "), certFile, keyFile, s.upstreamAddr())
	confFile := filepath.Join(dir, "nginx.conf")
	writeTestFile(t, confFile, conf)
	startProcess(t, "nginx", addr, nil, bin, "-e", "stderr", "-p", dir, "-c", confFile)
	return &frontProxy{name: "nginx", addr: addr, pool: pool}
}

// traefikBinary returns the cached Traefik build, or skips the test saying
// how to get one. $SLEEPER_TRAEFIK names another binary.
func traefikBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SLEEPER_TRAEFIK"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skipf("no home directory for the Traefik cache: %v", err)
	}
	dir := filepath.Join(home, ".cache", "sleeper-test", "traefik-"+traefikVersion)
	bin := filepath.Join(dir, "traefik")
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("Traefik %s not built (%s absent). Build it once with: "+
			"go mod download -json github.com/traefik/traefik/v3@%s, copy its Dir somewhere writable, "+
			"then go build -o %s ./cmd/traefik there (go install @version refuses its replace directives); "+
			"or set SLEEPER_TRAEFIK to a traefik v3 binary", traefikVersion, bin, traefikVersion, bin)
	}
	return bin
}

// startTraefik runs Traefik v3 with the file provider: one router for
// hosts on a TLS entry point, its service sleeper.
func startTraefik(t *testing.T, s *stack, hosts []string) *frontProxy {
	t.Helper()
	bin := traefikBinary(t)
	dir := t.TempDir()
	certFile, keyFile, pool := testCert(t, dir, hosts)
	addr := "127.0.0.1:" + freePort(t)
	var rule []string
	for _, h := range hosts {
		rule = append(rule, "Host(`"+h+"`)")
	}
	dynamic := fmt.Sprintf(`http:
  routers:
    app:
      rule: %q
      entryPoints: [websecure]
      service: sleeper
      tls: {}
  services:
    sleeper:
      loadBalancer:
        servers:
          - url: "http://%s"
tls:
  certificates:
    - certFile: %s
      keyFile: %s
`, strings.Join(rule, " || "), s.upstreamAddr(), certFile, keyFile)
	dynFile := filepath.Join(dir, "dynamic.yaml")
	writeTestFile(t, dynFile, dynamic)
	startProcess(t, "traefik", addr, nil, bin,
		"--global.checkNewVersion=false", "--global.sendAnonymousUsage=false",
		"--entryPoints.websecure.address="+addr,
		"--providers.file.filename="+dynFile, "--log.level=INFO")
	// The router may appear a moment after the listener: until then
	// Traefik itself answers "404 page not found".
	fp := &frontProxy{name: "traefik", addr: addr, pool: pool}
	c := fp.client()
	await.Eventually(t, 10*time.Second, "traefik's router", func() bool {
		resp, err := c.Get(fp.url(hosts[0], "/.sleeper/status"))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b) != "404 page not found\n"
	})
	return fp
}
