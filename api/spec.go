// Package api holds podflow's REST API description, api/openapi.yaml: the
// single source of the server's types and routing (internal/api/gen) and of
// its request validation, served at /api/v1/openapi.yaml.
package api

import _ "embed"

// Spec is api/openapi.yaml.
//
//go:embed openapi.yaml
var Spec []byte
