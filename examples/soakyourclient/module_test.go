package inventory

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestUsesOnlyThePublicAPI: this module sits under leakproof's import path,
// so Go would let it import leakproof's internal packages; a user's module
// cannot. Every import of leakproof here must be public.
func TestUsesOnlyThePublicAPI(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files (%v)", err)
	}
	for _, f := range files {
		parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range parsed.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/leakproof/leakproof/") && (strings.Contains(path, "/internal/") || strings.HasSuffix(path, "/internal")) {
				t.Errorf("%s imports %s: a user's module cannot", f, path)
			}
		}
	}
}
