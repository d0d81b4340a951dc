// Package parallel runs independent pieces of CPU-bound work (parsing DAG
// files, say) GOMAXPROCS at a time.
package parallel

import (
	"runtime"
	"sync"
)

// Each calls f(i) for every i in [0, n), at most GOMAXPROCS calls at a
// time, and returns when all have returned. f must be safe to call
// concurrently for different i.
func Each(n int, f func(i int)) {
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(runtime.GOMAXPROCS(0), n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				f(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
}
