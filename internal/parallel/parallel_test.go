package parallel

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func TestEachCallsEveryIndexOnceAtMostGOMAXPROCSAtATime(t *testing.T) {
	t.Parallel()
	const n = 200
	var calls [n]atomic.Int32
	var running, peak atomic.Int32
	Each(n, func(i int) {
		r := running.Add(1)
		for {
			p := peak.Load()
			if r <= p || peak.CompareAndSwap(p, r) {
				break
			}
		}
		time.Sleep(100 * time.Microsecond)
		calls[i].Add(1)
		running.Add(-1)
	})
	for i := range calls {
		if c := calls[i].Load(); c != 1 {
			t.Fatalf("f(%d) called %d times", i, c)
		}
	}
	if p := int(peak.Load()); p > runtime.GOMAXPROCS(0) || p < 1 {
		t.Errorf("%d calls at once, GOMAXPROCS %d", p, runtime.GOMAXPROCS(0))
	}
	Each(0, func(int) { t.Error("f called for n = 0") })
}
