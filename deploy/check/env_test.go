package check

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// environments are the overlays a user deploys, each with the kustomization of its training Job.
var environments = []struct {
	name, dir, training string
	monitoring          bool // renders the ServiceMonitor and the Grafana dashboard
	exampleSecret       bool // renders the example admin token Secret (never in prod: a real token is not in git)
	objectStore         bool // the registry is in a bucket (MODEL_DIR=s3://...), not on a ReadWriteMany volume
}{
	{name: "dev", dir: "../overlays/dev", training: "../overlays/dev/training", exampleSecret: true},
	{name: "prod", dir: "../overlays/prod", training: "../overlays/prod/training", monitoring: true},
	{name: "s3", dir: "../overlays/s3", training: "../overlays/s3/training", objectStore: true},
}

// podEnv is a container's environment as the process sees it: the ConfigMaps of envFrom, then env. A variable set
// from a field or resource reference has the value "". A Secret of envFrom is not in git, so its variables are not
// known here (checkObjectStore checks the example of the one the manifests name).
func podEnv(t *testing.T, r rendering, c corev1.Container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		if from.SecretRef != nil {
			continue
		}
		if from.ConfigMapRef == nil {
			t.Errorf("container %s: envFrom other than a ConfigMap", c.Name)
			continue
		}
		cm := named[corev1.ConfigMap](r, "ConfigMap", from.ConfigMapRef.Name)
		if cm == nil {
			t.Errorf("container %s: envFrom ConfigMap %s is not rendered", c.Name, from.ConfigMapRef.Name)
			continue
		}
		for k, v := range cm.Data {
			env[from.Prefix+k] = v
		}
	}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	return env
}

func selects(t *testing.T, sel *metav1.LabelSelector, podLabels map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %v: %v", sel, err)
	}
	return !s.Empty() && s.Matches(labels.Set(podLabels))
}

// containerPort returns the container port a Service target port, probe port or policy port names, by name or
// number.
func containerPort(c corev1.Container, p intstr.IntOrString) (corev1.ContainerPort, bool) {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && p.StrVal == cp.Name) || (p.Type == intstr.Int && p.IntVal == cp.ContainerPort) {
			return cp, true
		}
	}
	return corev1.ContainerPort{}, false
}

// mountAt returns the volume mount whose path is dir, and its volume.
func mountAt(spec corev1.PodSpec, c corev1.Container, dir string) (corev1.VolumeMount, corev1.Volume, bool) {
	for _, m := range c.VolumeMounts {
		if path.Clean(m.MountPath) == path.Clean(dir) {
			for _, v := range spec.Volumes {
				if v.Name == m.Name {
					return m, v, true
				}
			}
		}
	}
	return corev1.VolumeMount{}, corev1.Volume{}, false
}

// checkHardened checks what the restricted Pod Security Standard asks of a pod and its containers, and that the user
// is the image's.
func checkHardened(t *testing.T, s server, what string, spec corev1.PodSpec) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("%s: pod securityContext.runAsNonRoot is not true", what)
	}
	if psc != nil && (psc.RunAsUser == nil || psc.RunAsGroup == nil ||
		fmt.Sprintf("%d:%d", *psc.RunAsUser, *psc.RunAsGroup) != s.user) {
		t.Errorf("%s: pod runs as %s:%s; the Dockerfile's USER is %s", what, show(psc.RunAsUser), show(psc.RunAsGroup), s.user)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: the service account token is mounted, but nothing in the pod calls the Kubernetes API", what)
	}
	for _, c := range spec.Containers {
		sc := c.SecurityContext
		if sc == nil {
			t.Errorf("%s: container %s has no securityContext", what, c.Name)
			continue
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: container %s: allowPrivilegeEscalation is not false", what, c.Name)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: container %s: readOnlyRootFilesystem is not true", what, c.Name)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s: container %s is privileged", what, c.Name)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			t.Errorf("%s: container %s: capabilities must drop ALL and add none", what, c.Name)
		}
		seccomp := sc.SeccompProfile
		if seccomp == nil && psc != nil {
			seccomp = psc.SeccompProfile
		}
		if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: container %s: seccompProfile is not RuntimeDefault", what, c.Name)
		}
		for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[res]
			lim, hasLim := c.Resources.Limits[res]
			if !hasReq || !hasLim || req.Cmp(lim) > 0 {
				t.Errorf("%s: container %s: %s request %v and limit %v: want both, request <= limit", what, c.Name,
					res, req.String(), lim.String())
			}
		}
		// GOMAXPROCS from the CPU limit, rounded up (divisor 1), so the Go scheduler runs no more threads than the
		// CFS quota pays for.
		var found bool
		for _, e := range c.Env {
			if e.Name != "GOMAXPROCS" {
				continue
			}
			found = true
			ref := (*corev1.ResourceFieldSelector)(nil)
			if e.ValueFrom != nil {
				ref = e.ValueFrom.ResourceFieldRef
			}
			if ref == nil || ref.Resource != "limits.cpu" || ref.ContainerName != c.Name ||
				ref.Divisor.Cmp(resource.MustParse("1")) != 0 {
				t.Errorf("%s: container %s: GOMAXPROCS is not the resourceFieldRef limits.cpu of this container with divisor 1", what, c.Name)
			}
		}
		if !found {
			t.Errorf("%s: container %s: no GOMAXPROCS", what, c.Name)
		}
		if strings.HasSuffix(c.Image, ":latest") || !(strings.Contains(c.Image, ":") || strings.Contains(c.Image, "@sha256:")) {
			t.Errorf("%s: container %s: image %q is not pinned to a tag or digest", what, c.Name, c.Image)
		}
	}
}

func duration(t *testing.T, env map[string]string, name string) time.Duration {
	t.Helper()
	v, ok := env[name]
	if !ok {
		t.Fatalf("%s is not set; the grace period check needs it explicit", name)
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return d
}

func TestEnvironments(t *testing.T) {
	s := loadServer(t)
	for _, env := range environments {
		t.Run(env.name, func(t *testing.T) {
			r := render(t, env.dir)
			tr := render(t, env.training)
			if t.Failed() {
				t.FailNow()
			}
			checkEnvironment(t, s, env.monitoring, env.exampleSecret, env.objectStore, r, tr)
		})
	}
}

func checkEnvironment(t *testing.T, s server, monitoring, exampleSecret, objectStore bool, r, tr rendering) {
	deploy := only[appsv1.Deployment](t, r, "Deployment")
	if len(deploy.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("the Deployment has %d containers; want 1", len(deploy.Spec.Template.Spec.Containers))
	}
	pod := deploy.Spec.Template
	server := pod.Spec.Containers[0]
	env := podEnv(t, r, server)
	job := only[batchv1.Job](t, tr, "Job")
	if len(job.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("the training Job has %d containers; want 1", len(job.Spec.Template.Spec.Containers))
	}
	trainer := job.Spec.Template.Spec.Containers[0]
	namespace := r.all("Deployment")[0].namespace

	t.Run("every object is in the environment's namespace", func(t *testing.T) {
		if namespace == "" {
			t.Fatal("the Deployment has no namespace")
		}
		for _, o := range append(slices.Clone(r.objects), tr.objects...) {
			if o.namespace != namespace {
				t.Errorf("%s: namespace %q; want %q", o.id(), o.namespace, namespace)
			}
		}
	})

	t.Run("the Deployment runs at least two replicas and selects its own pods", func(t *testing.T) {
		if deploy.Spec.Replicas == nil || *deploy.Spec.Replicas < 2 {
			t.Errorf("replicas %s; want at least 2", show(deploy.Spec.Replicas))
		}
		if !selects(t, deploy.Spec.Selector, pod.Labels) {
			t.Errorf("selector %v does not match the pod labels %v", deploy.Spec.Selector.MatchLabels, pod.Labels)
		}
		if selects(t, deploy.Spec.Selector, job.Spec.Template.Labels) {
			t.Errorf("selector %v matches the training Job's pods too", deploy.Spec.Selector.MatchLabels)
		}
	})

	t.Run("the Service selects the server's pods and targets a container port", func(t *testing.T) {
		svc := only[corev1.Service](t, r, "Service")
		sel := &metav1.LabelSelector{MatchLabels: svc.Spec.Selector}
		if !selects(t, sel, pod.Labels) {
			t.Errorf("selector %v does not match the pod labels %v", svc.Spec.Selector, pod.Labels)
		}
		if selects(t, sel, job.Spec.Template.Labels) {
			t.Errorf("selector %v matches the training Job's pods, which serve nothing", svc.Spec.Selector)
		}
		if len(svc.Spec.Ports) == 0 {
			t.Fatal("no ports")
		}
		for _, p := range svc.Spec.Ports {
			if _, ok := containerPort(server, p.TargetPort); !ok {
				t.Errorf("port %s: targetPort %s is no port of container %s", p.Name, p.TargetPort.String(), server.Name)
			}
		}
	})

	t.Run("the container ports are ADDR's and GRPC_ADDR's ports, the image's EXPOSE and the Service's", func(t *testing.T) {
		svc := only[corev1.Service](t, r, "Service")
		for _, name := range []string{"ADDR", "GRPC_ADDR"} {
			_, port, err := splitHostPort(env[name])
			if err != nil {
				t.Errorf("%s=%q: %v", name, env[name], err)
				continue
			}
			cp, ok := containerPort(server, intstr.FromInt32(port))
			if !ok {
				t.Errorf("%s=%q: no container port %d", name, env[name], port)
			}
			if !s.exposed[cp.ContainerPort] {
				t.Errorf("container port %d is not exposed by the Dockerfile (%v)", cp.ContainerPort, s.exposed)
			}
			if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool {
				target, ok := containerPort(server, p.TargetPort)
				return ok && target.ContainerPort == port
			}) {
				t.Errorf("%s=%q: no Service port targets container port %d", name, env[name], port)
			}
		}
	})

	t.Run("probes are liveness /healthz, readiness /readyz and a startup probe, all routes of the server", func(t *testing.T) {
		for _, p := range []struct {
			kind  string
			probe *corev1.Probe
			want  string
		}{
			{"liveness", server.LivenessProbe, "/healthz"},
			{"readiness", server.ReadinessProbe, "/readyz"},
			{"startup", server.StartupProbe, ""},
		} {
			if p.probe == nil || p.probe.HTTPGet == nil {
				t.Errorf("%s probe: missing, or not an HTTP GET", p.kind)
				continue
			}
			route, _, _ := strings.Cut(p.probe.HTTPGet.Path, "?")
			if !s.routes[route] {
				t.Errorf("%s probe: %s is not a path of api/openapi.yaml", p.kind, route)
			}
			if p.want != "" && route != p.want {
				t.Errorf("%s probe: %s; want %s", p.kind, route, p.want)
			}
			if _, ok := containerPort(server, p.probe.HTTPGet.Port); !ok {
				t.Errorf("%s probe: port %s is no container port", p.kind, p.probe.HTTPGet.Port.String())
			}
		}
	})

	t.Run("every environment variable is one the server or the Go runtime reads", func(t *testing.T) {
		for name := range env {
			if !s.config[name] && !runtimeEnv[name] && !objectStoreEnv[name] {
				t.Errorf("server: %s is not a configuration variable of cmd/server/config.go", name)
			}
		}
		for _, e := range trainer.Env {
			if !s.config[e.Name] && !runtimeEnv[e.Name] && !objectStoreEnv[e.Name] && e.Name != "SOURCE_DATE_EPOCH" {
				t.Errorf("training Job: %s is not a variable the server reads", e.Name)
			}
		}
	})

	t.Run("terminationGracePeriodSeconds outlasts the preStop pause, DRAIN_DELAY and SHUTDOWN_TIMEOUT", func(t *testing.T) {
		var preStop time.Duration
		if lc := server.Lifecycle; lc != nil && lc.PreStop != nil {
			if lc.PreStop.Sleep == nil {
				t.Error("preStop is not a sleep action (the image has no shell)")
			} else {
				preStop = time.Duration(lc.PreStop.Sleep.Seconds) * time.Second
			}
		} else {
			t.Error("no preStop pause: endpoints would still send requests to a pod that stopped listening")
		}
		need := preStop + duration(t, env, "SHUTDOWN_TIMEOUT")
		if _, ok := env["DRAIN_DELAY"]; ok {
			need += duration(t, env, "DRAIN_DELAY")
		}
		grace := time.Duration(corev1.DefaultTerminationGracePeriodSeconds) * time.Second
		if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
			grace = time.Duration(*g) * time.Second
		}
		if grace <= need {
			t.Errorf("terminationGracePeriodSeconds is %v; want more than %v", grace, need)
		}
	})

	t.Run("the server pod is hardened", func(t *testing.T) {
		checkHardened(t, s, "Deployment", pod.Spec)
	})

	t.Run("the training Job's pod is hardened", func(t *testing.T) {
		checkHardened(t, s, "Job", job.Spec.Template.Spec)
	})

	t.Run("the training Job runs the server's image", func(t *testing.T) {
		if trainer.Image != server.Image {
			t.Errorf("image %s; the Deployment runs %s", trainer.Image, server.Image)
		}
	})

	if objectStore {
		checkObjectStore(t, r, tr, pod.Spec, server, job.Spec.Template.Spec, trainer)
	} else {
		checkRegistryVolume(t, s, r, tr, pod.Spec, server, job.Spec.Template.Spec, trainer)
	}

	t.Run("the training Job runs `server train` with flags it has", func(t *testing.T) {
		args := append(slices.Clone(trainer.Command), trainer.Args...)
		if len(args) == 0 || args[0] != "train" {
			t.Fatalf("command %q; want the image's entrypoint with args train ...", args)
		}
		for _, a := range args[1:] {
			name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if !strings.HasPrefix(a, "-") || !s.trainFlags[name] {
				t.Errorf("argument %q is not a flag of server train (give values as -flag=value)", a)
			}
		}
		if p := job.Spec.Template.Spec.RestartPolicy; p != corev1.RestartPolicyNever && p != corev1.RestartPolicyOnFailure {
			t.Errorf("restartPolicy %q", p)
		}
	})

	t.Run("the HorizontalPodAutoscaler scales the Deployment on CPU from two replicas", func(t *testing.T) {
		hpa := only[autoscalingv2.HorizontalPodAutoscaler](t, r, "HorizontalPodAutoscaler")
		ref := hpa.Spec.ScaleTargetRef
		if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != r.all("Deployment")[0].name {
			t.Errorf("scaleTargetRef %+v; want the Deployment %s", ref, r.all("Deployment")[0].name)
		}
		if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 || hpa.Spec.MaxReplicas < *hpa.Spec.MinReplicas {
			t.Errorf("replicas %s..%d; want at least 2, max >= min", show(hpa.Spec.MinReplicas), hpa.Spec.MaxReplicas)
		}
		var cpu bool
		for _, m := range hpa.Spec.Metrics {
			cpu = cpu || (m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil &&
				m.Resource.Name == corev1.ResourceCPU && m.Resource.Target.Type == autoscalingv2.UtilizationMetricType)
		}
		if !cpu {
			t.Error("no CPU utilization metric")
		}
		if _, ok := server.Resources.Requests[corev1.ResourceCPU]; !ok {
			t.Error("CPU utilization is relative to the request, and the container has none")
		}
	})

	t.Run("the PodDisruptionBudget selects the server's pods and allows a disruption", func(t *testing.T) {
		pdb := only[policyv1.PodDisruptionBudget](t, r, "PodDisruptionBudget")
		if !selects(t, pdb.Spec.Selector, pod.Labels) {
			t.Errorf("selector %v does not match the pod labels %v", pdb.Spec.Selector, pod.Labels)
		}
		switch {
		case pdb.Spec.MaxUnavailable != nil:
			if pdb.Spec.MaxUnavailable.Type == intstr.Int && pdb.Spec.MaxUnavailable.IntVal < 1 {
				t.Error("maxUnavailable < 1 blocks every node drain")
			}
		case pdb.Spec.MinAvailable != nil:
			if pdb.Spec.MinAvailable.Type == intstr.Int && pdb.Spec.MinAvailable.IntVal >= *deploy.Spec.Replicas {
				t.Error("minAvailable >= replicas blocks every node drain")
			}
		default:
			t.Error("neither minAvailable nor maxUnavailable")
		}
	})

	t.Run("the NetworkPolicy covers the server and the Job, and lets the HTTP port in", func(t *testing.T) {
		np := only[networkingv1.NetworkPolicy](t, r, "NetworkPolicy")
		for what, l := range map[string]map[string]string{"server": pod.Labels, "training": job.Spec.Template.Labels} {
			if !selects(t, &np.Spec.PodSelector, l) {
				t.Errorf("podSelector does not match the %s pods' labels %v", what, l)
			}
		}
		var open bool
		for _, rule := range np.Spec.Ingress {
			for _, p := range rule.Ports {
				if p.Port != nil {
					_, ok := containerPort(server, *p.Port)
					open = open || ok
				}
			}
		}
		if !open {
			t.Error("no ingress rule names a port of the server container")
		}
	})

	t.Run("the admin token is a read-only Secret file at ADMIN_TOKEN_FILE", func(t *testing.T) {
		if env["ADMIN_TOKEN"] != "" {
			t.Error("ADMIN_TOKEN is set in plain text")
		}
		file := env["ADMIN_TOKEN_FILE"]
		if file == "" {
			t.Fatal("ADMIN_TOKEN_FILE is not set: each replica would generate a different token")
		}
		m, v, ok := mountAt(pod.Spec, server, path.Dir(file))
		if !ok || v.Secret == nil {
			t.Fatalf("no Secret is mounted at %s", path.Dir(file))
		}
		if !m.ReadOnly {
			t.Error("the Secret's mount is not read-only")
		}
		key := path.Base(file)
		for _, item := range v.Secret.Items {
			if item.Path == path.Base(file) {
				key = item.Key
			}
		}
		if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode&0o007 != 0 {
			t.Errorf("defaultMode %s lets any user read the token", show(v.Secret.DefaultMode))
		}
		secret := named[corev1.Secret](r, "Secret", v.Secret.SecretName)
		switch {
		case !exampleSecret && len(r.all("Secret")) > 0:
			t.Errorf("renders a Secret: a real admin token does not belong in git")
		case exampleSecret && secret == nil:
			t.Errorf("the example Secret %s is not rendered", v.Secret.SecretName)
		case exampleSecret:
			if _, ok := secret.StringData[key]; !ok {
				if _, ok := secret.Data[key]; !ok {
					t.Errorf("Secret %s has no key %q", v.Secret.SecretName, key)
				}
			}
		}
		if v.Secret.SecretName != "perceptron-admin-token" {
			t.Errorf("Secret %s; deploy/README.md tells operators to create perceptron-admin-token", v.Secret.SecretName)
		}
	})

	if !monitoring {
		return
	}
	t.Run("the ServiceMonitor scrapes /metrics through a port of the Service", func(t *testing.T) {
		sm := only[serviceMonitor](t, r, "ServiceMonitor")
		svcObj := r.all("Service")[0]
		svc := svcObj.value.(*corev1.Service)
		if !selects(t, &sm.Spec.Selector, svc.Labels) {
			t.Errorf("selector %v does not match the Service's labels %v", sm.Spec.Selector.MatchLabels, svc.Labels)
		}
		if ns := sm.Spec.NamespaceSelector; ns != nil && !ns.Any && !slices.Contains(ns.MatchNames, svcObj.namespace) {
			t.Errorf("namespaceSelector %+v leaves out %s", *ns, svcObj.namespace)
		}
		if len(sm.Spec.Endpoints) == 0 {
			t.Fatal("no endpoints")
		}
		for _, ep := range sm.Spec.Endpoints {
			if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
				t.Errorf("endpoint port %q is no port name of the Service", ep.Port)
			}
			if !s.routes[ep.Path] || ep.Path != "/metrics" {
				t.Errorf("endpoint path %q; want /metrics", ep.Path)
			}
		}
	})

	t.Run("the Grafana dashboard is a ConfigMap for the sidecar, holding the dashboard's JSON", func(t *testing.T) {
		var found int
		for _, o := range r.all("ConfigMap") {
			cm := o.value.(*corev1.ConfigMap)
			if cm.Labels["grafana_dashboard"] == "" {
				continue
			}
			found++
			for name, data := range cm.Data {
				var dash struct {
					UID    string `json:"uid"`
					Panels []any  `json:"panels"`
				}
				if err := json.Unmarshal([]byte(data), &dash); err != nil || dash.UID == "" || len(dash.Panels) == 0 {
					t.Errorf("%s: %s is not a dashboard with a uid and panels (%v)", o.name, name, err)
				}
			}
		}
		if found != 1 {
			t.Errorf("%d ConfigMaps with the grafana_dashboard label; want 1", found)
		}
	})
}

// splitHostPort splits ADDR, ":8080" or "0.0.0.0:8080".
func splitHostPort(addr string) (string, int32, error) {
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		return "", 0, fmt.Errorf("no port")
	}
	port, err := strconv.ParseInt(addr[i+1:], 10, 32)
	return addr[:i], int32(port), err
}

// show formats an optional field.
func show[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

// checkRegistryVolume checks an environment whose registry is a ReadWriteMany volume that every replica and the
// training Job mount.
func checkRegistryVolume(t *testing.T, s server, r, tr rendering, spec corev1.PodSpec, server corev1.Container, jobSpec corev1.PodSpec, trainer corev1.Container) {
	env := podEnv(t, r, server)
	pvc := only[corev1.PersistentVolumeClaim](t, r, "PersistentVolumeClaim")
	pvcName := r.all("PersistentVolumeClaim")[0].name

	t.Run("the registry volume is ReadWriteMany", func(t *testing.T) {
		if !slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteMany) {
			t.Errorf("access modes %v; replicas on several nodes need ReadWriteMany", pvc.Spec.AccessModes)
		}
	})

	// The server writes to MODEL_DIR and DATA_DIR/sets and nowhere else (the root file system is read-only).
	writable := func(t *testing.T, what string, spec corev1.PodSpec, c corev1.Container, dir string, readOnly bool) corev1.VolumeMount {
		t.Helper()
		m, v, ok := mountAt(spec, c, dir)
		if !ok {
			t.Fatalf("%s: nothing is mounted at %s", what, dir)
		}
		if v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != pvcName {
			t.Errorf("%s: %s is not on the PersistentVolumeClaim %s", what, dir, pvcName)
		}
		if m.ReadOnly != readOnly {
			t.Errorf("%s: %s: readOnly %v; want %v", what, dir, m.ReadOnly, readOnly)
		}
		return m
	}

	t.Run("MODEL_DIR and DATA_DIR/sets are writable mounts of the registry volume", func(t *testing.T) {
		for _, name := range []string{"MODEL_DIR", "DATA_DIR"} {
			if env[name] == "" || env[name] != s.imageEnv[name] {
				t.Errorf("%s=%q; the Dockerfile's ENV has %q, and the image's folders are laid out for it", name,
					env[name], s.imageEnv[name])
			}
		}
		models := writable(t, "Deployment", spec, server, env["MODEL_DIR"], false)
		sets := writable(t, "Deployment", spec, server, path.Join(env["DATA_DIR"], "sets"), false)
		if models.SubPath == sets.SubPath {
			t.Errorf("MODEL_DIR and DATA_DIR/sets share the subPath %q", models.SubPath)
		}
		if _, _, ok := mountAt(spec, server, env["DATA_DIR"]); ok {
			t.Errorf("DATA_DIR %s is mounted over: it would hide the image's MNIST in %s/mnist", env["DATA_DIR"], env["DATA_DIR"])
		}
	})

	t.Run("the training Job uses the server's registry volume and folders", func(t *testing.T) {
		jobEnv := podEnv(t, tr, trainer)
		for _, name := range []string{"MODEL_DIR", "DATA_DIR"} {
			if jobEnv[name] != env[name] {
				t.Errorf("%s=%q; the server has %q", name, jobEnv[name], env[name])
			}
		}
		srvModels, _, _ := mountAt(spec, server, env["MODEL_DIR"])
		srvSets, _, _ := mountAt(spec, server, path.Join(env["DATA_DIR"], "sets"))
		models := writable(t, "Job", jobSpec, trainer, jobEnv["MODEL_DIR"], false)
		sets := writable(t, "Job", jobSpec, trainer, path.Join(jobEnv["DATA_DIR"], "sets"), true)
		if models.SubPath != srvModels.SubPath || sets.SubPath != srvSets.SubPath {
			t.Errorf("subPaths %q and %q; the server's are %q and %q", models.SubPath, sets.SubPath,
				srvModels.SubPath, srvSets.SubPath)
		}
	})
}
