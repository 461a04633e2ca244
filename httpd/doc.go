// Package httpd is the node's HTTP endpoint: /metrics (Prometheus, from
// the node's own registry), /healthz (ok while the node serves, 503 once
// it shuts down) and /debug/pprof. It serves on a listener the node gives
// it and owns the one goroutine that serves, which Close waits for.
package httpd
