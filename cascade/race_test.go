//go:build race

package cascade

// raceEnabled scales the simulation down: the race detector makes it about
// ten times slower, and the simulation runs on one goroutine.
const raceEnabled = true
