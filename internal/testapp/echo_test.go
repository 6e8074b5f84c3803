package main

import (
	"io"
	"net"
	"testing"
	"time"
)

func TestTCPEcho(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := newTCPEcho(ln)
	done := make(chan error, 1)
	go func() { done <- e.serve() }()

	c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo = %q, %v; want ping", buf, err)
	}

	// close must end the open connection rather than wait for the client.
	e.close()
	if err := <-done; err != nil {
		t.Errorf("serve after close: %v", err)
	}
	if _, err := c.Read(buf); err == nil {
		t.Error("connection still open after close")
	}
}

func TestUDPEcho(t *testing.T) {
	t.Parallel()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serveUDPEcho(pc) }()

	c, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "datagram")
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "datagram" {
		t.Fatalf("echo = %q, %v; want datagram", buf[:n], err)
	}
	pc.Close()
	if err := <-done; err != nil {
		t.Errorf("serveUDPEcho after close: %v", err)
	}
}
