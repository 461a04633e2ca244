//go:build race

package replication

// raceEnabled scales the simulation down: the race detector makes it about
// ten times slower, and what it checks (data races in the Replicator) does
// not need a thousand schedules. It also skips allocation counts, which vary
// under the detector (sync.Pool drops items at random).
const raceEnabled = true
