package conformance

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// What a platform team expects of every workload, and references between
// the rendered objects that must resolve.

// pod is the pod template of a Deployment or Job.
type pod struct {
	owner string // Kind/name
	long  bool   // serves until stopped (a Deployment), not a Job
	meta  metav1.ObjectMeta
	spec  corev1.PodSpec
}

// containers lists init containers then containers, with whether each is
// a native sidecar (an init container with restartPolicy Always).
func (p pod) containers() (cs []corev1.Container, sidecar []bool) {
	for _, c := range p.spec.InitContainers {
		cs = append(cs, c)
		sidecar = append(sidecar, c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways)
	}
	for _, c := range p.spec.Containers {
		cs = append(cs, c)
		sidecar = append(sidecar, false)
	}
	return cs, sidecar
}

// hasPort says whether a container of p exposes port (a number or a name).
func (p pod) hasPort(port intstr.IntOrString) bool {
	cs, _ := p.containers()
	for _, c := range cs {
		for _, cp := range c.Ports {
			if (port.Type == intstr.Int && cp.ContainerPort == port.IntVal) || (port.Type == intstr.String && cp.Name == port.StrVal) {
				return true
			}
		}
	}
	return false
}

// manifests indexes rendered objects by kind.
type manifests struct {
	pods      []pod
	deploys   map[string]*appsv1.Deployment
	services  []*corev1.Service
	config    map[string]map[string]string // "ConfigMap/name" or "Secret/name" → data
	objs      []object
	policies  []*networkingv1.NetworkPolicy
	hpas      []*autoscalingv2.HorizontalPodAutoscaler
	pdbs      []*policyv1.PodDisruptionBudget
	ingresses []*networkingv1.Ingress
}

func index(objs []object) manifests {
	m := manifests{deploys: map[string]*appsv1.Deployment{}, config: map[string]map[string]string{}, objs: objs}
	for _, o := range objs {
		switch x := o.obj.(type) {
		case *appsv1.Deployment:
			m.deploys[x.Name] = x
			m.pods = append(m.pods, pod{"Deployment/" + x.Name, true, x.Spec.Template.ObjectMeta, x.Spec.Template.Spec})
		case *batchv1.Job:
			m.pods = append(m.pods, pod{"Job/" + x.Name, false, x.Spec.Template.ObjectMeta, x.Spec.Template.Spec})
		case *corev1.Service:
			m.services = append(m.services, x)
		case *corev1.ConfigMap:
			m.config["ConfigMap/"+x.Name] = x.Data
		case *corev1.Secret:
			d := map[string]string{}
			for k, v := range x.Data {
				d[k] = string(v)
			}
			for k, v := range x.StringData {
				d[k] = v
			}
			m.config["Secret/"+x.Name] = d
		case *networkingv1.NetworkPolicy:
			m.policies = append(m.policies, x)
		case *autoscalingv2.HorizontalPodAutoscaler:
			m.hpas = append(m.hpas, x)
		case *policyv1.PodDisruptionBudget:
			m.pdbs = append(m.pdbs, x)
		case *networkingv1.Ingress:
			m.ingresses = append(m.ingresses, x)
		}
	}
	return m
}

// selected returns the pods whose labels sel matches.
func (m manifests) selected(sel *metav1.LabelSelector) []pod {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil
	}
	var out []pod
	for _, p := range m.pods {
		if s.Matches(labels.Set(p.meta.Labels)) {
			out = append(out, p)
		}
	}
	return out
}

// env resolves a container's settings: envFrom, then env (which wins).
// Missing references are reported through problem.
func (m manifests) env(p pod, c corev1.Container, problem func(string, ...any)) map[string]string {
	out := map[string]string{}
	ref := func(kind, name, key string, optional *bool) (string, bool) {
		data, ok := m.config[kind+"/"+name]
		if !ok {
			if optional == nil || !*optional {
				problem("%s: container %s: %s %q is not among the manifests", p.owner, c.Name, kind, name)
			}
			return "", false
		}
		if key == "" {
			return "", true
		}
		v, ok := data[key]
		if !ok && (optional == nil || !*optional) {
			problem("%s: container %s: %s %q has no key %s", p.owner, c.Name, kind, name, key)
		}
		return v, ok
	}
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			if _, ok := ref("ConfigMap", ef.ConfigMapRef.Name, "", ef.ConfigMapRef.Optional); ok {
				for k, v := range m.config["ConfigMap/"+ef.ConfigMapRef.Name] {
					out[ef.Prefix+k] = v
				}
			}
		case ef.SecretRef != nil:
			if _, ok := ref("Secret", ef.SecretRef.Name, "", ef.SecretRef.Optional); ok {
				for k, v := range m.config["Secret/"+ef.SecretRef.Name] {
					out[ef.Prefix+k] = v
				}
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			out[e.Name] = e.Value
		case e.ValueFrom.ConfigMapKeyRef != nil:
			r := e.ValueFrom.ConfigMapKeyRef
			if v, ok := ref("ConfigMap", r.Name, r.Key, r.Optional); ok {
				out[e.Name] = v
			}
		case e.ValueFrom.SecretKeyRef != nil:
			r := e.ValueFrom.SecretKeyRef
			if v, ok := ref("Secret", r.Name, r.Key, r.Optional); ok {
				out[e.Name] = v
			}
		}
	}
	for _, v := range p.spec.Volumes {
		if s := v.Secret; s != nil {
			ref("Secret", s.SecretName, "", s.Optional)
		}
		if cm := v.ConfigMap; cm != nil {
			ref("ConfigMap", cm.Name, "", cm.Optional)
		}
	}
	return out
}

// setting is a binary's setting from env, else its --help default ("" if
// the binary has no such setting or no default).
func (k known) setting(bin, name string, env map[string]string) string {
	if v, ok := env[name]; ok {
		return v
	}
	if s, ok := k.get(bin, name); ok && s.Default != "none" && s.Default != "required" {
		return s.Default
	}
	return ""
}

// stopTime is how long a binary may take after SIGTERM: its drain delay
// (readiness off, still serving) plus its shutdown grace.
func (k known) stopTime(bin string, env map[string]string) time.Duration {
	var d time.Duration
	for _, n := range []string{"JOTGUARD_DRAIN_DELAY", "JOTGUARD_SHUTDOWN_GRACE"} {
		if v := k.setting(bin, n, env); v != "" {
			x, _ := time.ParseDuration(v)
			d += x
		}
	}
	return d
}

// backendPorts are the TCP ports a binary connects to, from its settings.
func (k known) backendPorts(bin string, env map[string]string) map[string]int32 {
	out := map[string]int32{}
	hostPorts := func(name, list string, def int32) {
		for _, a := range strings.Split(list, ",") {
			a = strings.TrimSpace(a)
			if u, err := url.Parse(a); err == nil && u.Host != "" {
				a = u.Host
			}
			if i := strings.LastIndex(a, "@"); i >= 0 {
				a = a[i+1:]
			}
			p := def
			if _, ps, err := net.SplitHostPort(a); err == nil {
				n, _ := strconv.Atoi(ps)
				p = int32(n)
			}
			if a != "" {
				out[name+" "+a] = p
			}
		}
	}
	if v := k.setting(bin, "JOTGUARD_MONGO_URI", env); v != "" {
		u, _ := url.Parse(v)
		if u != nil {
			hostPorts("JOTGUARD_MONGO_URI", u.Host, 27017) // a seed list; mongodb+srv has no port
		}
	}
	if v := k.setting(bin, "JOTGUARD_REDIS_URL", env); v != "" {
		hostPorts("JOTGUARD_REDIS_URL", v, 6379)
	}
	if v := k.setting(bin, "JOTGUARD_KAFKA_BROKERS", env); v != "" {
		hostPorts("JOTGUARD_KAFKA_BROKERS", v, 9092)
	}
	if v := k.setting(bin, "JOTGUARD_SMTP_URL", env); v != "" {
		def := int32(587)
		if strings.HasPrefix(v, "smtps:") {
			def = 465
		}
		hostPorts("JOTGUARD_SMTP_URL", v, def)
	}
	if _, fetches := k.get(bin, "JOTGUARD_JWKS_URL"); fetches {
		jwks := k.setting(bin, "JOTGUARD_JWKS_URL", env)
		if jwks == "" {
			jwks = k.setting(bin, "JOTGUARD_ISSUER", env)
		}
		if u, err := url.Parse(jwks); err == nil && u.Host != "" {
			def := int32(80)
			if u.Scheme == "https" {
				def = 443
			}
			hostPorts("JOTGUARD_JWKS_URL", u.Host, def)
		}
	}
	return out
}

// allows says whether a NetworkPolicy port list lets TCP port through.
func allows(ports []networkingv1.NetworkPolicyPort, port int32) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		proto := corev1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		if proto != corev1.ProtocolTCP {
			continue
		}
		switch {
		case p.Port == nil:
			return true
		case p.Port.Type == intstr.Int && p.EndPort != nil:
			if port >= p.Port.IntVal && port <= *p.EndPort {
				return true
			}
		case p.Port.Type == intstr.Int && p.Port.IntVal == port:
			return true
		}
	}
	return false
}

// platformProblems applies the rules to every workload and checks that
// references between objects resolve.
func platformProblems(k known, objs []object) []string {
	var problems []string
	problem := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	m := index(objs)
	for _, h := range m.hpas {
		ref := h.Spec.ScaleTargetRef
		d, ok := m.deploys[ref.Name]
		switch {
		case ref.Kind != "Deployment" || !ok:
			problem("HorizontalPodAutoscaler/%s scales %s/%s, which is not among the manifests", h.Name, ref.Kind, ref.Name)
		case d.Spec.Replicas != nil:
			problem("Deployment/%s sets replicas, but HorizontalPodAutoscaler/%s owns the count (a re-apply would reset it)", d.Name, h.Name)
		}
	}
	for _, p := range m.pods {
		cs, sidecar := p.containers()
		psc := p.spec.SecurityContext
		if psc == nil {
			psc = &corev1.PodSecurityContext{}
		}
		var mainStop, sidecarStop time.Duration
		for i, c := range cs {
			what := fmt.Sprintf("%s: container %s", p.owner, c.Name)
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if _, ok := c.Resources.Requests[r]; !ok {
					problem("%s: no %s request", what, r)
				}
				if _, ok := c.Resources.Limits[r]; !ok {
					problem("%s: no %s limit", what, r)
				}
			}
			sc := c.SecurityContext
			if sc == nil {
				sc = &corev1.SecurityContext{}
			}
			nonRoot := sc.RunAsNonRoot
			if nonRoot == nil {
				nonRoot = psc.RunAsNonRoot
			}
			seccomp := sc.SeccompProfile
			if seccomp == nil {
				seccomp = psc.SeccompProfile
			}
			switch {
			case nonRoot == nil || !*nonRoot:
				problem("%s: runAsNonRoot is not true", what)
			case seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault:
				problem("%s: the seccomp profile is not RuntimeDefault", what)
			case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
				problem("%s: allowPrivilegeEscalation is not false", what)
			case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
				problem("%s: the root filesystem is not read-only", what)
			case sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL"):
				problem("%s: capabilities do not drop ALL", what)
			}
			env := m.env(p, c, problem)
			bin := binaryOf(c.Image)
			if bin == "" {
				continue
			}
			if p.long && (c.ReadinessProbe == nil || c.LivenessProbe == nil) {
				problem("%s: the %s needs a readiness and a liveness probe", what, bin)
			}
			if d := k.stopTime(bin, env); sidecar[i] {
				sidecarStop += d
			} else {
				mainStop = max(mainStop, d)
			}
			problems = append(problems, m.policyProblems(k, p, c, bin, env)...)
		}
		// Containers get SIGTERM first; native sidecars after they exit.
		grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
		if p.spec.TerminationGracePeriodSeconds != nil {
			grace = *p.spec.TerminationGracePeriodSeconds
		}
		if need := mainStop + sidecarStop; time.Duration(grace)*time.Second < need {
			problem("%s: terminationGracePeriodSeconds %d is shorter than its binaries' drain delay and shutdown grace (%s)", p.owner, grace, need)
		}
		if p.long && !slices.ContainsFunc(m.pdbs, func(b *policyv1.PodDisruptionBudget) bool {
			return slices.ContainsFunc(m.selected(b.Spec.Selector), func(q pod) bool { return q.owner == p.owner })
		}) {
			problem("%s: no PodDisruptionBudget selects its pods", p.owner)
		}
	}
	for _, b := range m.pdbs {
		if len(m.selected(b.Spec.Selector)) == 0 {
			problem("PodDisruptionBudget/%s selects no pods", b.Name)
		}
	}
	for _, s := range m.services {
		ps := m.selected(&metav1.LabelSelector{MatchLabels: s.Spec.Selector})
		if len(ps) == 0 {
			problem("Service/%s selects no pods", s.Name)
			continue
		}
		for _, sp := range s.Spec.Ports {
			tp := sp.TargetPort
			if tp.Type == intstr.Int && tp.IntVal == 0 {
				tp = intstr.FromInt32(sp.Port)
			}
			if !ps[0].hasPort(tp) {
				problem("Service/%s: port %s targets %s, which %s does not expose", s.Name, sp.Name, tp.String(), ps[0].owner)
			}
		}
	}
	for _, np := range m.policies {
		ps := m.selected(&np.Spec.PodSelector)
		if len(ps) == 0 {
			problem("NetworkPolicy/%s selects no pods", np.Name)
		}
		for _, r := range np.Spec.Ingress {
			for _, port := range r.Ports {
				if port.Port != nil && !slices.ContainsFunc(ps, func(p pod) bool { return p.hasPort(*port.Port) }) {
					problem("NetworkPolicy/%s lets in port %s, which none of its pods exposes", np.Name, port.Port.String())
				}
			}
		}
	}
	for _, o := range objs {
		switch x := o.obj.(type) {
		case *monitoringv1.ServiceMonitor:
			sel, _ := metav1.LabelSelectorAsSelector(&x.Spec.Selector)
			var ports []string
			for _, s := range m.services {
				if sel != nil && sel.Matches(labels.Set(s.Labels)) {
					for _, sp := range s.Spec.Ports {
						ports = append(ports, sp.Name)
					}
				}
			}
			if len(ports) == 0 {
				problem("ServiceMonitor/%s selects no Service (by the Services' own labels)", x.Name)
			}
			for _, e := range x.Spec.Endpoints {
				if !slices.Contains(ports, e.Port) {
					problem("ServiceMonitor/%s scrapes port %q, which its Services do not name (%v)", x.Name, e.Port, ports)
				}
			}
		case *monitoringv1.PodMonitor:
			ps := m.selected(&x.Spec.Selector)
			if len(ps) == 0 {
				problem("PodMonitor/%s selects no pods", x.Name)
			}
			for _, e := range x.Spec.PodMetricsEndpoints {
				for _, p := range ps {
					if e.Port == nil || !p.hasPort(intstr.FromString(*e.Port)) {
						problem("PodMonitor/%s: %s has no container port named %v", x.Name, p.owner, e.Port)
					}
				}
			}
		}
	}
	for _, in := range m.ingresses {
		for _, r := range in.Spec.Rules {
			if r.HTTP == nil {
				continue
			}
			for _, path := range r.HTTP.Paths {
				b := path.Backend.Service
				if b == nil {
					continue
				}
				i := slices.IndexFunc(m.services, func(s *corev1.Service) bool { return s.Name == b.Name })
				if i < 0 {
					problem("Ingress/%s: %s goes to Service %s, which is not among the manifests", in.Name, path.Path, b.Name)
					continue
				}
				if !slices.ContainsFunc(m.services[i].Spec.Ports, func(sp corev1.ServicePort) bool {
					return (b.Port.Name != "" && sp.Name == b.Port.Name) || (b.Port.Number != 0 && sp.Port == b.Port.Number)
				}) {
					problem("Ingress/%s: %s goes to a port Service %s does not have", in.Name, path.Path, b.Name)
				}
			}
		}
	}
	return problems
}

// policyProblems checks the NetworkPolicies that select p against what
// container c (a jotguard binary) needs: its listening ports let in, and
// DNS and its backends let out.
func (m manifests) policyProblems(k known, p pod, c corev1.Container, bin string, env map[string]string) []string {
	var problems []string
	var in, out []*networkingv1.NetworkPolicy
	for _, np := range m.policies {
		s, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil || !s.Matches(labels.Set(p.meta.Labels)) {
			continue
		}
		for _, t := range np.Spec.PolicyTypes {
			switch t {
			case networkingv1.PolicyTypeIngress:
				in = append(in, np)
			case networkingv1.PolicyTypeEgress:
				out = append(out, np)
			}
		}
	}
	if len(in) > 0 && bin != "demo" { // the demo listens on loopback only
		for _, cp := range c.Ports {
			if !slices.ContainsFunc(in, func(np *networkingv1.NetworkPolicy) bool {
				return slices.ContainsFunc(np.Spec.Ingress, func(r networkingv1.NetworkPolicyIngressRule) bool { return allows(r.Ports, cp.ContainerPort) })
			}) {
				problems = append(problems, fmt.Sprintf("%s: the NetworkPolicies of the %s let nothing in on its port %d", p.owner, bin, cp.ContainerPort))
			}
		}
	}
	if len(out) == 0 {
		return problems
	}
	egress := func(port int32, proto corev1.Protocol) bool {
		return slices.ContainsFunc(out, func(np *networkingv1.NetworkPolicy) bool {
			return slices.ContainsFunc(np.Spec.Egress, func(r networkingv1.NetworkPolicyEgressRule) bool {
				return slices.ContainsFunc(r.Ports, func(pp networkingv1.NetworkPolicyPort) bool {
					return pp.Protocol != nil && *pp.Protocol == proto && pp.Port != nil && pp.Port.IntVal == port
				}) || (proto == corev1.ProtocolTCP && allows(r.Ports, port))
			})
		})
	}
	if !egress(53, corev1.ProtocolUDP) {
		problems = append(problems, fmt.Sprintf("%s: the NetworkPolicies of the %s let no DNS (UDP 53) out", p.owner, bin))
	}
	for what, port := range k.backendPorts(bin, env) {
		if !egress(port, corev1.ProtocolTCP) {
			problems = append(problems, fmt.Sprintf("%s: the NetworkPolicies of the %s let nothing out to port %d (%s)", p.owner, bin, port, what))
		}
	}
	return problems
}

// ---- Ingress ----

// operational are the issuer's paths that stay inside the cluster.
var operational = []string{"/healthz", "/readyz", "/metrics"}

// openAPIPaths are the paths of the issuer's OpenAPI document.
func openAPIPaths(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "issuer/internal/httpapi/openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]any `json:"paths"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var out []string
	for p := range doc.Paths {
		out = append(out, p)
	}
	slices.Sort(out)
	if !slices.Contains(out, "/login") || !slices.Contains(out, "/metrics") {
		t.Fatalf("the OpenAPI document's paths look wrong: %v", out)
	}
	return out
}

// routes says whether an Ingress path matches a request path, as the
// Ingress API defines Exact and Prefix (by path elements).
func routes(p networkingv1.HTTPIngressPath, path string) bool {
	if p.PathType != nil && *p.PathType == networkingv1.PathTypeExact {
		return p.Path == path
	}
	prefix := strings.TrimSuffix(p.Path, "/")
	return prefix == "" || path == prefix || strings.HasPrefix(path, prefix+"/")
}

// ingressProblems: the issuer's Ingress routes every API path of the
// OpenAPI document to the issuer, and none of the operational paths; in
// an overlay whose JOTGUARD_ISSUER is an https URL, its host is the
// Ingress host.
func ingressProblems(objs []object, paths []string) []string {
	var problems []string
	m := index(objs)
	for _, in := range m.ingresses {
		for _, r := range in.Spec.Rules {
			if r.HTTP == nil {
				continue
			}
			for _, path := range paths {
				// {parameters} stand for one path element.
				concrete := strings.NewReplacer("{", "x", "}", "").Replace(path)
				i := slices.IndexFunc(r.HTTP.Paths, func(p networkingv1.HTTPIngressPath) bool { return routes(p, concrete) })
				switch op := slices.Contains(operational, path); {
				case op && i >= 0:
					problems = append(problems, fmt.Sprintf("Ingress/%s routes %s (%s) outside the cluster", in.Name, path, r.HTTP.Paths[i].Path))
				case !op && i < 0:
					problems = append(problems, fmt.Sprintf("Ingress/%s does not route %s, a path of the issuer's API", in.Name, path))
				case !op && r.HTTP.Paths[i].Backend.Service.Name != "jotguard-issuer":
					problems = append(problems, fmt.Sprintf("Ingress/%s routes %s elsewhere than the issuer", in.Name, path))
				}
			}
			if u, err := url.Parse(m.config["ConfigMap/jotguard"]["JOTGUARD_ISSUER"]); err == nil && u.Scheme == "https" && u.Hostname() != r.Host {
				problems = append(problems, fmt.Sprintf("Ingress/%s: host %q, but JOTGUARD_ISSUER (the iss of every token) is %s", in.Name, r.Host, u))
			}
		}
	}
	return problems
}

// TestPlatformChecksCatch plants mistakes in the rendered example overlay,
// one at a time: each must be reported.
func TestPlatformChecksCatch(t *testing.T) {
	k := loadKnown(t)
	paths := openAPIPaths(t)
	objs, err := render(k8sRoot + "/overlays/example")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		kind, name, old, new, want string
	}{
		{"Deployment", "jotguard-issuer", "      terminationGracePeriodSeconds: 30", "      terminationGracePeriodSeconds: 15", "shorter than its binaries' drain delay and shutdown grace (20s)"},
		{"Deployment", "demo", "      terminationGracePeriodSeconds: 30", "      terminationGracePeriodSeconds: 5", "shorter than its binaries' drain delay and shutdown grace (15s)"},
		{"Deployment", "jotguard-issuer", "  selector:\n", "  replicas: 2\n  selector:\n", "sets replicas, but HorizontalPodAutoscaler/jotguard-issuer owns the count"},
		{"Deployment", "demo", "            memory: 128Mi\n", "", "no memory limit"},
		{"Deployment", "jotguard-issuer", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "the root filesystem is not read-only"},
		{"Deployment", "jotguard-issuer", "runAsNonRoot: true", "runAsNonRoot: false", "runAsNonRoot is not true"},
		{"Job", "jotguard-revocation-topic", "            - ALL\n", "            - NET_RAW\n", "capabilities do not drop ALL"},
		{"Job", "jotguard-revocation-topic", "key: JOTGUARD_KAFKA_BROKERS", "key: JOTGUARD_KAFKA_BROKER", "has no key JOTGUARD_KAFKA_BROKER"},
		{"Deployment", "jotguard-issuer", "        livenessProbe:\n", "        startupProbe:\n", "needs a readiness and a liveness probe"},
		{"PodDisruptionBudget", "demo", "app.kubernetes.io/name: demo", "app.kubernetes.io/name: dmeo", "Deployment/demo: no PodDisruptionBudget"},
		{"Service", "demo", "targetPort: 8081", "targetPort: 8090", ""}, // the app's port: exposed, so no problem
		{"Service", "jotguard-issuer", "targetPort: 8080", "targetPort: 9090", "Service/jotguard-issuer: port http targets 9090"},
		{"ServiceMonitor", "jotguard-issuer", "port: http", "port: metrics", `scrapes port "metrics"`},
		{"PodMonitor", "jotguard-verifier", "port: admin", "port: http-admin", "has no container port named"},
		{"NetworkPolicy", "jotguard-issuer", "    - port: 27017\n      protocol: TCP\n", "", "let nothing out to port 27017 (JOTGUARD_MONGO_URI"},
		{"NetworkPolicy", "demo", "    - port: 9092\n      protocol: TCP\n", "", "let nothing out to port 9092 (JOTGUARD_KAFKA_BROKERS"},
		{"NetworkPolicy", "demo", "    - port: 9081\n", "    - port: 9082\n", "let nothing in on its port 9081"},
		{"NetworkPolicy", "demo", "      protocol: UDP\n", "      protocol: SCTP\n", "let no DNS (UDP 53) out"},
		{"Ingress", "jotguard-issuer", "path: /register", "path: /", "routes /metrics (/) outside the cluster"},
		{"Ingress", "jotguard-issuer", "path: /oauth", "path: /oauth2", "does not route /oauth/token"},
		{"Ingress", "jotguard-issuer", "host: auth.example.com", "host: login.example.com", `host "login.example.com", but JOTGUARD_ISSUER`},
		{"Ingress", "jotguard-issuer", "name: jotguard-issuer\n            port:\n              name: http\n        path: /login", "name: jotguard-issuer\n            port:\n              name: https\n        path: /login", "/login goes to a port Service jotguard-issuer does not have"},
	}
	for _, tc := range cases {
		planted := slices.Clone(objs)
		found := false
		for i, o := range planted {
			if o.gvk.Kind == tc.kind && o.name == tc.name {
				y := strings.Replace(string(o.yaml), tc.old, tc.new, 1)
				if y == string(o.yaml) {
					t.Fatalf("%s/%s has no %q", tc.kind, tc.name, tc.old)
				}
				planted[i] = object{gvk: o.gvk, name: o.name, yaml: []byte(y)}
				found = true
			}
		}
		if !found {
			t.Fatalf("no %s/%s rendered", tc.kind, tc.name)
		}
		var problems []string
		for i := range planted {
			problems = append(problems, validate(&planted[i])...)
		}
		problems = append(problems, platformProblems(k, planted)...)
		problems = append(problems, ingressProblems(planted, paths)...)
		if tc.want == "" {
			if len(problems) > 0 {
				t.Errorf("%s/%s %q → %q: unexpected problems %q", tc.kind, tc.name, tc.old, tc.new, problems)
			}
			continue
		}
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
			t.Errorf("%s/%s %q → %q: problems %q, want one containing %q", tc.kind, tc.name, tc.old, tc.new, problems, tc.want)
		}
	}
}
