// Package apispec holds api/openapi.yaml, the HTTP contract of the service, so the binary can serve it and tests can
// check the router and the responses against it.
package apispec

import _ "embed"

// YAML is the OpenAPI document.
//
//go:embed openapi.yaml
var YAML []byte
