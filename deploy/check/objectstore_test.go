package check

import (
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	strictjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// objectStoreEnv are the standard AWS variables that the server's S3 client reads when MODEL_DIR is s3://...; they
// are the SDKs' names, not the server's own, so cmd/server/config.go does not list them.
var objectStoreEnv = map[string]bool{
	"AWS_ENDPOINT_URL": true, "AWS_ENDPOINT_URL_S3": true, "AWS_REGION": true, "AWS_DEFAULT_REGION": true,
	"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true,
	"AWS_SHARED_CREDENTIALS_FILE": true, "AWS_PROFILE": true,
	"AWS_WEB_IDENTITY_TOKEN_FILE": true, "AWS_ROLE_ARN": true,
}

// credentialsExample is the example of the credentials Secret, which the overlay names but does not render (real
// credentials are not in git).
const credentialsExample = "../overlays/s3/credentials.secret.example.yaml"

// roleAnnotation is where EKS (IRSA) reads the IAM role of a service account.
const roleAnnotation = "eks.amazonaws.com/role-arn"

// containerEnv is a container's env list by name (values set from a reference are "").
func containerEnv(c corev1.Container) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	return env
}

// checkObjectStore checks an environment whose registry is a bucket: no volume holds it, the server and the Job
// name the same bucket and identity, the pods write only to emptyDirs, and they may reach DNS and HTTPS.
func checkObjectStore(t *testing.T, r, tr rendering, spec corev1.PodSpec, server corev1.Container, jobSpec corev1.PodSpec, trainer corev1.Container) {
	env := podEnv(t, r, server)
	jobEnv := podEnv(t, tr, trainer)

	t.Run("no PersistentVolumeClaim: the registry is the bucket of MODEL_DIR", func(t *testing.T) {
		if n := len(r.all("PersistentVolumeClaim")) + len(tr.all("PersistentVolumeClaim")); n > 0 {
			t.Errorf("renders %d PersistentVolumeClaims", n)
		}
		for what, s := range map[string]corev1.PodSpec{"Deployment": spec, "Job": jobSpec} {
			for _, v := range s.Volumes {
				if v.PersistentVolumeClaim != nil {
					t.Errorf("%s: volume %s is a PersistentVolumeClaim", what, v.Name)
				}
			}
		}
		if !strings.HasPrefix(env["MODEL_DIR"], "s3://") || len(strings.TrimPrefix(env["MODEL_DIR"], "s3://")) == 0 {
			t.Errorf("MODEL_DIR=%q; want s3://bucket/prefix", env["MODEL_DIR"])
		}
	})

	t.Run("the training Job writes to the server's bucket with the server's client settings", func(t *testing.T) {
		for _, name := range []string{"MODEL_DIR", "DATA_DIR", "CACHE_DIR", "AWS_REGION", "AWS_ENDPOINT_URL", "S3_FORCE_PATH_STYLE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"} {
			if jobEnv[name] != env[name] {
				t.Errorf("%s=%q; the server has %q", name, jobEnv[name], env[name])
			}
		}
	})

	// With a read-only root, the server writes to DATA_DIR/sets, DATA_DIR/jobs and CACHE_DIR; the Job to CACHE_DIR.
	emptyDir := func(t *testing.T, what string, s corev1.PodSpec, c corev1.Container, dir string) {
		t.Helper()
		m, v, ok := mountAt(s, c, dir)
		switch {
		case !ok:
			t.Errorf("%s: nothing is mounted at %s", what, dir)
		case v.EmptyDir == nil:
			t.Errorf("%s: %s is on volume %s, not an emptyDir", what, dir, v.Name)
		case m.ReadOnly:
			t.Errorf("%s: %s is mounted read-only", what, dir)
		}
	}
	t.Run("the cache, data sets and job records are writable emptyDirs", func(t *testing.T) {
		if env["CACHE_DIR"] == "" || env["CACHE_DIR"] != jobEnv["CACHE_DIR"] {
			t.Fatalf("CACHE_DIR=%q (Job: %q); want a folder, the same in both, on an emptyDir", env["CACHE_DIR"], jobEnv["CACHE_DIR"])
		}
		for _, dir := range []string{env["CACHE_DIR"], path.Join(env["DATA_DIR"], "sets"), path.Join(env["DATA_DIR"], "jobs")} {
			emptyDir(t, "Deployment", spec, server, dir)
		}
		emptyDir(t, "Job", jobSpec, trainer, jobEnv["CACHE_DIR"])
		if _, _, ok := mountAt(spec, server, env["DATA_DIR"]); ok {
			t.Errorf("DATA_DIR %s is mounted over: it would hide the image's MNIST", env["DATA_DIR"])
		}
	})

	t.Run("the pods assume the ServiceAccount's IAM role with a projected web-identity token", func(t *testing.T) {
		sa := named[corev1.ServiceAccount](r, "ServiceAccount", spec.ServiceAccountName)
		if sa == nil {
			t.Fatalf("the Deployment's serviceAccountName %q is not rendered", spec.ServiceAccountName)
		}
		if jobSpec.ServiceAccountName != spec.ServiceAccountName {
			t.Errorf("the Job's serviceAccountName %q; the Deployment's is %q", jobSpec.ServiceAccountName, spec.ServiceAccountName)
		}
		if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
			t.Error("the ServiceAccount mounts the Kubernetes API token, which nothing in the pods uses")
		}
		role := sa.Annotations[roleAnnotation]
		if !strings.HasPrefix(role, "arn:aws:iam::") {
			t.Errorf("annotation %s=%q; want an IAM role ARN", roleAnnotation, role)
		}
		for what, p := range map[string]struct {
			spec corev1.PodSpec
			c    corev1.Container
		}{"Deployment": {spec, server}, "Job": {jobSpec, trainer}} {
			e := containerEnv(p.c)
			if e["AWS_ROLE_ARN"] != role {
				t.Errorf("%s: AWS_ROLE_ARN=%q; the ServiceAccount's role is %q", what, e["AWS_ROLE_ARN"], role)
			}
			file := e["AWS_WEB_IDENTITY_TOKEN_FILE"]
			m, v, ok := mountAt(p.spec, p.c, path.Dir(file))
			if file == "" || !ok || v.Projected == nil {
				t.Errorf("%s: AWS_WEB_IDENTITY_TOKEN_FILE=%q is not in a projected volume", what, file)
				continue
			}
			if !m.ReadOnly {
				t.Errorf("%s: the token's mount is not read-only", what)
			}
			if !slices.ContainsFunc(v.Projected.Sources, func(s corev1.VolumeProjection) bool {
				return s.ServiceAccountToken != nil && s.ServiceAccountToken.Path == path.Base(file) &&
					s.ServiceAccountToken.Audience == "sts.amazonaws.com"
			}) {
				t.Errorf("%s: volume %s projects no service account token for sts.amazonaws.com at %s", what, v.Name, path.Base(file))
			}
		}
	})

	t.Run("the optional credentials Secret is an example outside the rendering, holding AWS variables", func(t *testing.T) {
		data, err := os.ReadFile(credentialsExample)
		if err != nil {
			t.Fatal(err)
		}
		js, err := yaml.YAMLToJSON(data)
		if err != nil {
			t.Fatalf("%s: %v", credentialsExample, err)
		}
		var example corev1.Secret
		if strict, err := strictjson.UnmarshalStrict(js, &example); err != nil || len(strict) > 0 {
			t.Fatalf("%s: %v %v", credentialsExample, err, strict)
		}
		if len(r.all("Secret")) > 0 || len(tr.all("Secret")) > 0 {
			t.Error("renders a Secret: real credentials do not belong in git")
		}
		for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
			if _, ok := example.StringData[k]; !ok {
				t.Errorf("%s has no %s", credentialsExample, k)
			}
		}
		for k := range example.StringData {
			if !objectStoreEnv[k] {
				t.Errorf("%s: %s is not a variable the S3 client reads", credentialsExample, k)
			}
		}
		for what, c := range map[string]corev1.Container{"Deployment": server, "Job": trainer} {
			if !slices.ContainsFunc(c.EnvFrom, func(f corev1.EnvFromSource) bool {
				return f.SecretRef != nil && f.SecretRef.Name == example.Name && f.SecretRef.Optional != nil && *f.SecretRef.Optional
			}) {
				t.Errorf("%s: no optional envFrom of the Secret %s", what, example.Name)
			}
		}
	})

	t.Run("the NetworkPolicy lets the pods reach DNS and HTTPS", func(t *testing.T) {
		np := only[networkingv1.NetworkPolicy](t, r, "NetworkPolicy")
		for _, want := range []int32{53, 443} {
			if !slices.ContainsFunc(np.Spec.Egress, func(rule networkingv1.NetworkPolicyEgressRule) bool {
				return slices.ContainsFunc(rule.Ports, func(p networkingv1.NetworkPolicyPort) bool {
					return p.Port != nil && p.Port.Type == intstr.Int && p.Port.IntVal == want
				})
			}) {
				t.Errorf("no egress rule opens port %d", want)
			}
		}
	})
}
