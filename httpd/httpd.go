package httpd

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"

	"github.com/upu/upu/internal/confcheck"
	"github.com/upu/upu/internal/logging"
)

// Config configures the endpoint. Zero fields take their defaults.
type Config struct {
	// ReadHeaderTimeout bounds how long a client may take to send a
	// request's headers.
	ReadHeaderTimeout time.Duration
	// Pprof serves Go's profiler under /debug/pprof/. It is off unless set:
	// a profile shows the process's memory and code paths to whoever can
	// reach the address.
	Pprof bool
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{ReadHeaderTimeout: 10 * time.Second} }

// ErrInvalidConfig is wrapped by every problem Config.Validate reports.
var ErrInvalidConfig = errors.New("upu: invalid http config")

// Validate reports every invalid field.
func (c Config) Validate() error {
	var l confcheck.List
	if c.ReadHeaderTimeout < 0 {
		l.Add("ReadHeaderTimeout", c.ReadHeaderTimeout, "must not be negative")
	}
	return l.Err(ErrInvalidConfig)
}

// Health says whether the node serves (/healthz) and whether it is ready to
// take traffic (/readyz): for a node of a domain, caught up with it.
type Health interface {
	Serving() bool
	// Ready returns false with the reason when the node should not yet be
	// sent traffic.
	Ready() (ready bool, why string)
}

// Deps are what the endpoint serves: the metrics, the node's health, and
// the logger its errors go to.
type Deps struct {
	Gatherer prometheus.Gatherer
	Health   Health
	Logger   *logging.Logger
}

// Server is the HTTP endpoint.
type Server struct {
	srv  *http.Server
	log  *logrus.Entry
	ln   net.Listener
	done sync.WaitGroup
}

// New makes the endpoint; Serve starts it.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Gatherer == nil || deps.Health == nil || deps.Logger == nil {
		return nil, errors.New("httpd: Deps.Gatherer, Deps.Health and Deps.Logger are required")
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(deps.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !deps.Health.Serving() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ready, why := deps.Health.Ready(); !ready {
			http.Error(w, why, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return &Server{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: cmp.Or(cfg.ReadHeaderTimeout, DefaultConfig().ReadHeaderTimeout),
			ErrorLog:          deps.Logger.StdLogger("http"),
		},
		log: deps.Logger.Component("http"),
	}, nil
}

// Serve answers requests on ln until Close.
func (s *Server) Serve(ln net.Listener) {
	s.ln = ln
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.WithError(err).WithField(logging.FieldEvent, logging.EventListenerError).Error("http listener failed")
		}
	}()
}

// Addr is the listener's address; nil before Serve.
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close stops the endpoint, letting requests in flight finish until ctx
// ends, and waits for the serving goroutine.
func (s *Server) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	s.done.Wait()
	return err
}
