package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// A scrape is one read of a /metrics page: metric families by name.
type scrape map[string]*dto.MetricFamily

// scrapeOnce reads url as Prometheus does (text exposition format).
func scrapeOnce(ctx context.Context, url string) (scrape, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	// A transport of its own without keep-alive: nothing stays open
	// between scrapes.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	return fams, nil
}

// series returns the value of every series of the family name whose labels
// include match, keyed by the value of label by ("" for all of them). A
// family or series that is not exported is absent from the result.
func (s scrape) series(name, by string, match map[string]string) map[string]float64 {
	out := map[string]float64{}
	fam := s[name]
	if fam == nil {
		return out
	}
	for _, m := range fam.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if !matches(labels, match) {
			continue
		}
		out[labels[by]] += value(fam.GetType(), m)
	}
	return out
}

// value is a gauge's or a counter's value.
func value(t dto.MetricType, m *dto.Metric) float64 {
	switch t {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue()
	default:
		return m.GetUntyped().GetValue()
	}
}

func matches(labels, match map[string]string) bool {
	for k, v := range match {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// lines formats the series of the families whose names start with one of
// prefixes, one per line, sorted: what a user reads on the page.
func (s scrape) lines(prefixes ...string) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(s)) {
		if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
			continue
		}
		fam := s[name]
		for _, m := range fam.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				if strings.HasPrefix(l.GetName(), "otel_scope_") {
					continue // the same on every line
				}
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			slices.Sort(ls)
			out = append(out, fmt.Sprintf("%s{%s} %g", name, strings.Join(ls, ","), value(fam.GetType(), m)))
		}
	}
	slices.Sort(out)
	return out
}
