// Package confcheck is what every package's Config.Validate shares: a
// problem with one field, named, and a list that collects them so that
// Validate reports every problem at once. A caller that embeds a package's
// Config (as node embeds the store's) reads the problems back with Fields and
// renames them after its own flags.
package confcheck
