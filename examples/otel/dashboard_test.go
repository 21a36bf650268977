package main

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// identRE matches the metric and label names a query uses.
var identRE = regexp.MustCompile(`\b(?:leakproof|grpc)_[a-z_]+\b`)

// dashboardQueries returns every PromQL expression of grafana-dashboard.json
// (panel targets and variable queries).
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	var titles, exprs []string
	for _, p := range d.Panels {
		titles = append(titles, p.Title)
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		exprs = append(exprs, v.Definition)
	}
	for _, want := range []string{"Sockets per backend", "Subchannels open", "Connections lost by cause", "Leaks"} {
		if !slices.Contains(titles, want) {
			t.Errorf("grafana-dashboard.json has no panel %q (panels %q)", want, titles)
		}
	}
	return exprs
}

// readmeQueries returns the ```promql blocks of README.md.
func readmeQueries(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, block := range strings.Split(string(data), "```promql\n")[1:] {
		q, _, ok := strings.Cut(block, "```")
		if !ok {
			t.Fatal("README.md: a promql block is not closed")
		}
		out = append(out, q)
	}
	return out
}

// checkQueries fails the test unless every metric and label name the
// dashboard and README's queries use was exported during the test
// (exported), and every one of leakproof's four metrics is queried.
func checkQueries(t *testing.T, exported map[string]bool) {
	t.Helper()
	for file, queries := range map[string][]string{
		"grafana-dashboard.json": dashboardQueries(t),
		"README.md":              readmeQueries(t),
	} {
		used := map[string]bool{}
		for _, q := range queries {
			for _, name := range identRE.FindAllString(q, -1) {
				used[name] = true
				if !exported[name] {
					t.Errorf("%s queries %s, which /metrics never exported", file, name)
				}
			}
		}
		for _, name := range []string{subchannelsOpen, socketsOpen, connectionsLost, leaks} {
			if !used[name] {
				t.Errorf("%s does not query %s", file, name)
			}
		}
	}
}
