package conformance

import (
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// deployPaths are the deploy files this test reads (deploy/devstack,
// deploy/bench and deploy/demo are Go modules, not deploy files).
var deployPaths = []string{"deploy/docker", "deploy/compose.yaml", "deploy/k8s", "deploy/examples"}

var varName = regexp.MustCompile(`JOTGUARD_[A-Z0-9_]+`)

// binaryOf says which binary a file, image or service is about.
func binaryOf(s string) string {
	s = strings.ToLower(s)
	for _, b := range []string{"issuer", "verifier", "demo"} {
		if strings.Contains(s, b) {
			return b
		}
	}
	return ""
}

// checker accumulates problems of deploy files against the known settings.
type checker struct {
	k        known
	problems []string
}

func (c *checker) errorf(file, format string, args ...any) {
	c.problems = append(c.problems, file+": "+fmt.Sprintf(format, args...))
}

// names checks every JOTGUARD_* name in a file's text.
func (c *checker) names(file string, text []byte) {
	for _, n := range slices.Compact(sortedMatches(text)) {
		if len(c.k.users(n)) == 0 {
			c.errorf(file, "%s is not a setting of issuer, verifier or demo (--help)", n)
		}
	}
}

func sortedMatches(text []byte) []string {
	var out []string
	for _, m := range varName.FindAll(text, -1) {
		out = append(out, string(m))
	}
	slices.Sort(out)
	return out
}

// value checks one setting's value: listen addresses on the binary's
// default port, and URLs of the issuer and the upstream on theirs.
func (c *checker) value(file, name, val string) {
	switch {
	case strings.Contains(val, "${"): // compose interpolation: checked by name only
	case name == adminAddr:
		if _, p, err := net.SplitHostPort(val); err != nil || p != adminPort {
			c.errorf(file, "%s=%s: the verifier's admin listener is on port %s in every deploy file", name, val, adminPort)
		}
	case strings.HasSuffix(name, "_ADDR"):
		bin := c.k.users(name)
		if len(bin) != 1 {
			return
		}
		_, p, err := net.SplitHostPort(val)
		if want := c.k.port(bin[0]); err != nil || p != want {
			c.errorf(file, "%s=%s: the %s listens on port %s in every deploy file", name, val, bin[0], want)
		}
	case name == "JOTGUARD_UPSTREAM":
		c.urlPort(file, name, val, c.k.port("demo"))
	case name == "JOTGUARD_ISSUER" || name == "JOTGUARD_JWKS_URL":
		u, err := url.Parse(val)
		if err != nil || u.Host == "" {
			c.errorf(file, "%s=%s: not a URL", name, val)
			return
		}
		// A public URL (through an ingress) may use any port; one that
		// names the issuer's Service or loopback reaches the issuer itself.
		if h := u.Hostname(); strings.Contains(h, "issuer") || h == "127.0.0.1" || h == "localhost" {
			c.urlPort(file, name, val, c.k.port("issuer"))
		}
	}
}

func (c *checker) urlPort(file, name, val, want string) {
	u, err := url.Parse(val)
	if err != nil || u.Port() != want {
		c.errorf(file, "%s=%s: want port %s", name, val, want)
	}
}

// The verifier's admin listener (/healthz, /readyz, /metrics) has no
// default address; the deploy files all put it on this port.
const adminAddr, adminPort = "JOTGUARD_ADMIN_ADDR", "9081"

// ports says where a binary listens given the settings env of its
// container or service, and which port health checks must use: the admin
// port when there is one. A verifier in proxy mode (JOTGUARD_UPSTREAM) must
// have one: its main port proxies every path, /readyz included.
func (c *checker) ports(file, what, bin string, env map[string]string) (listen []string, health string) {
	listen, health = []string{c.k.port(bin)}, c.k.port(bin)
	if bin != "verifier" {
		return listen, health
	}
	if a, ok := env[adminAddr]; ok {
		if _, p, err := net.SplitHostPort(a); err == nil {
			listen, health = append(listen, p), p
		}
	} else if _, proxy := env["JOTGUARD_UPSTREAM"]; proxy {
		c.errorf(file, "%s: a verifier in proxy mode needs %s for its probes (its main port proxies every path)", what, adminAddr)
		health = ""
	}
	return listen, health
}

// envOf reads settings from a container's env list or a compose
// environment mapping.
func envOf(v any) map[string]string {
	out := map[string]string{}
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if m, ok := e.(map[string]any); ok {
				if n, ok := m["name"].(string); ok {
					out[n] = fmt.Sprint(m["value"])
				}
			}
		}
	case map[string]any:
		for k, val := range x {
			out[k] = fmt.Sprint(val)
		}
	}
	return out
}

// checkYAML parses every document of a YAML file and checks settings,
// Kubernetes containers and compose services.
func (c *checker) checkYAML(file string, data []byte) {
	c.names(file, data)
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if err != nil {
			if err.Error() != "EOF" {
				c.errorf(file, "YAML: %v", err)
			}
			return
		}
		var v any
		if err := doc.Decode(&v); err != nil {
			c.errorf(file, "YAML: %v", err)
			return
		}
		c.walkSettings(file, v)
		if m, ok := v.(map[string]any); ok {
			c.k8s(file, m)
			c.compose(file, m)
		}
	}
}

// walkSettings finds JOTGUARD_* settings: mapping keys (compose
// environment, ConfigMap data) and {name, value} items (container env).
func (c *checker) walkSettings(file string, v any) {
	switch x := v.(type) {
	case map[string]any:
		if n, ok := x["name"].(string); ok && varName.MatchString(n) {
			if val, ok := x["value"]; ok {
				c.value(file, n, fmt.Sprint(val))
			}
		}
		for k, val := range x {
			if varName.MatchString(k) {
				c.value(file, k, fmt.Sprint(val))
			}
			c.walkSettings(file, val)
		}
	case []any:
		for _, e := range x {
			c.walkSettings(file, e)
		}
	}
}

// k8s checks each container of a workload: a jotguard image exposes its
// binary's ports, every httpGet probe of it targets its health port (the
// admin port when it has one), and a Prometheus scrape annotation names a
// port of the pod.
func (c *checker) k8s(file string, doc map[string]any) {
	spec := dig(doc, "spec", "template", "spec")
	if spec == nil {
		return
	}
	var podPorts []string
	for _, key := range []string{"initContainers", "containers"} {
		list, _ := spec[key].([]any)
		for _, ct := range list {
			m, _ := ct.(map[string]any)
			image, _ := m["image"].(string)
			var ports []string
			pl, _ := m["ports"].([]any)
			for _, p := range pl {
				if pm, ok := p.(map[string]any); ok {
					ports = append(ports, fmt.Sprint(pm["containerPort"]))
				}
			}
			podPorts = append(podPorts, ports...)
			bin := binaryOf(image)
			what := fmt.Sprintf("container %v (%s)", m["name"], image)
			var health string
			if bin != "" {
				var listen []string
				listen, health = c.ports(file, what, bin, envOf(m["env"]))
				for _, p := range listen {
					if !slices.Contains(ports, p) {
						c.errorf(file, "%s does not expose the %s's port %s", what, bin, p)
					}
				}
			}
			for _, probe := range []string{"startupProbe", "readinessProbe", "livenessProbe"} {
				hg := dig(m, probe, "httpGet")
				if hg == nil {
					continue
				}
				p := fmt.Sprint(hg["port"])
				switch {
				case !slices.Contains(ports, p):
					c.errorf(file, "container %v: %s on port %s, which it does not expose (%v)", m["name"], probe, p, ports)
				case bin != "" && p != health:
					c.errorf(file, "%s: %s on port %s; the %s answers probes on %s", what, probe, p, bin, health)
				}
			}
		}
	}
	if p, ok := dig(doc, "spec", "template", "metadata", "annotations")["prometheus.io/port"]; ok && !slices.Contains(podPorts, fmt.Sprint(p)) {
		c.errorf(file, "prometheus.io/port %v: no container of the pod exposes it (%v)", p, podPorts)
	}
}

var loopbackPort = regexp.MustCompile(`127\.0\.0\.1:(\d+)`)

// compose checks each service: published container ports and health
// checks are the listening ports of the service (or of a sidecar sharing
// its network namespace); a jotguard service's health check uses its
// health port.
func (c *checker) compose(file string, doc map[string]any) {
	services, _ := doc["services"].(map[string]any)
	listen := map[string][]string{} // service → ports listened on in its namespace
	health := map[string]string{}   // jotguard service → its health port
	for name, s := range services {
		sm, _ := s.(map[string]any)
		bin := binaryOf(name)
		if bin == "" {
			continue
		}
		ns := name
		if nm, ok := sm["network_mode"].(string); ok && strings.HasPrefix(nm, "service:") {
			ns = strings.TrimPrefix(nm, "service:")
		}
		ports, hp := c.ports(file, "service "+name, bin, envOf(sm["environment"]))
		listen[ns] = append(listen[ns], ports...)
		health[name] = hp
	}
	for name, s := range services {
		sm, _ := s.(map[string]any)
		ports, _ := sm["ports"].([]any)
		for _, p := range ports {
			ps := fmt.Sprint(p)
			target := ps[strings.LastIndex(ps, ":")+1:]
			if !slices.Contains(listen[name], target) {
				c.errorf(file, "service %s publishes %s, but nothing in it listens on %s (%v)", name, ps, target, listen[name])
			}
		}
		if bin := binaryOf(name); bin != "" {
			hc := fmt.Sprint(dig(sm, "healthcheck")["test"])
			for _, m := range loopbackPort.FindAllStringSubmatch(hc, -1) {
				if m[1] != health[name] {
					c.errorf(file, "service %s: health check on port %s, the %s answers health checks on %s", name, m[1], bin, health[name])
				}
			}
		}
	}
}

func dig(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		next, ok := m[k].(map[string]any)
		if !ok {
			return nil
		}
		m = next
	}
	return m
}

var (
	dockerEnv    = regexp.MustCompile(`(?m)^ENV\s+(JOTGUARD_[A-Z0-9_]+)=(\S+)`)
	dockerExpose = regexp.MustCompile(`(?m)^EXPOSE((?:[ \t]+\d+)+)`)
	dockerUser   = regexp.MustCompile(`(?m)^USER\s+(\S+)`)
)

// checkDockerfile: settings, EXPOSE of the binary's ports, the health
// check on its health port, a non-root USER in the final stage.
func (c *checker) checkDockerfile(file string, data []byte) {
	c.names(file, data)
	bin := binaryOf(filepath.Base(file))
	env := map[string]string{}
	for _, m := range dockerEnv.FindAllSubmatch(data, -1) {
		c.value(file, string(m[1]), string(m[2]))
		env[string(m[1])] = string(m[2])
	}
	listen, health := c.ports(file, "the image", bin, env)
	var exposed []string
	for _, m := range dockerExpose.FindAllSubmatch(data, -1) {
		for _, p := range strings.Fields(string(m[1])) {
			exposed = append(exposed, p)
			if !slices.Contains(listen, p) {
				c.errorf(file, "EXPOSE %s: the %s listens on %v", p, bin, listen)
			}
		}
	}
	for _, p := range listen {
		if !slices.Contains(exposed, p) {
			c.errorf(file, "the %s listens on %s, which is not in EXPOSE", bin, p)
		}
	}
	for _, m := range loopbackPort.FindAllSubmatch(data, -1) {
		if string(m[1]) != health {
			c.errorf(file, "health check on port %s: the %s answers health checks on %s", m[1], bin, health)
		}
	}
	users := dockerUser.FindAllSubmatch(data, -1)
	if len(users) == 0 || string(users[len(users)-1][1]) == "root" || strings.HasPrefix(string(users[len(users)-1][1]), "0") {
		c.errorf(file, "the final stage must set a non-root USER")
	}
}

var (
	hostPort   = regexp.MustCompile(`\b(verifier|issuer|demo)[a-z0-9.-]*:(\d+)`)
	envoyAddr  = regexp.MustCompile(`address: (verifier|issuer|demo)[a-z0-9.-]*, port_value: (\d+)`)
	authzLocal = regexp.MustCompile(`127\.0\.0\.1:(\d+)/authz/`)
)

// checkPorts checks host:port references to the verifier, issuer and demo
// in any text (proxy examples).
func (c *checker) checkPorts(file string, data []byte) {
	for _, re := range []*regexp.Regexp{hostPort, envoyAddr} {
		for _, m := range re.FindAllSubmatch(data, -1) {
			if want := c.k.port(string(m[1])); string(m[2]) != want {
				c.errorf(file, "%s: the %s listens on %s", m[0], m[1], want)
			}
		}
	}
	for _, m := range authzLocal.FindAllSubmatch(data, -1) {
		if want := c.k.port("verifier"); string(m[1]) != want {
			c.errorf(file, "%s: the verifier listens on %s", m[0], want)
		}
	}
}

func (c *checker) checkFile(path string, data []byte) {
	switch name := filepath.Base(path); {
	case strings.HasSuffix(name, ".Dockerfile") || name == "Dockerfile":
		c.checkDockerfile(path, data)
	case strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml"):
		c.checkYAML(path, data)
		c.checkPorts(path, data)
	default:
		c.names(path, data)
		c.checkPorts(path, data)
	}
}

func TestDeployFiles(t *testing.T) {
	c := &checker{k: loadKnown(t)}
	var files []string
	for _, p := range deployPaths {
		err := filepath.WalkDir(filepath.Join(root, p), func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files = append(files, path)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var kinds = map[string]int{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		c.checkFile(rel, data)
		kinds[filepath.Ext(f)]++
	}
	// The test must have something to check.
	if kinds[".yaml"] < 5 || kinds[".Dockerfile"] < 2 || kinds[".conf"] < 1 {
		t.Fatalf("found only %v under %v", kinds, deployPaths)
	}
	for _, p := range c.problems {
		t.Error(p)
	}
}

// verifierPod is a Deployment with one verifier container exposing ports
// (a comma list), with env (a YAML flow mapping of settings) and a
// readiness probe on probe.
func verifierPod(ports, env string, probe int) string {
	var pl, el []string
	for _, p := range strings.Split(ports, ", ") {
		pl = append(pl, "{containerPort: "+p+"}")
	}
	for _, kv := range strings.Split(env, ", ") {
		k, v, _ := strings.Cut(kv, ": ")
		el = append(el, fmt.Sprintf("{name: %s, value: %q}", k, v))
	}
	return fmt.Sprintf("spec:\n  template:\n    spec:\n      containers:\n        - name: v\n          image: jotguard/verifier:1\n"+
		"          ports: [%s]\n          env: [%s]\n          readinessProbe: {httpGet: {path: /readyz, port: %d}}\n",
		strings.Join(pl, ", "), strings.Join(el, ", "), probe)
}

// TestCheckerCatches feeds the checker broken files: each must be reported.
func TestCheckerCatches(t *testing.T) {
	k := loadKnown(t)
	cases := []struct{ file, text, want string }{
		{"k.yaml", "data:\n  JOTGUARD_NOPE: x\n", "JOTGUARD_NOPE is not a setting"},
		{"k.yaml", "env:\n  - {name: JOTGUARD_VERIFIER_ADDR, value: \"0.0.0.0:9999\"}\n", "listens on port 8081"},
		{"k.yaml", "JOTGUARD_UPSTREAM: http://127.0.0.1:8091\n", "want port 8090"},
		{"k.yaml", "JOTGUARD_ISSUER: http://jotguard-issuer:80\n", "want port 8080"},
		{"k.yaml", "spec:\n  template:\n    spec:\n      containers:\n        - name: x\n          image: jotguard/issuer:1\n          ports: [{containerPort: 9000}]\n          readinessProbe: {httpGet: {path: /readyz, port: 9001}}\n",
			"does not expose the issuer's port 8080"},
		{"k.yaml", "spec:\n  template:\n    spec:\n      containers:\n        - name: x\n          image: jotguard/issuer:1\n          ports: [{containerPort: 8080}]\n          readinessProbe: {httpGet: {path: /readyz, port: 9001}}\n",
			"readinessProbe on port 9001"},
		{"c.yaml", "services:\n  issuer:\n    ports: [\"8080:9090\"]\n", "nothing in it listens on 9090"},
		{"c.yaml", "services:\n  issuer:\n    healthcheck: {test: [CMD, /probe, \"http://127.0.0.1:8081/readyz\"]}\n", "health check on port 8081"},
		{"c.yaml", "a: [unclosed\n", "YAML:"},
		{"verifier.Dockerfile", "FROM x\nUSER 65532\nEXPOSE 8080\n", "EXPOSE 8080"},
		{"issuer.Dockerfile", "FROM x\nEXPOSE 8080\n", "non-root USER"},
		{"nginx.conf", "proxy_pass http://verifier:8082/authz/auth-request;", "listens on 8081"},
		{"k.yaml", "JOTGUARD_ADMIN_ADDR: 0.0.0.0:9999\n", "admin listener is on port 9081"},
		{"k.yaml", verifierPod("8081, 9081", "JOTGUARD_UPSTREAM: http://127.0.0.1:8090, JOTGUARD_ADMIN_ADDR: 0.0.0.0:9081", 8081),
			"readinessProbe on port 8081; the verifier answers probes on 9081"},
		{"k.yaml", verifierPod("8081", "JOTGUARD_UPSTREAM: http://127.0.0.1:8090", 8081), "a verifier in proxy mode needs JOTGUARD_ADMIN_ADDR"},
		{"k.yaml", verifierPod("8081", "JOTGUARD_ADMIN_ADDR: 0.0.0.0:9081", 8081), "does not expose the verifier's port 9081"},
		{"k.yaml", "spec:\n  template:\n    metadata: {annotations: {prometheus.io/port: \"9999\"}}\n    spec:\n      containers:\n        - {name: x, image: jotguard/verifier:1, ports: [{containerPort: 8081}]}\n",
			"prometheus.io/port 9999"},
		{"c.yaml", "services:\n  verifier:\n    environment: {JOTGUARD_UPSTREAM: \"http://127.0.0.1:8090\", JOTGUARD_ADMIN_ADDR: \"127.0.0.1:9081\"}\n    healthcheck: {test: [CMD, /probe, \"http://127.0.0.1:8081/readyz\"]}\n",
			"the verifier answers health checks on 9081"},
		{"verifier.Dockerfile", "FROM x\nUSER 65532\nENV JOTGUARD_ADMIN_ADDR=0.0.0.0:9081\nEXPOSE 8081\n", "9081, which is not in EXPOSE"},
		{"envoy.yaml", "socket_address: {address: verifier, port_value: 9000}\n", "listens on 8081"},
	}
	for _, tc := range cases {
		c := &checker{k: k}
		c.checkFile(tc.file, []byte(tc.text))
		if !slices.ContainsFunc(c.problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
			t.Errorf("%s %q: problems %q, want one containing %q", tc.file, tc.text, c.problems, tc.want)
		}
	}
}
