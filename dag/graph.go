package dag

import "container/heap"

// TopoOrder returns the tasks so that every task comes after its
// upstreams; among tasks that are ready together, file order wins. Tasks
// caught in a cycle (only possible for a DAG that was not parsed) come
// last, in file order.
func (d *DAG) TopoOrder() []*Task {
	index := d.taskIndex()
	pending := make([]int, len(d.Tasks))
	down := make([][]int, len(d.Tasks))
	for i, t := range d.Tasks {
		for _, up := range uniqueStrings(t.Upstream) {
			if j, ok := index[up]; ok {
				pending[i]++
				down[j] = append(down[j], i)
			}
		}
	}
	ready := &intHeap{}
	for i, n := range pending {
		if n == 0 {
			heap.Push(ready, i)
		}
	}
	out := make([]*Task, 0, len(d.Tasks))
	placed := make([]bool, len(d.Tasks))
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		out = append(out, d.Tasks[i])
		placed[i] = true
		for _, j := range down[i] {
			pending[j]--
			if pending[j] == 0 {
				heap.Push(ready, j)
			}
		}
	}
	for i, t := range d.Tasks {
		if !placed[i] {
			out = append(out, t)
		}
	}
	return out
}

// Downstream returns the ids of the tasks that list taskID as an upstream,
// in file order.
func (d *DAG) Downstream(taskID string) []string {
	var out []string
	for _, t := range d.Tasks {
		for _, up := range t.Upstream {
			if up == taskID {
				out = append(out, t.ID)
				break
			}
		}
	}
	return out
}

// DownstreamAll returns the ids of every task that runs after taskID,
// directly or not, in file order.
func (d *DAG) DownstreamAll(taskID string) []string {
	down := map[string][]string{}
	for _, t := range d.Tasks {
		for _, up := range t.Upstream {
			down[up] = append(down[up], t.ID)
		}
	}
	return d.reachable(taskID, down)
}

// UpstreamAll returns the ids of every task that runs before taskID,
// directly or not, in file order.
func (d *DAG) UpstreamAll(taskID string) []string {
	up := map[string][]string{}
	for _, t := range d.Tasks {
		up[t.ID] = t.Upstream
	}
	return d.reachable(taskID, up)
}

// reachable returns the tasks reachable from id along next, in file order.
func (d *DAG) reachable(id string, next map[string][]string) []string {
	seen := map[string]bool{}
	stack := append([]string(nil), next[id]...)
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[v] {
			continue
		}
		seen[v] = true
		stack = append(stack, next[v]...)
	}
	var out []string
	for _, t := range d.Tasks {
		if seen[t.ID] && t.ID != id {
			out = append(out, t.ID)
		}
	}
	return out
}

// taskIndex maps task ids to their position in d.Tasks.
func (d *DAG) taskIndex() map[string]int {
	index := make(map[string]int, len(d.Tasks))
	for i, t := range d.Tasks {
		if _, dup := index[t.ID]; !dup {
			index[t.ID] = i
		}
	}
	return index
}

func uniqueStrings(list []string) []string {
	seen := make(map[string]bool, len(list))
	out := list[:0:0]
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// intHeap is a min-heap of task indexes.
type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
