// Package clock owns the notion of time used by UPU's components: the
// current time and the timers and tickers that drive timeouts, heartbeats,
// purges and log rotation.
//
// Code that waits or measures takes a [Clock] instead of calling the time
// package, so that tests can use a [Fake], move time forward with
// [Fake.Advance] and see every due timer fire at once, in deadline order,
// without sleeping. Production code passes [Real].
package clock
