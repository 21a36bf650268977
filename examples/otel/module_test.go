package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRootModuleStaysFree keeps OpenTelemetry and Prometheus in this module:
// leakproof's own go.mod, which its users inherit, must not require them.
func TestRootModuleStaysFree(t *testing.T) {
	path := filepath.Join("..", "..", "go.mod")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "module github.com/leakproof/leakproof\n") {
		t.Fatalf("%s is not leakproof's go.mod", path)
	}
	for i, line := range strings.Split(string(data), "\n") {
		for _, mod := range []string{"go.opentelemetry.io/", "github.com/prometheus/"} {
			if strings.Contains(line, mod) {
				t.Errorf("%s:%d: %s: leakproof's module must not depend on %s*; keep it in examples/otel", path, i+1, strings.TrimSpace(line), mod)
			}
		}
	}
}
