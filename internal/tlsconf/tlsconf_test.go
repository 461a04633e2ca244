package tlsconf_test

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/upu/upu/internal/testcert"
	"github.com/upu/upu/internal/tlsconf"
)

func TestBadConfig(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t)
	f := ca.Write(t, dir, "a", ca.Issue(t, "a", time.Hour))
	other := ca.Write(t, t.TempDir(), "b", ca.Issue(t, "b", time.Hour))
	junk := filepath.Join(dir, "junk")
	if err := os.WriteFile(junk, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  tlsconf.Config
	}{
		{"cert without key", tlsconf.Config{CertFile: f.Cert}},
		{"key without cert", tlsconf.Config{KeyFile: f.Key}},
		{"missing file", tlsconf.Config{CertFile: filepath.Join(dir, "none"), KeyFile: f.Key}},
		{"mismatched key", tlsconf.Config{CertFile: f.Cert, KeyFile: other.Key}},
		{"client auth without ca", tlsconf.Config{CertFile: f.Cert, KeyFile: f.Key, ClientAuth: true}},
		{"ca not pem", tlsconf.Config{CertFile: f.Cert, KeyFile: f.Key, CAFile: junk}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); !errors.Is(err, tlsconf.ErrBadConfig) {
				t.Fatalf("Validate = %v, want ErrBadConfig", err)
			}
		})
	}
	if err := (tlsconf.Config{CertFile: f.Cert, KeyFile: f.Key, CAFile: f.CA, ClientAuth: true}).Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestReload: a reload makes new handshakes present the new certificate
// while a connection opened before it goes on working.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t)
	first := ca.Issue(t, "node", time.Hour)
	f := ca.Write(t, dir, "node", first)
	srv, err := tlsconf.NewServer(tlsconf.Config{CertFile: f.Cert, KeyFile: f.Key, CAFile: f.CA, ClientAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := tlsconf.NewClient(tlsconf.Config{CertFile: f.Cert, KeyFile: f.Key, CAFile: f.CA})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() { // echo server; ends when ln closes
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 1)
				for {
					if _, err := c.Read(b); err != nil {
						return
					}
					c.Write(b)
				}
			}()
		}
	}()
	dial := func() *tls.Conn {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), cli.ClientConfig("127.0.0.1"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(5 * time.Second))
		return c
	}
	echo := func(c *tls.Conn) {
		t.Helper()
		b := []byte{7}
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(b); err != nil || b[0] != 7 {
			t.Fatalf("echo: %v %v", b, err)
		}
	}
	old := dial()
	echo(old)
	second := ca.Issue(t, "node", 2*time.Hour)
	ca.Write(t, dir, "node", second)
	exp, err := srv.Reload()
	if err != nil || !exp.Equal(second.NotAfter) {
		t.Fatalf("Reload = %v, %v; want %v", exp, err, second.NotAfter)
	}
	echo(old)
	fresh := dial()
	echo(fresh)
	if got := fresh.ConnectionState().PeerCertificates[0].NotAfter; !got.Equal(second.NotAfter) {
		t.Fatalf("new connection saw a certificate expiring %v, want %v", got, second.NotAfter)
	}
	if err := os.WriteFile(f.Key, []byte("broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Reload(); !errors.Is(err, tlsconf.ErrBadConfig) {
		t.Fatalf("Reload of a broken key = %v, want ErrBadConfig", err)
	}
	echo(dial()) // the old material stays
}
