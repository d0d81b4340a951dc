// Package gen holds the types and routing generated from api/openapi.yaml
// by oapi-codegen (strict server, net/http). Do not edit api.gen.go; change
// the spec and run `go generate ./internal/api/...`.
package gen

//go:generate go tool oapi-codegen -config config.yaml ../../../api/openapi.yaml
