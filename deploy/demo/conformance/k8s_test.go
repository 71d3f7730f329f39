package conformance

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// The Kubernetes manifests are checked offline, in three steps:
//
//  1. kustomize (sigs.k8s.io/kustomize/api, the library inside kubectl -k)
//     renders the base and every overlay, components included;
//  2. each object is decoded strictly into its typed struct (k8s.io/api,
//     and the Prometheus Operator's monitoring/v1 for its CRDs) by
//     apimachinery's strict serializer, the decoder the API server uses: an
//     unknown or misspelt field (case-sensitively), a duplicate field, a
//     value of the wrong type, or a kind or apiVersion not registered below
//     is an error;
//  3. every field the API requires is present. The API's OpenAPI schemas
//     call a field required when its JSON tag has no omitempty (that is how
//     they are generated from these same structs), so the test reads the
//     tags.
//
// Then platform rules (resources, security contexts, probes, grace
// periods, PDBs, autoscaling) and references between objects are checked.

// k8sRoot holds the kustomize base and overlays.
const k8sRoot = "deploy/k8s"

// scheme knows every kind the manifests may use.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme,
		networkingv1.AddToScheme, policyv1.AddToScheme, autoscalingv2.AddToScheme, monitoringv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

var strictYAML = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme, kjson.SerializerOptions{Yaml: true, Strict: true})

// object is one rendered manifest: its YAML, and its typed form once valid.
type object struct {
	gvk  schema.GroupVersionKind
	name string
	yaml []byte
	obj  runtime.Object
}

func (o object) String() string { return o.gvk.Kind + "/" + o.name }

// render runs kustomize on dir (relative to the repository root).
func render(dir string) ([]object, error) {
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(root, dir))
	if err != nil {
		return nil, err
	}
	var out []object
	for _, r := range m.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			return nil, err
		}
		g := r.GetGvk()
		out = append(out, object{gvk: schema.GroupVersionKind{Group: g.Group, Version: g.Version, Kind: g.Kind}, name: r.GetName(), yaml: y})
	}
	return out, nil
}

// kustomizations are the directories to render: the base and each overlay.
func kustomizations(t *testing.T) []string {
	t.Helper()
	dirs := []string{k8sRoot + "/base"}
	overlays, err := os.ReadDir(filepath.Join(root, k8sRoot, "overlays"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range overlays {
		if e.IsDir() {
			dirs = append(dirs, k8sRoot+"/overlays/"+e.Name())
		}
	}
	return dirs
}

// validate decodes o strictly and checks its required fields; it returns
// every problem found.
func validate(o *object) []string {
	var problems []string
	obj, _, err := strictYAML.Decode(o.yaml, nil, nil)
	switch {
	case runtime.IsStrictDecodingError(err): // unknown or duplicate fields: obj is decoded all the same
		problems = append(problems, err.Error())
	case err != nil:
		return []string{err.Error()}
	default:
		o.obj = obj
	}
	var doc map[string]any
	if err := yaml.Unmarshal(o.yaml, &doc); err != nil {
		return append(problems, err.Error())
	}
	requiredFields("", reflect.TypeOf(obj), doc, &problems)
	return problems
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

// requiredFields appends to missing the path of each required field of t
// (a JSON field without omitempty or omitzero) that v lacks, recursively.
// Types that decode themselves (quantities, int-or-string, times) are
// leaves.
func requiredFields(path string, t reflect.Type, v any, missing *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case name == "-" || !f.IsExported():
				continue
			case name == "" && (f.Anonymous || strings.Contains(opts, "inline")):
				requiredFields(path, f.Type, m, missing)
				continue
			case name == "":
				name = f.Name
			}
			val, present := m[name]
			optional := slices.ContainsFunc(strings.Split(opts, ","), func(o string) bool { return o == "omitempty" || o == "omitzero" })
			if !present {
				if !optional {
					*missing = append(*missing, "missing required field "+strings.TrimPrefix(path+"."+name, "."))
				}
				continue
			}
			requiredFields(path+"."+name, f.Type, val, missing)
		}
	case reflect.Slice:
		l, _ := v.([]any)
		for i, e := range l {
			requiredFields(fmt.Sprintf("%s[%d]", path, i), t.Elem(), e, missing)
		}
	case reflect.Map:
		m, _ := v.(map[string]any)
		for k, e := range m {
			requiredFields(path+"."+k, t.Elem(), e, missing)
		}
	}
}

// renderValid renders dir and validates each object, reporting problems
// as test errors.
func renderValid(t *testing.T, dir string) []object {
	t.Helper()
	objs, err := render(dir)
	if err != nil {
		t.Fatalf("kustomize %s: %v", dir, err)
	}
	for i := range objs {
		for _, p := range validate(&objs[i]) {
			t.Errorf("%s: %s: %s", dir, objs[i], p)
		}
	}
	return objs
}

func TestKubernetesManifests(t *testing.T) {
	k := loadKnown(t)
	openAPI := openAPIPaths(t)
	for _, dir := range kustomizations(t) {
		t.Run(strings.ReplaceAll(dir, "/", "_"), func(t *testing.T) {
			objs := renderValid(t, dir)
			if t.Failed() {
				return
			}
			kinds := map[string]int{}
			for _, o := range objs {
				kinds[o.gvk.Kind]++
			}
			// What the base must hold, whatever an overlay adds.
			for _, kind := range []string{"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "Ingress", "NetworkPolicy", "ConfigMap", "Secret"} {
				if kinds[kind] == 0 {
					t.Errorf("%s renders no %s (%v)", dir, kind, kinds)
				}
			}
			for _, p := range platformProblems(k, objs) {
				t.Errorf("%s: %s", dir, p)
			}
			for _, p := range ingressProblems(objs, openAPI) {
				t.Errorf("%s: %s", dir, p)
			}
			t.Logf("%s: %d objects valid: %v", dir, len(objs), kinds)
		})
	}
}

// The example overlay adds the components: the topic's Job and the
// Prometheus Operator objects must be there, so the test covers them.
func TestKubernetesOverlayHasComponents(t *testing.T) {
	objs, err := render(k8sRoot + "/overlays/example")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.gvk.Kind)
	}
	for _, kind := range []string{"Job", "ServiceMonitor", "PodMonitor", "PrometheusRule", "Namespace"} {
		if !slices.Contains(kinds, kind) {
			t.Errorf("the example overlay renders no %s (%v)", kind, kinds)
		}
	}
}

// TestKubernetesValidationCatches plants mistakes in rendered objects: each
// must be reported.
func TestKubernetesValidationCatches(t *testing.T) {
	objs, err := render(k8sRoot + "/overlays/example")
	if err != nil {
		t.Fatal(err)
	}
	find := func(kind, name string) []byte {
		for _, o := range objs {
			if o.gvk.Kind == kind && o.name == name {
				return o.yaml
			}
		}
		t.Fatalf("no %s/%s rendered", kind, name)
		return nil
	}
	deploy, rule, job := string(find("Deployment", "jotguard-issuer")), string(find("PrometheusRule", "jotguard")), string(find("Job", "jotguard-revocation-topic"))
	cases := []struct {
		what, yaml, want string
	}{
		{"a misspelt field", strings.Replace(deploy, "readinessProbe:", "readynessProbe:", 1), `unknown field "spec.template.spec.containers[0].readynessProbe"`},
		{"a field in the wrong case", strings.Replace(deploy, "terminationGracePeriodSeconds:", "terminationgraceperiodseconds:", 1), `unknown field "spec.template.spec.terminationgraceperiodseconds"`},
		{"a duplicate field", strings.Replace(deploy, "  selector:\n", "  paused: false\n  paused: true\n  selector:\n", 1), `key "paused" already set`},
		{"a wrong type", strings.Replace(deploy, "containerPort: 8080", "containerPort: http", 1), "cannot unmarshal"},
		{"a wrong type in a CRD", strings.Replace(rule, "  groups:\n", "  groups: none\n  ignored:\n", 1), "cannot unmarshal"},
		{"a missing required field", strings.Replace(deploy, "  selector:\n    matchLabels:\n      app.kubernetes.io/name: jotguard-issuer\n  strategy:", "  strategy:", 1), "missing required field spec.selector"},
		{"a missing required field in a list", strings.Replace(deploy, "        name: issuer\n", "", 1), "missing required field spec.template.spec.containers[0].name"},
		{"a missing required field of a CRD", dropLine(t, rule, "expr: kube_deployment_status_replicas_available", "== 0"), "missing required field spec.groups[0].rules[0].expr"},
		{"a missing required key", dropLine(t, job, "key: JOTGUARD_KAFKA_BROKERS"), "missing required field spec.template.spec.containers[0].env[0].valueFrom.configMapKeyRef.key"},
		{"an unknown kind", strings.Replace(deploy, "kind: Deployment", "kind: Deploymnet", 1), `no kind "Deploymnet"`},
		{"a wrong apiVersion", strings.Replace(deploy, "apiVersion: apps/v1", "apiVersion: apps/v1beta9", 1), "apps/v1beta9"},
	}
	for _, tc := range cases {
		if !strings.Contains(tc.yaml, "\n") || tc.yaml == deploy || tc.yaml == rule || tc.yaml == job {
			t.Fatalf("%s: the planted mistake did not change the object", tc.what)
		}
		o := object{yaml: []byte(tc.yaml)}
		problems := validate(&o)
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
			t.Errorf("%s: problems %q, want one containing %q", tc.what, problems, tc.want)
		}
	}
	// The unplanted objects pass.
	for _, y := range []string{deploy, rule, job} {
		o := object{yaml: []byte(y)}
		if p := validate(&o); len(p) > 0 {
			t.Errorf("a rendered object fails: %q", p)
		}
	}
}

// dropLine removes from s the line containing from, and the following
// lines up to the one containing through (when given).
func dropLine(t *testing.T, s, from string, through ...string) string {
	t.Helper()
	lines := strings.SplitAfter(s, "\n")
	i := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, from) })
	if i < 0 {
		t.Fatalf("no line with %q", from)
	}
	j := i
	for len(through) > 0 && j < len(lines) && !strings.Contains(lines[j], through[0]) {
		j++
	}
	return strings.Join(slices.Delete(lines, i, j+1), "")
}
