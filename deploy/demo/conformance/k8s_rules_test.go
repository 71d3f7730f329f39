package conformance

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"
)

// The PrometheusRule's alerts: valid for Prometheus (promtool), on metrics
// the binaries export, covering the metrics docs/operations.md says to
// alert on.

// prometheusRule renders the example overlay and returns its rule groups.
func prometheusRule(t *testing.T) *monitoringv1.PrometheusRule {
	t.Helper()
	objs, err := render(k8sRoot + "/overlays/example")
	if err != nil {
		t.Fatal(err)
	}
	for i := range objs {
		if objs[i].gvk.Kind != "PrometheusRule" {
			continue
		}
		if p := validate(&objs[i]); len(p) > 0 {
			t.Fatalf("%s: %q", objs[i], p)
		}
		return objs[i].obj.(*monitoringv1.PrometheusRule)
	}
	t.Fatal("the example overlay renders no PrometheusRule")
	return nil
}

// TestPrometheusRulesPromtool runs `promtool check rules` on the rule file
// the PrometheusRule holds (its spec is one). promtool comes with Debian's
// prometheus package, which .ci/run installs.
func TestPrometheusRulesPromtool(t *testing.T) {
	rule := prometheusRule(t)
	promtool := requirePromtool(t)
	data, err := yaml.Marshal(rule.Spec)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "jotguard-rules.yaml")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s\n%s", err, out, data)
	}
	t.Logf("%s", out)
}

// TestPromtoolCatches: promtool refuses a rule with bad PromQL, so the test
// above can fail.
func TestPromtoolCatches(t *testing.T) {
	promtool := requirePromtool(t)
	file := filepath.Join(t.TempDir(), "bad.yaml")
	bad := "groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum by (pod (jotguard_verifier_ready)\n"
	if err := os.WriteFile(file, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err == nil {
		t.Fatalf("promtool accepted a broken expression:\n%s", out)
	}
}

var metricName = regexp.MustCompile(`\bjotguard_[a-z0-9_]+`)

// exportedMetrics are the jotguard_* names in the issuer's and the
// verifier's Go code (not tests): what they can register.
func exportedMetrics(t *testing.T) []string {
	t.Helper()
	var names []string
	quoted := regexp.MustCompile(`"(jotguard_[a-z0-9_]+)"`)
	for _, mod := range []string{"issuer", "verifier"} {
		err := filepath.WalkDir(filepath.Join(root, mod), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			src, err := os.ReadFile(path)
			for _, m := range quoted.FindAllSubmatch(src, -1) {
				names = append(names, string(m[1]))
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if !slices.Contains(names, "jotguard_http_requests_total") || !slices.Contains(names, "jotguard_verifier_ready") {
		t.Fatalf("found only %v in the Go code", names)
	}
	return names
}

// seriesOf maps a series name in PromQL to its metric: a histogram's
// _bucket, _sum and _count series are the histogram's.
func seriesOf(name string, exported []string) (string, bool) {
	if slices.Contains(exported, name) {
		return name, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && slices.Contains(exported, base) {
			return base, true
		}
	}
	return "", false
}

// docMetrics are the metrics of the alert tables under "Metrics and
// alerts" in docs/operations.md (a cell's `_degraded` after
// `jotguard_verifier_revocation_stale` is jotguard_verifier_revocation_degraded).
func docMetrics(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, line := range strings.Split(operationsSection(t, "## Metrics and alerts", "\n## "), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cell := strings.Split(line, "|")[1]
		last := ""
		for _, m := range regexp.MustCompile("`([a-z0-9_]+)").FindAllStringSubmatch(cell, -1) {
			n := m[1]
			if strings.HasPrefix(n, "_") && last != "" {
				n = last[:strings.LastIndex(last, "_")] + n
			}
			if strings.HasPrefix(n, "jotguard_") {
				names = append(names, n)
				last = n
			}
		}
	}
	if len(names) < 10 {
		t.Fatalf("found only %v in the alert tables of docs/operations.md", names)
	}
	return names
}

func TestPrometheusRulesMetrics(t *testing.T) {
	rule := prometheusRule(t)
	exported := exportedMetrics(t)
	used := map[string]bool{}
	var alerts []string
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a rule without an alert name (recording rules are not expected here)", g.Name)
				continue
			}
			alerts = append(alerts, r.Alert)
			if r.Labels["severity"] != "critical" && r.Labels["severity"] != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, r.Labels["severity"])
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: needs a summary and a description", r.Alert)
			}
			for _, n := range metricName.FindAllString(r.Expr.String(), -1) {
				m, ok := seriesOf(n, exported)
				if !ok {
					t.Errorf("%s: %s is not a metric the issuer or the verifier exports", r.Alert, n)
				}
				used[m] = true
			}
		}
	}
	if len(slices.Compact(slices.Sorted(slices.Values(alerts)))) != len(alerts) {
		t.Errorf("alert names repeat: %v", alerts)
	}
	for _, n := range docMetrics(t) {
		if _, ok := seriesOf(n, exported); !ok {
			t.Errorf("docs/operations.md: %s is not a metric the issuer or the verifier exports", n)
		}
		if !used[n] {
			t.Errorf("docs/operations.md says to alert on %s; no alert of the PrometheusRule does", n)
		}
	}
}

// TestTopicJobSetsDocumentedSettings: the topic Job sets every topic
// setting of the table in docs/operations.md ("The revocation topic").
func TestTopicJobSetsDocumentedSettings(t *testing.T) {
	section := operationsSection(t, "## The revocation topic", "\n#")
	settings := regexp.MustCompile("(?m)^\\| `([a-z]+\\.[a-z.]+)` \\|").FindAllStringSubmatch(section, -1)
	if len(settings) < 5 {
		t.Fatalf("found only %v in the topic's table", settings)
	}
	objs, err := render(k8sRoot + "/overlays/example")
	if err != nil {
		t.Fatal(err)
	}
	var script string
	for i := range objs {
		if objs[i].gvk.Kind == "Job" {
			validate(&objs[i])
			c := objs[i].obj.(*batchv1.Job).Spec.Template.Spec.Containers[0]
			script = strings.Join(append(c.Command, c.Args...), " ")
		}
	}
	for _, s := range settings {
		if !strings.Contains(script, s[1]+"=") {
			t.Errorf("the topic Job does not set %s, a setting of the topic's table in docs/operations.md", s[1])
		}
	}
	for _, flag := range []string{"--partitions 6", "--replication-factor 3", "--if-not-exists"} {
		if !strings.Contains(script, flag) {
			t.Errorf("the topic Job's script lacks %s", flag)
		}
	}
}

// operationsSection is the text of docs/operations.md after the line
// heading, up to stop.
func operationsSection(t *testing.T, heading, stop string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "docs/operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("docs/operations.md has no line %q", heading)
	}
	section, _, _ = strings.Cut(section, stop)
	return section
}

// requirePromtool returns promtool's path; without it the test is skipped,
// and it fails when CI is set (.ci/run installs Debian's prometheus).
func requirePromtool(t *testing.T) string {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool is not on PATH: .ci/run installs it (apt-get install prometheus)")
		}
		t.Skip("promtool is not on PATH, so the alert rules were not checked by Prometheus (apt-get install prometheus)")
	}
	return promtool
}
