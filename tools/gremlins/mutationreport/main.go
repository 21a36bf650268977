// Command mutationreport turns the JSON results of gremlins runs into the
// figures scripts/mutation.sh prints: per package, efficacy and mutator
// coverage with the allowlisted (equivalent) mutants left out, every lived
// mutant with the function and the source line it mutates, and the
// allowlist entries that matched nothing.
//
//	mutationreport -allow scripts/mutation-allowlist.txt \
//	    -min subconn=95/90 subconn=/tmp/subconn.json balancer=/tmp/balancer.json
//
// Each argument is DIR=RESULTS[:SRC]: the directory gremlins ran on
// (relative to the repository root, where mutationreport runs), the file it
// wrote with -o, and optionally a copy of the package's files as they were
// when it ran (scripts/mutation.sh keeps one), so that the report names the
// right lines even if the files changed since. The exit status is 1 if a package misses its -min thresholds or, with
// -no-lived, if any mutant lived that the allowlist does not name; 2 on bad
// input.
//
// # The allowlist
//
// One entry a line; blank lines and lines starting with # are ignored:
//
//	DIR | FUNCTION | MUTATOR | SNIPPET | REASON
//
// DIR is the package directory ("subconn"), FUNCTION the enclosing function
// as this report prints it ("(*Manager).acquire", "CheckTrace"), MUTATOR the
// gremlins mutator ("CONDITIONALS_NEGATION"), SNIPPET a piece of the mutated
// source line that covers the mutated operator ("x == r"), REASON why the
// mutant cannot change behaviour. An entry names no file and no line number,
// so it survives code moving between the files of a package and lines
// shifting; a lived mutant is printed with the entry that would allowlist it.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// results is the part of gremlins' JSON output (-o) this report reads.
type results struct {
	Files []struct {
		Name      string `json:"file_name"`
		Mutations []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
			Line   int    `json:"line"`
			Column int    `json:"column"`
		} `json:"mutations"`
	} `json:"files"`
}

// The statuses gremlins writes.
const (
	statusKilled     = "KILLED"
	statusLived      = "LIVED"
	statusNotCovered = "NOT COVERED"
	statusTimedOut   = "TIMED OUT"
	statusNotViable  = "NOT VIABLE"
	statusSkipped    = "SKIPPED"
)

// mutant is one mutation with where it sits in the source.
type mutant struct {
	dir, file    string // file relative to the repository root
	line, column int
	mutator      string
	status       string
	function     string // the enclosing function, "" at package level
	source       string // the source line, as written
	allowed      *entry // the allowlist entry that names it, if any
}

func (m mutant) position() string { return fmt.Sprintf("%s:%d:%d", m.file, m.line, m.column) }

// entry is one allowlist line.
type entry struct {
	where                           string // file:line of the entry, for messages
	dir, function, mutator, snippet string
	reason                          string
	matched                         int
}

func (e *entry) String() string {
	return fmt.Sprintf("%s | %s | %s | %s", e.dir, e.function, e.mutator, e.snippet)
}

// matches reports whether e names m: same package, function and mutator,
// and an occurrence of the snippet in m's source line covers m's column.
func (e *entry) matches(m *mutant) bool {
	if e.dir != m.dir || e.function != m.function || e.mutator != m.mutator {
		return false
	}
	col := m.column - 1 // token.Position columns are 1-based byte offsets
	for off := 0; ; {
		i := strings.Index(m.source[off:], e.snippet)
		if i < 0 {
			return false
		}
		start := off + i
		if start <= col && col < start+len(e.snippet) {
			return true
		}
		off = start + 1
	}
}

func readAllowlist(path string) ([]*entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("allowlist: %w", err)
	}
	defer f.Close()
	return parseAllowlist(f, path)
}

func parseAllowlist(r io.Reader, name string) ([]*entry, error) {
	var out []*entry
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.SplitN(line, " | ", 5)
		if len(f) != 5 {
			return nil, fmt.Errorf("%s:%d: want DIR | FUNCTION | MUTATOR | SNIPPET | REASON, got %q", name, n, line)
		}
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
			if f[i] == "" {
				return nil, fmt.Errorf("%s:%d: empty field %d in %q", name, n, i+1, line)
			}
		}
		out = append(out, &entry{where: name + ":" + strconv.Itoa(n), dir: filepath.Clean(f[0]), function: f[1], mutator: f[2], snippet: f[3], reason: f[4]})
	}
	return out, sc.Err()
}

// sourceFile is a parsed Go file: its lines and its functions' line ranges.
type sourceFile struct {
	lines []string
	funcs []funcRange
}

type funcRange struct {
	name       string
	start, end int
}

func loadSource(path string) (*sourceFile, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	sf := &sourceFile{lines: strings.Split(string(src), "\n")}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok {
			continue
		}
		sf.funcs = append(sf.funcs, funcRange{name: funcName(fd), start: fset.Position(fd.Pos()).Line, end: fset.Position(fd.End()).Line})
	}
	return sf, nil
}

// funcName names fd as Go's documentation does: "F", "T.M" or "(*T).M".
func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	t := fd.Recv.List[0].Type
	star := false
	if s, ok := t.(*ast.StarExpr); ok {
		star, t = true, s.X
	}
	switch x := t.(type) { // drop type parameters: keyMap[V] is keyMap
	case *ast.IndexExpr:
		t = x.X
	case *ast.IndexListExpr:
		t = x.X
	}
	recv := "?"
	if id, ok := t.(*ast.Ident); ok {
		recv = id.Name
	}
	if star {
		return "(*" + recv + ")." + fd.Name.Name
	}
	return recv + "." + fd.Name.Name
}

func (sf *sourceFile) at(line int) (function, source string) {
	if line >= 1 && line <= len(sf.lines) {
		source = sf.lines[line-1]
	}
	for _, fr := range sf.funcs {
		if fr.start <= line && line <= fr.end {
			function = fr.name
		}
	}
	return function, source
}

// pkgReport is the tally of one package.
type pkgReport struct {
	dir                                                     string
	killed, lived, notCovered, timedOut, notViable, skipped int
	allowed                                                 []*mutant
	livedList, notCoveredList                               []*mutant
}

// efficacy and coverage follow gremlins' definitions (timeouts and
// non-viable mutants count in neither), over the mutants not allowlisted.
func (p *pkgReport) efficacy() float64 { return pct(p.killed, p.killed+p.lived) }

func (p *pkgReport) coverage() float64 {
	return pct(p.killed+p.lived, p.killed+p.lived+p.notCovered)
}

func pct(a, b int) float64 {
	if b == 0 {
		return 100
	}
	return 100 * float64(a) / float64(b)
}

type thresholds struct{ efficacy, coverage float64 }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mutationreport", flag.ContinueOnError)
	fs.SetOutput(stderr)
	allowPath := fs.String("allow", "", "the allowlist of equivalent mutants")
	noLived := fs.Bool("no-lived", false, "fail if any mutant lived that the allowlist does not name")
	showUncovered := fs.Bool("uncovered", false, "list the mutants no test covers too")
	var mins []string
	fs.Func("min", "DIR=EFFICACY/COVERAGE: fail if the package's figures are lower (repeatable)", func(s string) error {
		mins = append(mins, s)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return 2
	}
	limits := map[string]thresholds{}
	for _, s := range mins {
		dir, v, ok1 := strings.Cut(s, "=")
		e, c, ok2 := strings.Cut(v, "/")
		ef, err1 := strconv.ParseFloat(e, 64)
		cf, err2 := strconv.ParseFloat(c, 64)
		if !ok1 || !ok2 || err1 != nil || err2 != nil {
			fmt.Fprintf(stderr, "mutationreport: -min %q: want DIR=EFFICACY/COVERAGE, such as subconn=95/90\n", s)
			return 2
		}
		limits[filepath.Clean(dir)] = thresholds{ef, cf}
	}
	var allow []*entry
	if *allowPath != "" {
		var err error
		if allow, err = readAllowlist(*allowPath); err != nil {
			fmt.Fprintf(stderr, "mutationreport: %v\n", err)
			return 2
		}
	}
	var reports []*pkgReport
	for _, arg := range fs.Args() {
		dir, path, ok := strings.Cut(arg, "=")
		if !ok {
			fmt.Fprintf(stderr, "mutationreport: argument %q: want DIR=RESULTS.json[:SRC]\n", arg)
			return 2
		}
		dir = filepath.Clean(dir)
		path, src, _ := strings.Cut(path, ":")
		if src == "" {
			src = dir
		}
		rep, err := tally(dir, path, src, allow)
		if err != nil {
			fmt.Fprintf(stderr, "mutationreport: %v\n", err)
			return 2
		}
		reports = append(reports, rep)
	}
	failed := false
	for _, p := range reports {
		fmt.Fprintf(stdout, "== %s: efficacy %.1f%% (killed %d, lived %d), mutator coverage %.1f%% (not covered %d); timed out %d, not viable %d; allowlisted %d (left out)\n",
			p.dir, p.efficacy(), p.killed, p.lived, p.coverage(), p.notCovered, p.timedOut, p.notViable, len(p.allowed))
		if p.skipped > 0 {
			fmt.Fprintf(stdout, "   (%d mutants in files left out of this run)\n", p.skipped)
		}
		if len(p.livedList) > 0 {
			fmt.Fprintf(stdout, "   lived:\n")
			for _, m := range p.livedList {
				printMutant(stdout, m)
			}
		}
		if *showUncovered && len(p.notCoveredList) > 0 {
			fmt.Fprintf(stdout, "   not covered:\n")
			for _, m := range p.notCoveredList {
				printMutant(stdout, m)
			}
		}
		if len(p.allowed) > 0 {
			fmt.Fprintf(stdout, "   allowlisted (equivalent):\n")
			for _, m := range p.allowed {
				fmt.Fprintf(stdout, "     %s %s in %s [%s]: %s\n", m.position(), m.mutator, m.function, m.status, m.allowed.reason)
			}
		}
		if t, ok := limits[p.dir]; ok && (p.efficacy() < t.efficacy || p.coverage() < t.coverage) {
			fmt.Fprintf(stdout, "   FAIL: %s wants efficacy >= %.1f%% and mutator coverage >= %.1f%%\n", p.dir, t.efficacy, t.coverage)
			failed = true
		}
		if *noLived && p.lived > 0 {
			fmt.Fprintf(stdout, "   FAIL: %d mutant(s) lived in %s: kill them with a test, or allowlist them with the reason they are equivalent\n", p.lived, p.dir)
			failed = true
		}
	}
	ran := map[string]bool{}
	for _, p := range reports {
		ran[p.dir] = true
	}
	for _, e := range allow {
		if e.matched == 0 && ran[e.dir] {
			fmt.Fprintf(stdout, "stale allowlist entry %s (matched no mutant of this run): %s\n", e.where, e)
		}
	}
	if failed {
		return 1
	}
	return 0
}

func printMutant(w io.Writer, m *mutant) {
	fn := m.function
	if fn == "" {
		fn = "package level"
	}
	fmt.Fprintf(w, "     %s %s in %s: %s\n", m.position(), m.mutator, fn, strings.TrimSpace(m.source))
	fmt.Fprintf(w, "       allowlist as: %s | %s | %s | %s | WHY IT IS EQUIVALENT\n", m.dir, fn, m.mutator, strings.TrimSpace(m.source))
}

func tally(dir, path, src string, allow []*entry) (*pkgReport, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var res results
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	p := &pkgReport{dir: dir}
	sources := map[string]*sourceFile{}
	for _, f := range res.Files {
		file := filepath.Join(dir, f.Name)
		sf, ok := sources[file]
		if !ok {
			if sf, err = loadSource(filepath.Join(src, f.Name)); err != nil {
				return nil, fmt.Errorf("results for %s: %w", file, err)
			}
			sources[file] = sf
		}
		for _, mu := range f.Mutations {
			m := &mutant{dir: dir, file: file, line: mu.Line, column: mu.Column, mutator: mu.Type, status: mu.Status}
			m.function, m.source = sf.at(mu.Line)
			for _, e := range allow {
				if e.matches(m) {
					e.matched++
					m.allowed = e
					break
				}
			}
			if m.allowed != nil {
				p.allowed = append(p.allowed, m)
				continue
			}
			switch m.status {
			case statusKilled:
				p.killed++
			case statusLived:
				p.lived++
				p.livedList = append(p.livedList, m)
			case statusNotCovered:
				p.notCovered++
				p.notCoveredList = append(p.notCoveredList, m)
			case statusTimedOut:
				p.timedOut++
			case statusNotViable:
				p.notViable++
			case statusSkipped:
				p.skipped++
			default:
				return nil, fmt.Errorf("%s: unknown status %q", m.position(), m.status)
			}
		}
	}
	order := func(ms []*mutant) {
		sort.SliceStable(ms, func(i, j int) bool {
			if ms[i].file != ms[j].file {
				return ms[i].file < ms[j].file
			}
			if ms[i].line != ms[j].line {
				return ms[i].line < ms[j].line
			}
			return ms[i].column < ms[j].column
		})
	}
	order(p.allowed)
	order(p.livedList)
	order(p.notCoveredList)
	return p, nil
}
