package store

import (
	"fmt"
	"strings"
)

// filter builds a WHERE clause from optional conditions, each with its own
// numbered argument, for the list statements whose filters are optional.
type filter struct {
	where []string
	args  []any
}

// add appends a condition; %d in cond becomes the argument's number.
func (f *filter) add(cond string, v any) {
	f.args = append(f.args, v)
	f.where = append(f.where, fmt.Sprintf(cond, len(f.args)))
}

// clause is " WHERE …" (empty without conditions).
func (f *filter) clause() string {
	if len(f.where) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(f.where, " AND ")
}

// page appends LIMIT and OFFSET arguments and returns their clause.
func (f *filter) page(limit, offset int) string {
	f.args = append(f.args, limit, offset)
	return fmt.Sprintf(" LIMIT $%d OFFSET $%d", len(f.args)-1, len(f.args))
}
