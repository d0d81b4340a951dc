package templating

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// One render's budget. Go cannot recover from running out of memory, so
// every operation that builds a string or a list asks the budget for the
// bytes it is about to allocate, before allocating them. The budget counts
// everything one render builds (also what the garbage collector may have
// freed since), so it bounds both the peak and the work.
const (
	maxRenderBytes      = 64 << 20         // bytes built by one render
	maxLoopIterations   = 100_000          // loop passes in one render (a pass costs gonja microseconds)
	defaultRenderTime   = 10 * time.Second // deadline when the caller sets none sooner
	listItemBytes       = 16               // what one list item costs (an interface value)
	maxRenderValueDepth = 100              // nesting of a value printed, pprinted or dumped to JSON
)

// budget is the part of renderState that limits work.
type budget struct {
	ctx        context.Context
	max        int64 // bytes
	left       int64 // bytes
	iterations int
}

func newBudget(ctx context.Context, maxBytes int64) budget {
	return budget{ctx: ctx, max: maxBytes, left: maxBytes}
}

// budgetError is the render budget being exhausted.
type budgetError struct{ what string }

func (e *budgetError) Error() string { return e.what }

// charge takes n bytes from the budget, or says that what would exceed it.
// It also stops the render when the context is done.
func (b *budget) charge(n float64, what string) error {
	if err := b.check(n, what); err != nil {
		return err
	}
	b.left -= int64(n)
	return nil
}

// check is charge without taking: for a bound on a result whose real size
// is charged once it is known.
func (b *budget) check(n float64, what string) error {
	if err := b.ctx.Err(); err != nil {
		return err
	}
	if n > float64(b.left) || math.IsNaN(n) {
		return &budgetError{what: fmt.Sprintf("%s exceeds the render budget: %.0f bytes needed, over the limit of %d bytes left of %d", what, n, b.left, b.max)}
	}
	return nil
}

// iterate counts one loop pass that will output literal bytes of text.
func (b *budget) iterate(literal int) error {
	b.iterations++
	if b.iterations > maxLoopIterations {
		return &budgetError{what: fmt.Sprintf("more than %d loop iterations in one render", maxLoopIterations)}
	}
	return b.charge(float64(literal), "loop output")
}

// resultSize is what a filter's or method's result cost: the bytes of a
// string, an estimate for a list or dict.
func resultSize(v *exec.Value) float64 {
	switch {
	case v == nil || v.IsNil() || v.IsError():
		return 0
	case v.IsString():
		return float64(len(v.String()))
	case v.IsList() || v.IsDict():
		return sizeOf(v, math.MaxFloat64)
	}
	return 0
}

// sizeOf estimates the bytes v takes when printed, stopping once the
// estimate passes limit (a value may share one big string many times over,
// so walking it whole could itself take long). Every item counts at least
// listItemBytes, which bounds the walk by limit/listItemBytes steps.
func sizeOf(v *exec.Value, limit float64) float64 {
	total := 0.0
	var walk func(v *exec.Value, depth int)
	walk = func(v *exec.Value, depth int) {
		if total > limit {
			return
		}
		switch {
		case v == nil || v.IsNil():
			total += 4
		case v.IsString():
			total += float64(len(v.String())) + 2
		case v.IsList() || v.IsDict():
			if depth > maxRenderValueDepth {
				total = math.Inf(1)
				return
			}
			total += 2
			v.Iterate(func(_, _ int, key, value *exec.Value) bool {
				total += listItemBytes
				walk(key, depth+1)
				if value != nil {
					walk(value, depth+1)
				}
				return total <= limit
			}, func() {})
		default:
			total += 24
		}
	}
	walk(v, 0)
	return total
}
