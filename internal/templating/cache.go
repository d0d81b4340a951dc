package templating

import (
	"container/list"
	"sync"
)

// DefaultCacheBytes bounds a Cache whose MaxBytes is zero.
const DefaultCacheBytes = 64 << 20

// Cache remembers compiled templates (and templates that do not compile) by
// source, evicting the least recently used once the entries' estimated size
// passes MaxBytes. A scheduler parses the same files again and again, and
// every edit of a file brings new sources: a cache bounded by count alone
// (65,536 sources of up to 1 MiB) grew a scheduler by gigabytes. The zero
// value is ready to use; a Cache must not be copied after first use.
type Cache struct {
	MaxBytes int64 // 0: DefaultCacheBytes

	mu      sync.Mutex
	bytes   int64
	order   *list.List // of *cacheEntry, most recently used first
	entries map[string]*list.Element
}

type cacheEntry struct {
	src  string
	tpl  *Template
	err  error
	size int64
}

// Compile is Compile(src), answered from the cache when src was compiled
// before.
func (c *Cache) Compile(src string) (*Template, error) {
	c.mu.Lock()
	if el, ok := c.entries[src]; ok {
		c.order.MoveToFront(el)
		e := el.Value.(*cacheEntry)
		c.mu.Unlock()
		return e.tpl, e.err
	}
	c.mu.Unlock()

	// Compiled outside the lock: parsing can take a while, and two
	// goroutines compiling the same source at once only waste a little work.
	tpl, err := Compile(src)
	c.add(&cacheEntry{src: src, tpl: tpl, err: err, size: entrySize(src, tpl)})
	return tpl, err
}

// entrySize estimates the memory an entry holds: the source (map key and
// Template.src share it), and the syntax tree, tags and sites, which grow
// with the source.
func entrySize(src string, tpl *Template) int64 {
	size := int64(len(src)) + 256
	if tpl != nil {
		size += 8*int64(len(src)) + 64*int64(len(tpl.sites)+len(tpl.tags))
	}
	return size
}

func (c *Cache) add(e *cacheEntry) {
	limit := c.MaxBytes
	if limit <= 0 {
		limit = DefaultCacheBytes
	}
	if e.size > limit {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]*list.Element{}
		c.order = list.New()
	}
	if el, ok := c.entries[e.src]; ok {
		c.order.MoveToFront(el)
		return
	}
	c.entries[e.src] = c.order.PushFront(e)
	c.bytes += e.size
	for c.bytes > limit {
		oldest := c.order.Back()
		old := oldest.Value.(*cacheEntry)
		c.order.Remove(oldest)
		delete(c.entries, old.src)
		c.bytes -= old.size
	}
}

// Stats returns the number of entries and their estimated size in bytes.
func (c *Cache) Stats() (entries int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries), c.bytes
}
