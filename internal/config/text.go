package config

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
)

var errEOF = io.EOF

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func upper(s string) string { return strings.ToUpper(s) }

// envName turns a connection id into its env var suffix: "kubernetes_default" → "KUBERNETES_DEFAULT".
func envName(id string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(id))
}

func yamlJSON(s string, v any) error { return json.Unmarshal([]byte(s), v) }
