//go:build tools

// Package tools pins Jaeger, the trace backend the tracing tests send to.
package tools

import (
	_ "github.com/jaegertracing/jaeger/cmd/jaeger"
)
