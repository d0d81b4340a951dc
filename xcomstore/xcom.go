// Package xcomstore is the contract of an XCom value — a small JSON result a
// task passes to its downstreams: the default key, the size limit, and how a
// value is encoded for storage and decoded for templates. It does no I/O;
// the values are stored by internal/store (store/xcom.go), with the task
// instance's success, in the same transaction. Operators use it without
// depending on the store.
package xcomstore

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// ReturnValue is the default key, as Airflow's.
const ReturnValue = "return_value"

// DefaultMaxSize is the largest value accepted (1 MiB).
const DefaultMaxSize = 1 << 20

// Encode turns a value into JSON, refusing values over maxSize bytes.
func Encode(key string, v any, maxSize int) (json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("xcom %q: value is not JSON: %w", key, err)
	}
	if maxSize > 0 && len(b) > maxSize {
		return nil, fmt.Errorf("xcom %q: value is %d bytes, over the %d-byte limit", key, len(b), maxSize)
	}
	return b, nil
}

// Decode decodes a stored value with numbers kept exact (1 stays 1).
func Decode(raw json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}
