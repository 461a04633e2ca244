//go:build race

package replication

// raceEnabled scales the simulation down: the race detector makes it about
// ten times slower, and what it checks (data races in the Replicator) does
// not need a thousand schedules.
const raceEnabled = true
