// Package docs_test keeps docs/reference.md in step with the code: every
// value the code can emit or accept (event kinds, causes, problem and leak
// kinds, metric names and labels, policy config fields, CLI flags) is listed
// in the reference, and the reference lists nothing the code lacks.
package docs_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/leakproof/leakproof/internal/policy"
	"github.com/leakproof/leakproof/leaktest"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// section returns the first-column values of the tables under the "## "
// heading title in reference.md: each row's first cell, backquoted, one or
// more values separated by commas.
func section(t *testing.T, doc, title string) []string {
	t.Helper()
	start := strings.Index(doc, "\n## "+title+"\n")
	if start < 0 {
		t.Fatalf("reference.md has no section %q", title)
	}
	body := doc[start+len(title)+5:]
	if end := strings.Index(body, "\n## "); end >= 0 {
		body = body[:end]
	}
	var vals []string
	cell := regexp.MustCompile("`([^`]+)`")
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| ---") {
			continue
		}
		first := strings.SplitN(strings.TrimPrefix(line, "| "), " |", 2)[0]
		for _, m := range cell.FindAllStringSubmatch(first, -1) {
			vals = append(vals, m[1])
		}
	}
	if len(vals) == 0 {
		t.Fatalf("section %q lists no values", title)
	}
	return vals
}

// parseDir parses the non-test Go files of a package directory.
func parseDir(t *testing.T, dir string) []*ast.File {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", dir, "*.go"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no Go files in %s: %v", dir, err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

// consts returns the string values of the constants declared in dir whose
// type is typ (when typ is not empty) or whose name starts with prefix
// (when prefix is not empty).
func consts(t *testing.T, dir, typ, prefix string) []string {
	t.Helper()
	var vals []string
	for _, f := range parseDir(t, dir) {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				id, _ := vs.Type.(*ast.Ident)
				for i, name := range vs.Names {
					if typ != "" && (id == nil || id.Name != typ) {
						continue
					}
					if prefix != "" && !strings.HasPrefix(name.Name, prefix) {
						continue
					}
					if i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					vals = append(vals, v)
				}
			}
		}
	}
	if len(vals) == 0 {
		t.Fatalf("no constants of type %q / prefix %q in %s", typ, prefix, dir)
	}
	return vals
}

// flags returns the names of the flags cmd/leakproof defines, as --name:
// every FlagSet call whose name argument is a string literal.
func flags(t *testing.T) []string {
	t.Helper()
	nameArg := map[string]int{
		"String": 0, "Bool": 0, "Int": 0, "Int64": 0, "Uint": 0, "Uint64": 0, "Duration": 0, "Float64": 0, "Func": 0, "BoolFunc": 0,
		"StringVar": 1, "BoolVar": 1, "IntVar": 1, "Int64Var": 1, "UintVar": 1, "Uint64Var": 1, "DurationVar": 1, "Float64Var": 1, "Var": 1, "TextVar": 1,
	}
	var vals []string
	for _, f := range parseDir(t, "cmd/leakproof") {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			i, ok := nameArg[sel.Sel.Name]
			if !ok || len(call.Args) < i+2 {
				return true
			}
			lit, ok := call.Args[i].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			v, _ := strconv.Unquote(lit.Value)
			vals = append(vals, "--"+v)
			return true
		})
	}
	if len(vals) == 0 {
		t.Fatal("no flags found in cmd/leakproof")
	}
	return vals
}

// configFields returns the JSON names of every field of leakproof's
// policy config.
func configFields(t *testing.T) []string {
	t.Helper()
	var vals []string
	typ := reflect.TypeFor[policy.Config]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			vals = append(vals, name)
		}
	}
	return vals
}

func TestReferenceListsEveryValueOfTheCode(t *testing.T) {
	raw, err := os.ReadFile("reference.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for _, c := range []struct {
		section string
		code    []string
	}{
		{"Event kinds", consts(t, "trace", "Kind", "")},
		{"Causes", consts(t, "trace", "Cause", "")},
		{"Problem kinds", consts(t, "trace", "ProblemKind", "")},
		{"Leak kinds", consts(t, "subconn", "", "leak")},
		{"Metrics", consts(t, "subconn", "", "Metric")},
		{"Metric labels", consts(t, "subconn", "", "label")},
		{"Policy config fields", configFields(t)},
		{"CLI flags", flags(t)},
	} {
		t.Run(strings.ReplaceAll(c.section, " ", "_"), func(t *testing.T) {
			code := dedup(c.code)
			docs := dedup(section(t, doc, c.section))
			for _, v := range code {
				if !slices.Contains(docs, v) {
					t.Errorf("%s: the code has %q, docs/reference.md does not list it", c.section, v)
				}
			}
			for _, v := range docs {
				if !slices.Contains(code, v) {
					t.Errorf("%s: docs/reference.md lists %q, the code has no such value", c.section, v)
				}
			}
		})
	}
}

func dedup(vs []string) []string {
	out := slices.Clone(vs)
	slices.Sort(out)
	return slices.Compact(out)
}
