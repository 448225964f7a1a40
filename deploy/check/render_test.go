package check

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	strictjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// kinds maps "apiVersion kind" to a new value of the type an object of that kind decodes into. A kind missing here
// fails the test: every object the manifests render is checked against its schema.
var kinds = map[string]func() any{
	"v1 ConfigMap":                            func() any { return new(corev1.ConfigMap) },
	"v1 Secret":                               func() any { return new(corev1.Secret) },
	"v1 ServiceAccount":                       func() any { return new(corev1.ServiceAccount) },
	"v1 Service":                              func() any { return new(corev1.Service) },
	"v1 PersistentVolumeClaim":                func() any { return new(corev1.PersistentVolumeClaim) },
	"apps/v1 Deployment":                      func() any { return new(appsv1.Deployment) },
	"batch/v1 Job":                            func() any { return new(batchv1.Job) },
	"autoscaling/v2 HorizontalPodAutoscaler":  func() any { return new(autoscalingv2.HorizontalPodAutoscaler) },
	"policy/v1 PodDisruptionBudget":           func() any { return new(policyv1.PodDisruptionBudget) },
	"networking.k8s.io/v1 NetworkPolicy":      func() any { return new(networkingv1.NetworkPolicy) },
	"monitoring.coreos.com/v1 ServiceMonitor": func() any { return new(serviceMonitor) },
}

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor (monitoring.coreos.com/v1) that the
// manifests may use; its field names are the CRD's. It is not in k8s.io/api, and importing the operator's module
// would pull in far more than this test needs. A field the manifests start using must be added here, spelled as the
// CRD spells it, or decoding fails.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		JobLabel          string               `json:"jobLabel,omitempty"`
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector *struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector,omitempty"`
		Endpoints []struct {
			Port          string              `json:"port,omitempty"`
			TargetPort    *intstr.IntOrString `json:"targetPort,omitempty"`
			Path          string              `json:"path,omitempty"`
			Scheme        string              `json:"scheme,omitempty"`
			Interval      string              `json:"interval,omitempty"`
			ScrapeTimeout string              `json:"scrapeTimeout,omitempty"`
			HonorLabels   bool                `json:"honorLabels,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// object is one rendered object: who it is, its JSON, and the typed value it decoded into.
type object struct {
	apiVersion, kind, namespace, name string
	json                              []byte
	value                             any
}

func (o object) id() string { return o.apiVersion + " " + o.kind + " " + o.namespace + "/" + o.name }

// rendering is what one kustomization directory renders to.
type rendering struct {
	dir     string
	objects []object
}

// render runs kustomize (the library kubectl embeds) on dir and strictly decodes every object: an unknown or
// misspelt field, a duplicate field or a field whose case is wrong is an error, as `kubectl apply --validate=strict`
// would report it.
func render(t *testing.T, dir string) rendering {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	r := rendering{dir: dir}
	for _, res := range m.Resources() {
		data, err := res.MarshalJSON()
		if err != nil {
			t.Fatalf("%s: %s: %v", dir, res.CurId(), err)
		}
		o := object{apiVersion: res.GetApiVersion(), kind: res.GetKind(), namespace: res.GetNamespace(),
			name: res.GetName(), json: data}
		newValue, ok := kinds[o.apiVersion+" "+o.kind]
		if !ok {
			t.Errorf("%s: %s: a kind this test does not know; add its type to kinds", dir, o.id())
			continue
		}
		o.value = newValue()
		strict, err := strictjson.UnmarshalStrict(data, o.value)
		if err != nil {
			t.Errorf("%s: %s: %v", dir, o.id(), err)
			continue
		}
		for _, e := range strict {
			t.Errorf("%s: %s: %v", dir, o.id(), e)
		}
		r.objects = append(r.objects, o)
	}
	return r
}

// all returns the objects of a kind.
func (r rendering) all(kind string) []object {
	var out []object
	for _, o := range r.objects {
		if o.kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// only returns the one object of a kind, failing the test when there is none or more than one.
func only[T any](t *testing.T, r rendering, kind string) *T {
	t.Helper()
	objs := r.all(kind)
	if len(objs) != 1 {
		t.Fatalf("%s renders %d %s objects; want 1", r.dir, len(objs), kind)
	}
	return objs[0].value.(*T)
}

// named returns the object of a kind and name, or nil.
func named[T any](r rendering, kind, name string) *T {
	for _, o := range r.all(kind) {
		if o.name == name {
			return o.value.(*T)
		}
	}
	return nil
}

// TestEveryKustomizationRenders renders every kustomization under deploy/, the ones no environment uses on their
// own included.
func TestEveryKustomizationRenders(t *testing.T) {
	for _, dir := range []string{"../base", "../training", "../grafana", "../overlays/dev", "../overlays/prod",
		"../overlays/dev/training", "../overlays/prod/training", "../overlays/s3", "../overlays/s3/training"} {
		t.Run(strings.TrimPrefix(dir, "../"), func(t *testing.T) {
			if r := render(t, dir); len(r.objects) == 0 {
				t.Errorf("%s renders no objects", dir)
			}
		})
	}
}

// TestKubectlRendersTheSame checks that kubectl's own kustomize, which `kubectl apply -k` runs, renders what this
// test checked: a kustomize version skew that changed the output would otherwise go unseen.
func TestKubectlRendersTheSame(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed")
	}
	for _, env := range environments {
		for _, dir := range []string{env.dir, env.training} {
			t.Run(strings.TrimPrefix(dir, "../"), func(t *testing.T) {
				var stderr bytes.Buffer
				cmd := exec.Command(kubectl, "kustomize", dir)
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("kubectl kustomize %s: %v: %s", dir, err, stderr.String())
				}
				got := map[string]any{}
				for _, doc := range strings.Split(string(out), "\n---\n") {
					var v map[string]any
					if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
						t.Fatalf("kubectl kustomize %s: %v", dir, err)
					}
					meta, _ := v["metadata"].(map[string]any)
					ns, _ := meta["namespace"].(string)
					name, _ := meta["name"].(string)
					got[v["apiVersion"].(string)+" "+v["kind"].(string)+" "+ns+"/"+name] = v
				}
				want := map[string]any{}
				for _, o := range render(t, dir).objects {
					var v map[string]any
					if err := json.Unmarshal(o.json, &v); err != nil {
						t.Fatal(err)
					}
					want[o.id()] = v
				}
				for id, w := range want {
					if g, ok := got[id]; !ok {
						t.Errorf("kubectl kustomize %s: no %s", dir, id)
					} else if !reflect.DeepEqual(g, w) {
						t.Errorf("kubectl kustomize %s: %s differs from the library's rendering", dir, id)
					}
				}
				for id := range got {
					if _, ok := want[id]; !ok {
						t.Errorf("kubectl kustomize %s: %s, which the library does not render", dir, id)
					}
				}
			})
		}
	}
}
