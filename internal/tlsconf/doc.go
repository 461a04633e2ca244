// Package tlsconf loads a node's TLS material (certificate, key and CA
// from PEM files) and hands out *tls.Config for listeners and dialers.
//
// The material lives behind an atomic pointer that the configs read at
// each handshake (GetConfigForClient on servers, GetClientCertificate on
// dialers), so that [Store.Reload] swaps it for new handshakes while open
// connections carry on with what they negotiated.
package tlsconf
