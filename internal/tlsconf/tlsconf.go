package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/upu/upu/internal/confcheck"
)

// ErrBadConfig is wrapped by every problem with the TLS settings or files.
var ErrBadConfig = errors.New("upu: bad tls config")

// Config names the PEM files. All empty: TLS is off.
type Config struct {
	// CertFile and KeyFile are the node's certificate (chain) and key.
	CertFile, KeyFile string
	// CAFile holds the certificates that sign peers' and clients'
	// certificates; a dialer verifies servers against it.
	CAFile string
	// ClientAuth requires every connecting side to present a certificate
	// signed by CAFile (mutual TLS).
	ClientAuth bool
}

// Enabled reports whether any TLS setting is given.
func (c Config) Enabled() bool {
	return c.CertFile != "" || c.KeyFile != "" || c.CAFile != "" || c.ClientAuth
}

// Validate reports every problem for a server's settings, the files read
// and checked as Load would.
func (c Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	_, err := load(c, true)
	return err
}

// material is one loading of the files.
type material struct {
	cert   *tls.Certificate // nil for a dialer without a certificate
	pool   *x509.CertPool   // nil: the system's roots
	server *tls.Config      // built once per loading; nil without a cert
}

// load reads the files, reporting every problem; server says a
// certificate is required.
func load(c Config, server bool) (*material, error) {
	var l confcheck.List
	m := &material{}
	switch {
	case c.CertFile == "" && c.KeyFile == "" && server:
		l.Add("tls-cert", c.CertFile, "a TLS listener needs a certificate and its key")
	case c.CertFile == "" && c.KeyFile != "":
		l.Add("tls-cert", c.CertFile, "--tls-key is set without its certificate")
	case c.KeyFile == "" && c.CertFile != "":
		l.Add("tls-key", c.KeyFile, "--tls-cert is set without its key")
	case c.CertFile != "":
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			// The error names files and a reason, never the key's bytes.
			l.Add("tls-cert", c.CertFile, fmt.Sprintf("with key %s: %v", c.KeyFile, err))
		} else {
			m.cert = &cert
		}
	}
	if c.ClientAuth && c.CAFile == "" {
		l.Add("tls-ca", c.CAFile, "--tls-client-auth verifies clients against a CA: set --tls-ca")
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		switch {
		case err != nil:
			l.Add("tls-ca", c.CAFile, err.Error())
		default:
			m.pool = x509.NewCertPool()
			if !m.pool.AppendCertsFromPEM(pem) {
				l.Add("tls-ca", c.CAFile, "no PEM certificate in the file")
			}
		}
	}
	if err := l.Err(ErrBadConfig); err != nil {
		return nil, err
	}
	if m.cert != nil {
		m.server = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*m.cert}}
		if c.ClientAuth {
			m.server.ClientAuth, m.server.ClientCAs = tls.RequireAndVerifyClientCert, m.pool
		}
	}
	return m, nil
}

// Store holds the current material.
type Store struct {
	cfg    Config
	server bool
	cur    atomic.Pointer[material]
}

// NewServer loads a listener's material: a certificate is required.
func NewServer(cfg Config) (*Store, error) { return newStore(cfg, true) }

// NewClient loads a dialer's material: the CA (none: the system's roots)
// and, for mutual TLS, a certificate.
func NewClient(cfg Config) (*Store, error) { return newStore(cfg, false) }

func newStore(cfg Config, server bool) (*Store, error) {
	m, err := load(cfg, server)
	if err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg, server: server}
	s.cur.Store(m)
	return s, nil
}

// Reload reads the files again and, if they are good, makes new
// handshakes use them; it returns the new certificate's expiry (zero
// without one). On an error the old material stays.
func (s *Store) Reload() (time.Time, error) {
	m, err := load(s.cfg, s.server)
	if err != nil {
		return time.Time{}, err
	}
	s.cur.Store(m)
	return s.NotAfter(), nil
}

// NotAfter is the current certificate's expiry; zero without one.
func (s *Store) NotAfter() time.Time {
	m := s.cur.Load()
	if m.cert == nil || m.cert.Leaf == nil {
		return time.Time{}
	}
	return m.cert.Leaf.NotAfter
}

// ServerConfig is a listener's config; each handshake takes the material
// current then.
func (s *Store) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			if m := s.cur.Load(); m.server != nil {
				return m.server, nil
			}
			return nil, fmt.Errorf("%w: no certificate loaded", ErrBadConfig)
		},
	}
}

// ClientConfig is a dialer's config for a server named serverName (a
// host name or an IP address, checked against its certificate), with the
// CA and certificate current now; the certificate it presents is read at
// each handshake.
func (s *Store) ClientConfig(serverName string) *tls.Config {
	m := s.cur.Load()
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName, RootCAs: m.pool}
	if m.cert != nil {
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return s.cur.Load().cert, nil
		}
	}
	return c
}
