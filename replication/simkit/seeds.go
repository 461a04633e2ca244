package simkit

import "hash/fnv"

// Schedules returns the seeds a simulation test runs, and whether they are
// its whole default set: replay alone when it is not zero; otherwise n
// seeds derived from the test's name, where n is override when positive,
// else def, cut to a tenth when reduced (-short, the race detector).
// Seeds from the name stay the same from run to run, so a failure names
// a schedule that replays.
func Schedules(name string, def, override int, replay uint64, reduced bool) (seeds []uint64, full bool) {
	if replay != 0 {
		return []uint64{replay}, false
	}
	n := def
	if reduced {
		n = max(1, n/10)
	}
	if override > 0 {
		n = override
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	base := h.Sum64()
	seeds = make([]uint64, 0, n)
	for i := range n {
		seeds = append(seeds, base+uint64(i)*0x9e3779b97f4a7c15|1)
	}
	return seeds, n >= def
}
