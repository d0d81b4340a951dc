//go:build race

package scheduler_test

// raceEnabled: this test binary runs under the race detector, which slows
// the code it instruments several times over: timings measured here mean
// nothing.
const raceEnabled = true
