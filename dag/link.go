package dag

import (
	"sort"
	"strings"
)

// linkTasks checks every upstream id, fills Task.Upstream (declared order,
// each id once) and reports cycles.
func (f *fileParser) linkTasks(d *DAG, tasks []*parsedTask) {
	byID := make(map[string]*parsedTask, len(tasks))
	ids := make([]string, 0, len(tasks))
	for _, t := range tasks {
		if t.ID != "" {
			byID[t.ID] = t
			ids = append(ids, t.ID)
		}
	}
	for _, t := range tasks {
		seen := map[string]bool{}
		for _, e := range t.upstream {
			if byID[e.up] == nil {
				if e.key == "upstream" {
					f.errorAt(e.line, e.col, "upstream: unknown task %s%s", quoteShort(e.up), didYouMean(e.up, ids))
				}
				continue
			}
			if !seen[e.up] {
				seen[e.up] = true
				t.Upstream = append(t.Upstream, e.up)
			}
		}
	}
	f.cycles(tasks, byID)
	d.Tasks = make([]*Task, len(tasks))
	for i, t := range tasks {
		d.Tasks[i] = t.Task
	}
}

// cycles reports each cycle once, named from its first task in file
// order ("a -> b -> c -> a"), at the declaration that closes it.
func (f *fileParser) cycles(tasks []*parsedTask, byID map[string]*parsedTask) {
	g := newGraph(len(tasks))
	for _, t := range tasks {
		for _, up := range t.Upstream {
			g.addEdge(byID[up].index, t.index)
		}
	}
	for _, comp := range g.cyclicComponents() {
		start := comp[0]
		path := g.shortestCycle(start, comp)
		names := make([]string, len(path)+1)
		for i, v := range path {
			names[i] = tasks[v].ID
		}
		names[len(path)] = tasks[start].ID
		closing := tasks[path[len(path)-1]].ID
		e := tasks[start].edgeFrom(closing)
		f.errorAt(e.line, e.col, "%s: cycle %s", e.key, strings.Join(names, " -> "))
	}
}

// edgeFrom returns the first declaration of upstream id up.
func (t *parsedTask) edgeFrom(up string) edge {
	for _, e := range t.upstream {
		if e.up == up {
			return e
		}
	}
	return edge{up: up, key: "upstream", line: t.Line, col: t.Column}
}

// graph is a directed graph over task indexes, edges upstream -> downstream.
type graph struct {
	down [][]int
}

func newGraph(n int) *graph { return &graph{down: make([][]int, n)} }

func (g *graph) addEdge(up, down int) { g.down[up] = append(g.down[up], down) }

// cyclicComponents returns the strongly connected components that hold a
// cycle, each sorted by index, ordered by their first index (Tarjan's
// algorithm, iterative so deep graphs cannot exhaust the stack).
func (g *graph) cyclicComponents() [][]int {
	n := len(g.down)
	index := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i] = -1
	}
	var comps [][]int
	var sccStack []int
	next := 0
	type frame struct{ v, child int }
	for root := 0; root < n; root++ {
		if index[root] >= 0 {
			continue
		}
		frames := []frame{{root, 0}}
		index[root], low[root] = next, next
		next++
		sccStack = append(sccStack, root)
		onStack[root] = true
		for len(frames) > 0 {
			fr := &frames[len(frames)-1]
			v := fr.v
			if fr.child < len(g.down[v]) {
				w := g.down[v][fr.child]
				fr.child++
				switch {
				case index[w] < 0:
					index[w], low[w] = next, next
					next++
					sccStack = append(sccStack, w)
					onStack[w] = true
					frames = append(frames, frame{w, 0})
				case onStack[w]:
					low[v] = min(low[v], index[w])
				}
				continue
			}
			frames = frames[:len(frames)-1]
			if len(frames) > 0 {
				parent := frames[len(frames)-1].v
				low[parent] = min(low[parent], low[v])
			}
			if low[v] != index[v] {
				continue
			}
			var comp []int
			for {
				w := sccStack[len(sccStack)-1]
				sccStack = sccStack[:len(sccStack)-1]
				onStack[w] = false
				comp = append(comp, w)
				if w == v {
					break
				}
			}
			if len(comp) > 1 || g.hasEdge(v, v) {
				sort.Ints(comp)
				comps = append(comps, comp)
			}
		}
	}
	sort.Slice(comps, func(i, j int) bool { return comps[i][0] < comps[j][0] })
	return comps
}

func (g *graph) hasEdge(a, b int) bool {
	for _, w := range g.down[a] {
		if w == b {
			return true
		}
	}
	return false
}

// shortestCycle returns the vertices of a shortest cycle through start
// inside comp, starting with start (breadth-first search).
func (g *graph) shortestCycle(start int, comp []int) []int {
	in := make(map[int]bool, len(comp))
	for _, v := range comp {
		in[v] = true
	}
	prev := map[int]int{}
	queue := []int{start}
	visited := map[int]bool{start: true}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, w := range g.down[v] {
			if w == start {
				path := []int{v}
				for path[0] != start {
					path = append([]int{prev[path[0]]}, path...)
				}
				return path
			}
			if in[w] && !visited[w] {
				visited[w] = true
				prev[w] = v
				queue = append(queue, w)
			}
		}
	}
	return []int{start}
}
