package k8s_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	k8s "github.com/flywheel-ml/flywheel/deploy/k8s"
)

var serviceNames = []string{"ingest", "features", "registry", "serving", "monitor", "trainer"}

// autoscaled are the services with a HorizontalPodAutoscaler (the issue asks for serving and
// features); the others run a fixed number of replicas.
var autoscaled = map[string]bool{"serving": true, "features": true}

// singletons run one replica, replaced with Recreate: the monitor evaluates windows in one
// process, and the trainer README says to run one replica.
var singletons = map[string]bool{"monitor": true, "trainer": true}

// runtimeVars are the only variables outside FLYWHEEL_* a manifest may set: read by the Go
// runtime (GOMEMLIMIT, GOGC, GOMAXPROCS, GODEBUG) and by crypto/x509 for the trusted roots
// of every TLS connection (SSL_CERT_FILE, SSL_CERT_DIR).
var runtimeVars = map[string]bool{"GOMEMLIMIT": true, "GOGC": true, "GOMAXPROCS": true, "GODEBUG": true,
	"SSL_CERT_FILE": true, "SSL_CERT_DIR": true}

// dirVars maps the directory variables of the services (by suffix) to the SchemaSet whose
// ConfigMap must be mounted there: a service reading views from a directory other than the
// features service's would compute different features.
var dirVars = map[string]string{"_STREAMS_DIR": "streams", "_VIEWS_DIR": "features", "_MODELS_DIR": "models"}

// ---- building ----

// build runs kustomize (krusty, as `kustomize build`) on dir, a directory of this module, over
// an in-memory copy of base/ and overlays/. An overlay's secrets.env — never committed — is
// made from its secrets.env.example, as a user does.
func build(t *testing.T, dir string) []object {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	for _, top := range []string{"base", "overlays"} {
		err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() == "secrets.env" {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if d.Name() == "secrets.env.example" {
				if err := mem.WriteFile("/k8s/"+filepath.ToSlash(filepath.Join(filepath.Dir(p), "secrets.env")), data); err != nil {
					return err
				}
			}
			return mem.WriteFile("/k8s/"+filepath.ToSlash(p), data)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, "/k8s/"+dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var out []object
	for _, r := range m.Resources() {
		j, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var o object
		if err := json.Unmarshal(j, &o); err != nil {
			t.Fatalf("%s: %v", r.CurId(), err)
		}
		if err := json.Unmarshal(j, &o.raw); err != nil {
			t.Fatal(err)
		}
		o.json = j
		out = append(out, o)
	}
	return out
}

// ---- the objects, as far as the checks read them ----

type meta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

type object struct {
	Kind     string            `json:"kind"`
	Metadata meta              `json:"metadata"`
	Data     map[string]string `json:"data"` // ConfigMap, Secret (base64)
	raw      map[string]any
	json     []byte
}

func (o object) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(o.json, v); err != nil {
		t.Fatalf("%s %s: %v", o.Kind, o.Metadata.Name, err)
	}
}

type deployment struct {
	Metadata meta `json:"metadata"`
	Spec     struct {
		Replicas *int `json:"replicas"`
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Strategy struct {
			Type string `json:"type"`
		} `json:"strategy"`
		Template struct {
			Metadata meta    `json:"metadata"`
			Spec     podSpec `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

type podSpec struct {
	AutomountServiceAccountToken  *bool `json:"automountServiceAccountToken"`
	TerminationGracePeriodSeconds *int  `json:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot   *bool  `json:"runAsNonRoot"`
		RunAsUser      *int64 `json:"runAsUser"`
		SeccompProfile struct {
			Type string `json:"type"`
		} `json:"seccompProfile"`
	} `json:"securityContext"`
	Containers     []container `json:"containers"`
	InitContainers []container `json:"initContainers"`
	Volumes        []volume    `json:"volumes"`
}

type container struct {
	Name  string `json:"name"`
	Image string `json:"image"`
	Ports []struct {
		Name          string `json:"name"`
		ContainerPort int    `json:"containerPort"`
	} `json:"ports"`
	Env     []envVar `json:"env"`
	EnvFrom []struct {
		Prefix       string `json:"prefix"`
		ConfigMapRef *struct {
			Name string `json:"name"`
		} `json:"configMapRef"`
		SecretRef *struct {
			Name string `json:"name"`
		} `json:"secretRef"`
	} `json:"envFrom"`
	ReadinessProbe *probe `json:"readinessProbe"`
	LivenessProbe  *probe `json:"livenessProbe"`
	Resources      struct {
		Requests map[string]string `json:"requests"`
		Limits   map[string]string `json:"limits"`
	} `json:"resources"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool  `json:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool  `json:"readOnlyRootFilesystem"`
		Privileged               *bool  `json:"privileged"`
		RunAsUser                *int64 `json:"runAsUser"`
		Capabilities             struct {
			Add  []string `json:"add"`
			Drop []string `json:"drop"`
		} `json:"capabilities"`
	} `json:"securityContext"`
	VolumeMounts []struct {
		Name      string `json:"name"`
		MountPath string `json:"mountPath"`
		ReadOnly  bool   `json:"readOnly"`
		SubPath   string `json:"subPath"`
	} `json:"volumeMounts"`
}

type keyRef struct {
	Name     string `json:"name"`
	Key      string `json:"key"`
	Optional *bool  `json:"optional"`
}

type envVar struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	ValueFrom *struct {
		SecretKeyRef     *keyRef `json:"secretKeyRef"`
		ConfigMapKeyRef  *keyRef `json:"configMapKeyRef"`
		ResourceFieldRef *struct {
			Resource string `json:"resource"`
		} `json:"resourceFieldRef"`
		FieldRef *struct {
			FieldPath string `json:"fieldPath"`
		} `json:"fieldRef"`
	} `json:"valueFrom"`
}

type probe struct {
	HTTPGet *struct {
		Path string `json:"path"`
		Port any    `json:"port"`
	} `json:"httpGet"`
}

type volume struct {
	Name     string `json:"name"`
	EmptyDir *struct {
		SizeLimit string `json:"sizeLimit"`
	} `json:"emptyDir"`
	ConfigMap *struct {
		Name     string `json:"name"`
		Optional *bool  `json:"optional"`
	} `json:"configMap"`
	Secret *struct {
		SecretName string `json:"secretName"`
		Optional   *bool  `json:"optional"`
	} `json:"secret"`
}

type service struct {
	Metadata meta `json:"metadata"`
	Spec     struct {
		Selector map[string]string `json:"selector"`
		Ports    []struct {
			Name       string `json:"name"`
			Port       int    `json:"port"`
			TargetPort any    `json:"targetPort"`
		} `json:"ports"`
	} `json:"spec"`
}

type hpa struct {
	Metadata meta `json:"metadata"`
	Spec     struct {
		ScaleTargetRef struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Name       string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicas *int  `json:"minReplicas"`
		MaxReplicas int   `json:"maxReplicas"`
		Metrics     []any `json:"metrics"`
	} `json:"spec"`
}

type pdb struct {
	Metadata meta `json:"metadata"`
	Spec     struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
	} `json:"spec"`
}

// manifests is one build's output, indexed.
type manifests struct {
	objects     []object
	deployments map[string]deployment // by service name (flywheel-<service>)
	services    []service
	hpas        []hpa
	pdbs        []pdb
	configMaps  map[string]map[string]string // by name as built (hash suffix included)
	secrets     map[string]map[string]string // decoded
	generated   map[string]string            // name as built → name in the kustomization
}

var hashSuffix = regexp.MustCompile(`^(.+)-[a-z0-9]{10}$`)

func index(t *testing.T, objs []object) manifests {
	t.Helper()
	m := manifests{objects: objs, deployments: map[string]deployment{}, configMaps: map[string]map[string]string{},
		secrets: map[string]map[string]string{}, generated: map[string]string{}}
	for _, o := range objs {
		switch o.Kind {
		case "Deployment":
			var d deployment
			o.decode(t, &d)
			svc, ok := strings.CutPrefix(d.Metadata.Name, "flywheel-")
			if !ok || !slices.Contains(serviceNames, svc) {
				t.Errorf("Deployment %s is not flywheel-<service>", d.Metadata.Name)
				continue
			}
			m.deployments[svc] = d
		case "Service":
			var s service
			o.decode(t, &s)
			m.services = append(m.services, s)
		case "HorizontalPodAutoscaler":
			var h hpa
			o.decode(t, &h)
			m.hpas = append(m.hpas, h)
		case "PodDisruptionBudget":
			var p pdb
			o.decode(t, &p)
			m.pdbs = append(m.pdbs, p)
		case "ConfigMap":
			m.configMaps[o.Metadata.Name] = o.Data
			if g := hashSuffix.FindStringSubmatch(o.Metadata.Name); g != nil {
				m.generated[o.Metadata.Name] = g[1]
			}
		case "Secret":
			data := map[string]string{}
			for k, v := range o.Data {
				b, err := base64.StdEncoding.DecodeString(v)
				if err != nil {
					t.Fatalf("Secret %s key %s: %v", o.Metadata.Name, k, err)
				}
				data[k] = string(b)
			}
			m.secrets[o.Metadata.Name] = data
			if g := hashSuffix.FindStringSubmatch(o.Metadata.Name); g != nil {
				m.generated[o.Metadata.Name] = g[1]
			}
		}
	}
	return m
}

// configMapNamed returns the built name of the ConfigMap called name in the kustomization.
func (m manifests) builtName(name string, pool map[string]map[string]string) (string, bool) {
	for built := range pool {
		if built == name || m.generated[built] == name {
			return built, true
		}
	}
	return "", false
}

// ---- the tests ----

// external are objects an overlay expects to exist in the cluster already (not built here).
var external = map[string]map[string]bool{
	"base":             {},
	"overlays/example": {"ConfigMap/flywheel-ca-bundle": true, "Secret/flywheel-nats-creds": true},
}

func TestBuilds(t *testing.T) {
	for _, dir := range []string{"base", "overlays/example"} {
		t.Run(dir, func(t *testing.T) {
			m := index(t, build(t, dir))
			checkManifests(t, m, external[dir])
		})
	}
}

// checkManifests holds one build's output to the properties every deployment of Flywheel needs.
func checkManifests(t *testing.T, m manifests, external map[string]bool) {
	vars := serviceVars(t)
	for _, svc := range serviceNames {
		d, ok := m.deployments[svc]
		if !ok {
			t.Errorf("no Deployment flywheel-%s", svc)
			continue
		}
		t.Run(svc, func(t *testing.T) {
			checkDeployment(t, m, svc, d, vars[svc], external)
		})
	}
	checkEnvFromKeys(t, m, vars)
	checkServices(t, m)
	checkAutoscaling(t, m)
	checkSchemaConfigMaps(t, m)
	checkTokens(t, m)
}

func checkDeployment(t *testing.T, m manifests, svc string, d deployment, reads map[string]goVar, external map[string]bool) {
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 || len(pod.InitContainers) != 0 {
		t.Fatalf("want one container, got %d (+%d init)", len(pod.Containers), len(pod.InitContainers))
	}
	c := pod.Containers[0]
	if c.Name != svc {
		t.Errorf("container is %q, want %q", c.Name, svc)
	}
	if image := c.Image; !strings.HasSuffix(strings.SplitN(image, ":", 2)[0], "flywheel/"+svc) || !strings.Contains(image, ":") {
		t.Errorf("image %q is not [registry/]flywheel/%s:<tag>", image, svc)
	}
	if !subset(d.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels) || len(d.Spec.Selector.MatchLabels) == 0 {
		t.Errorf("selector %v does not select the pod's labels %v", d.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels)
	}

	// Env: literal values and references, then everything envFrom brings.
	env := map[string]string{}
	for _, e := range c.Env {
		if _, dup := env[e.Name]; dup {
			t.Errorf("env %s set twice", e.Name)
		}
		env[e.Name] = e.Value
		if !runtimeVars[e.Name] {
			v, ok := reads[e.Name]
			if !ok {
				t.Errorf("env %s: %s does not read it (not in its Config; see services/%s)", e.Name, svc, svc)
				continue
			}
			if e.ValueFrom == nil {
				if err := parsesAs(v.Type, e.Value); err != nil {
					t.Errorf("env %s=%q: %v", e.Name, e.Value, err)
				}
				if v.Secret && e.Value != "" {
					t.Errorf("env %s is a secret but is written in the manifest; take it from a Secret", e.Name)
				}
			}
		}
		if e.ValueFrom == nil {
			continue
		}
		switch vf := e.ValueFrom; {
		case vf.SecretKeyRef != nil:
			checkKeyRef(t, m, "Secret", *vf.SecretKeyRef, m.secrets, external, e.Name)
		case vf.ConfigMapKeyRef != nil:
			checkKeyRef(t, m, "ConfigMap", *vf.ConfigMapKeyRef, m.configMaps, external, e.Name)
		case vf.ResourceFieldRef != nil:
			if r := vf.ResourceFieldRef.Resource; c.Resources.Limits[strings.TrimPrefix(r, "limits.")] == "" {
				t.Errorf("env %s from %s, which is not set", e.Name, r)
			}
		}
		if v, ok := reads[e.Name]; ok && v.Secret && e.ValueFrom.SecretKeyRef == nil {
			t.Errorf("env %s is a secret but does not come from a Secret", e.Name)
		}
	}
	for _, ef := range c.EnvFrom {
		if ef.Prefix != "" {
			t.Errorf("envFrom with prefix %q: the services read FLYWHEEL_* names as they are", ef.Prefix)
		}
		var data map[string]string
		var kind, name string
		switch {
		case ef.ConfigMapRef != nil:
			kind, name = "ConfigMap", ef.ConfigMapRef.Name
			data = m.configMaps[name]
		case ef.SecretRef != nil:
			kind, name = "Secret", ef.SecretRef.Name
			data = m.secrets[name]
		}
		if data == nil {
			t.Errorf("envFrom %s %s: not in the build", kind, name)
		}
		for k, v := range data {
			if _, set := env[k]; !set {
				env[k] = v
			}
		}
	}

	// Every directory of schemas, views or specs the service reads is the ConfigMap's mount,
	// so all services read the same files; and every path variable lies inside a mount.
	mounts := map[string]volume{}
	vols := map[string]volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
		switch {
		case v.ConfigMap != nil:
			checkRef(t, m, "ConfigMap", v.ConfigMap.Name, m.configMaps, external, v.ConfigMap.Optional)
		case v.Secret != nil:
			checkRef(t, m, "Secret", v.Secret.SecretName, m.secrets, external, v.Secret.Optional)
		case v.EmptyDir != nil:
		default:
			t.Errorf("volume %s: only configMap, secret and emptyDir volumes are expected", v.Name)
		}
	}
	for _, vm := range c.VolumeMounts {
		v, ok := vols[vm.Name]
		if !ok {
			t.Errorf("volumeMount %s: no such volume", vm.Name)
			continue
		}
		if v.EmptyDir == nil && !vm.ReadOnly {
			t.Errorf("volumeMount %s of a %s should be readOnly", vm.Name, volumeKind(v))
		}
		mounts[vm.MountPath] = v
	}
	if v, ok := mounts["/tmp"]; !ok || v.EmptyDir == nil {
		t.Errorf("/tmp is not a writable emptyDir: the root file system is read-only")
	}
	for name := range reads {
		for suffix, set := range dirVars {
			if !strings.HasSuffix(name, suffix) {
				continue
			}
			dir, ok := env[name]
			if !ok {
				t.Errorf("%s is not set: %s would read its built-in copies instead of the %s ConfigMap", name, svc, set)
				continue
			}
			v, ok := mounts[dir]
			want := schemaSet(t, set).ConfigMap
			if !ok || v.ConfigMap == nil || m.generated[v.ConfigMap.Name] != want {
				t.Errorf("%s=%s is not where the ConfigMap %s is mounted", name, dir, want)
			}
		}
	}
	for _, name := range []string{"FLYWHEEL_SERVING_CACHE_DIR", "FLYWHEEL_NATS_CREDS", "SSL_CERT_FILE", "SSL_CERT_DIR"} {
		p, ok := env[name]
		if !ok || p == "" {
			continue
		}
		mount, v, ok := mountOf(mounts, p)
		switch {
		case !ok:
			t.Errorf("%s=%s lies in no volume: the root file system is read-only and holds no such file", name, p)
		case name == "FLYWHEEL_SERVING_CACHE_DIR" && v.EmptyDir == nil:
			t.Errorf("%s=%s must be writable, but %s is a %s", name, p, mount, volumeKind(v))
		}
	}

	// Ports and probes: the listen address the code reads, not its loopback default.
	prefix := "FLYWHEEL_" + strings.ToUpper(svc) + "_"
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for varName, portName := range map[string]string{prefix + "ADDR": "http", prefix + "GRPC_ADDR": "grpc"} {
		v, reads := reads[varName]
		if !reads {
			continue
		}
		addr, set := env[varName]
		if !set {
			t.Errorf("%s is not set: the default %s is loopback, unreachable by probes and Services", varName, v.Default)
			continue
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Errorf("%s=%q: %v", varName, addr, err)
			continue
		}
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			t.Errorf("%s=%q listens on loopback only", varName, addr)
		}
		_, defPort, _ := net.SplitHostPort(v.Default)
		if port != defPort {
			t.Errorf("%s=%q: port %s, the documented port is %s", varName, addr, port, defPort)
		}
		if strconv.Itoa(ports[portName]) != port {
			t.Errorf("containerPort %q is %d, %s listens on %s", portName, ports[portName], varName, port)
		}
	}
	for _, p := range []struct {
		name  string
		probe *probe
		path  string
	}{{"readinessProbe", c.ReadinessProbe, "/readyz"}, {"livenessProbe", c.LivenessProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("no HTTP %s", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s path %q, want %q", p.name, p.probe.HTTPGet.Path, p.path)
		}
		port := portNumber(p.probe.HTTPGet.Port, ports)
		if port == 0 || port != ports["http"] {
			t.Errorf("%s port %v is not the http port %d", p.name, p.probe.HTTPGet.Port, ports["http"])
		}
	}

	// Resources: requests and limits of CPU and memory, requests within limits.
	for _, r := range []string{"cpu", "memory"} {
		req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
		if req == "" || lim == "" {
			t.Errorf("resources: %s request %q, limit %q: both are needed", r, req, lim)
			continue
		}
		rq, err1 := quantity(req)
		lq, err2 := quantity(lim)
		if err1 != nil || err2 != nil {
			t.Errorf("resources: %s %q/%q: %v %v", r, req, lim, err1, err2)
		} else if rq > lq {
			t.Errorf("resources: %s request %s above its limit %s", r, req, lim)
		}
	}

	// Security: non-root, read-only root file system, no privilege, RuntimeDefault seccomp.
	sc := pod.SecurityContext
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("pod securityContext.runAsNonRoot is not true")
	}
	if sc.RunAsUser != nil && *sc.RunAsUser == 0 || c.SecurityContext.RunAsUser != nil && *c.SecurityContext.RunAsUser == 0 {
		t.Error("runAsUser 0")
	}
	if sc.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("seccompProfile %q, want RuntimeDefault", sc.SeccompProfile.Type)
	}
	csc := c.SecurityContext
	if csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
		t.Error("readOnlyRootFilesystem is not true")
	}
	if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation is not false")
	}
	if csc.Privileged != nil && *csc.Privileged || len(csc.Capabilities.Add) > 0 || !slices.Contains(csc.Capabilities.Drop, "ALL") {
		t.Errorf("capabilities: add %v, drop %v; want nothing added and ALL dropped", csc.Capabilities.Add, csc.Capabilities.Drop)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the service account token is mounted; the services call no Kubernetes API")
	}

	// Replicas: the autoscaler owns serving's and features' count (a replicas field would
	// reset it on every apply); monitor and trainer run alone.
	switch {
	case autoscaled[svc] && d.Spec.Replicas != nil:
		t.Errorf("replicas %d set beside the HorizontalPodAutoscaler: every apply would reset its count", *d.Spec.Replicas)
	case singletons[svc] && (d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != "Recreate"):
		t.Errorf("want 1 replica replaced with Recreate, got %s %q", replicas(d), d.Spec.Strategy.Type)
	case !autoscaled[svc] && (d.Spec.Replicas == nil || *d.Spec.Replicas < 1):
		t.Errorf("replicas %s", replicas(d))
	}

	// The registry URL reaches the registry's Service and port.
	for name, v := range env {
		if !strings.HasSuffix(name, "_REGISTRY_URL") {
			continue
		}
		u, err := url.Parse(v)
		if err != nil || u.Scheme != "http" {
			t.Errorf("%s=%q is not an http URL", name, v)
			continue
		}
		if !m.serviceHasPort(strings.Split(u.Hostname(), ".")[0], u.Port()) {
			t.Errorf("%s=%q: no Service %s with port %s", name, v, u.Hostname(), u.Port())
		}
		if r := m.deployments["registry"]; !m.selects(strings.Split(u.Hostname(), ".")[0], r.Spec.Template.Metadata.Labels) {
			t.Errorf("%s=%q: that Service does not select the registry's pods", name, v)
		}
	}
}

// checkEnvFromKeys: every key a ConfigMap or Secret brings in through envFrom is a variable
// that at least one of the services mounting it reads, with a value of the right type.
func checkEnvFromKeys(t *testing.T, m manifests, vars map[string]map[string]goVar) {
	users := map[string][]string{} // "ConfigMap/name" → services
	for _, svc := range serviceNames {
		d, ok := m.deployments[svc]
		if !ok || len(d.Spec.Template.Spec.Containers) == 0 {
			continue // reported by checkDeployment
		}
		for _, ef := range d.Spec.Template.Spec.Containers[0].EnvFrom {
			if ef.ConfigMapRef != nil {
				users["ConfigMap/"+ef.ConfigMapRef.Name] = append(users["ConfigMap/"+ef.ConfigMapRef.Name], svc)
			}
			if ef.SecretRef != nil {
				users["Secret/"+ef.SecretRef.Name] = append(users["Secret/"+ef.SecretRef.Name], svc)
			}
		}
	}
	for ref, svcs := range users {
		kind, name, _ := strings.Cut(ref, "/")
		data := m.configMaps[name]
		if kind == "Secret" {
			data = m.secrets[name]
		}
		for _, k := range slices.Sorted(maps.Keys(data)) {
			var v goVar
			found := false
			for _, svc := range svcs {
				if gv, ok := vars[svc][k]; ok {
					v, found = gv, true
				}
			}
			if !found && !runtimeVars[k] {
				t.Errorf("%s key %s: none of %v reads it", ref, k, svcs)
				continue
			}
			if found {
				if err := parsesAs(v.Type, data[k]); err != nil {
					t.Errorf("%s key %s=%q: %v", ref, k, data[k], err)
				}
				if v.Secret && kind != "Secret" {
					t.Errorf("%s key %s is a secret in a ConfigMap", ref, k)
				}
			}
		}
	}
	if len(users) == 0 {
		t.Error("no Deployment takes the shared settings through envFrom")
	}
}

// checkServices: each Deployment has a Service of its name that selects its pods and no
// other's, exposing every container port by name.
func checkServices(t *testing.T, m manifests) {
	for _, svc := range serviceNames {
		d, ok := m.deployments[svc]
		if !ok || len(d.Spec.Template.Spec.Containers) == 0 {
			continue // reported by checkDeployment
		}
		var s *service
		for i := range m.services {
			if m.services[i].Metadata.Name == d.Metadata.Name {
				s = &m.services[i]
			}
		}
		if s == nil {
			t.Errorf("no Service %s", d.Metadata.Name)
			continue
		}
		for _, other := range serviceNames {
			selects := len(s.Spec.Selector) > 0 && subset(s.Spec.Selector, m.deployments[other].Spec.Template.Metadata.Labels)
			if selects != (other == svc) {
				t.Errorf("Service %s selects %s: %v", s.Metadata.Name, other, selects)
			}
		}
		c := d.Spec.Template.Spec.Containers[0]
		for _, p := range c.Ports {
			exposed := false
			for _, sp := range s.Spec.Ports {
				if sp.TargetPort == p.Name || fmt.Sprint(sp.TargetPort) == strconv.Itoa(p.ContainerPort) {
					exposed = true
					if sp.Port != p.ContainerPort {
						t.Errorf("Service %s port %d → %s: expose it on its own number %d", s.Metadata.Name, sp.Port, p.Name, p.ContainerPort)
					}
				}
			}
			if !exposed {
				t.Errorf("Service %s does not expose container port %s", s.Metadata.Name, p.Name)
			}
		}
	}
}

// checkAutoscaling: serving and features — and only they — have an autoscaler aimed at their
// Deployment, on CPU (their CPU requests are set), and a disruption budget for their pods.
func checkAutoscaling(t *testing.T, m manifests) {
	scaled := map[string]bool{}
	for _, h := range m.hpas {
		ref := h.Spec.ScaleTargetRef
		svc, _ := strings.CutPrefix(ref.Name, "flywheel-")
		if _, ok := m.deployments[svc]; ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || !ok {
			t.Errorf("HPA %s targets %s %s %s, not a Deployment of the build", h.Metadata.Name, ref.APIVersion, ref.Kind, ref.Name)
			continue
		}
		scaled[svc] = true
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas < *h.Spec.MinReplicas {
			t.Errorf("HPA %s: min %v max %d; want at least 2 and max ≥ min", h.Metadata.Name, h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
		if len(h.Spec.Metrics) == 0 {
			t.Errorf("HPA %s has no metrics", h.Metadata.Name)
		}
	}
	for _, svc := range serviceNames {
		if scaled[svc] != autoscaled[svc] {
			t.Errorf("%s: autoscaled %v, want %v", svc, scaled[svc], autoscaled[svc])
		}
		if !autoscaled[svc] {
			continue
		}
		covered := false
		for _, p := range m.pdbs {
			covered = covered || len(p.Spec.Selector.MatchLabels) > 0 && subset(p.Spec.Selector.MatchLabels, m.deployments[svc].Spec.Template.Metadata.Labels)
		}
		if !covered {
			t.Errorf("%s: no PodDisruptionBudget selects its pods", svc)
		}
	}
}

// checkSchemaConfigMaps: the generated ConfigMaps hold exactly the repository's schemas/
// files (names and bytes), so the cluster's services read what the repository ships.
func checkSchemaConfigMaps(t *testing.T, m manifests) {
	root := repoRoot(t)
	for _, set := range k8s.SchemaSets {
		name, ok := m.builtName(set.ConfigMap, m.configMaps)
		if !ok {
			t.Errorf("no ConfigMap %s", set.ConfigMap)
			continue
		}
		files, _ := filepath.Glob(filepath.Join(root, "schemas", set.Dir, set.Pattern))
		want := map[string]string{}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			want[filepath.Base(f)] = string(b)
		}
		if len(want) == 0 {
			t.Fatalf("no schemas/%s/%s", set.Dir, set.Pattern)
		}
		have := m.configMaps[name]
		for _, k := range slices.Sorted(maps.Keys(want)) {
			if v, ok := have[k]; !ok {
				t.Errorf("ConfigMap %s lacks schemas/%s/%s (run go generate ./deploy/k8s/)", set.ConfigMap, set.Dir, k)
			} else if v != want[k] {
				t.Errorf("ConfigMap %s key %s differs from schemas/%s/%s (run go generate ./deploy/k8s/)", set.ConfigMap, k, set.Dir, k)
			}
		}
		for k := range have {
			if _, ok := want[k]; !ok {
				t.Errorf("ConfigMap %s key %s is not in schemas/%s (run go generate ./deploy/k8s/)", set.ConfigMap, k, set.Dir)
			}
		}
	}
}

// checkTokens: the registry tokens that serving, monitor and trainer send are accepted by the
// registry (its FLYWHEEL_AUTH_TOKENS) with the scopes their READMEs name.
func checkTokens(t *testing.T, m manifests) {
	value := func(svc, name string) (string, bool) {
		for _, c := range m.deployments[svc].Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if e.Name == name && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					v, ok := m.secrets[e.ValueFrom.SecretKeyRef.Name][e.ValueFrom.SecretKeyRef.Key]
					return v, ok
				}
			}
		}
		return "", false
	}
	spec, ok := value("registry", "FLYWHEEL_AUTH_TOKENS")
	if !ok {
		t.Error("the registry takes no FLYWHEEL_AUTH_TOKENS from a Secret")
		return
	}
	scopes := map[string][]string{}
	for entry := range strings.SplitSeq(spec, ";") {
		if entry = strings.TrimSpace(entry); entry == "" {
			continue
		}
		tok, list, ok := strings.Cut(entry, ":")
		if !ok || tok == "" || list == "" {
			t.Errorf("FLYWHEEL_AUTH_TOKENS entry %q is not token:scope,scope", entry)
			continue
		}
		for s := range strings.SplitSeq(list, ",") {
			scopes[tok] = append(scopes[tok], strings.TrimSpace(s))
		}
	}
	if len(scopes) == 0 {
		t.Error("FLYWHEEL_AUTH_TOKENS is empty: auth would be off")
	}
	for _, c := range []struct {
		svc  string
		need []string
	}{{"serving", []string{"read"}}, {"monitor", []string{"read"}}, {"trainer", []string{"read", "write", "promote"}}} {
		name := "FLYWHEEL_" + strings.ToUpper(c.svc) + "_REGISTRY_TOKEN"
		tok, ok := value(c.svc, name)
		if !ok || tok == "" {
			t.Errorf("%s: %s is not set from a Secret", c.svc, name)
			continue
		}
		have, known := scopes[tok]
		for _, s := range c.need {
			if !known || !slices.Contains(have, s) && !slices.Contains(have, "*") {
				t.Errorf("%s: the registry does not grant %s's token the %s scope (has %v)", c.svc, name, s, have)
			}
		}
	}
}

// ---- the overlay changes what it says, and nothing else ----

type change struct {
	object string // Kind/name as in the kustomization (no hash suffix); regexp
	path   string // flattened path; regexp
	want   string // regexp of the overlay's value ("" any; "<removed>" gone)
}

// exampleOverlayChanges is what overlays/example/kustomization.yaml says it changes.
var exampleOverlayChanges = func() []change {
	c := []change{
		{`Namespace/flywheel`, `<added>`, ""},
		{`.*`, `metadata\.namespace`, `^flywheel$`},
		{`ConfigMap/flywheel-env`, `data\.FLYWHEEL_KAFKA_BROKERS`, `^[^,]+:9092(,[^,]+:9092)+$`},
		{`ConfigMap/flywheel-env`, `data\.FLYWHEEL_CLICKHOUSE_ADDR`, `:9440$`},
		{`ConfigMap/flywheel-env`, `data\.FLYWHEEL_CLICKHOUSE_USER`, `^flywheel$`},
		{`ConfigMap/flywheel-env`, `data\.FLYWHEEL_CLICKHOUSE_TLS`, `^true$`},
		{`ConfigMap/flywheel-env`, `data\.FLYWHEEL_REDIS_ADDR`, `:6380$`},
		{`ConfigMap/flywheel-env`, `data\.FLYWHEEL_REDIS_TLS`, `^true$`},
		{`ConfigMap/flywheel-env`, `data\.FLYWHEEL_NATS_URL`, `^tls://[^,]+(,tls://[^,]+)*$`},
		{`Secret/flywheel-secrets`, `data\..*`, ""},
		{`Deployment/flywheel-ingest`, `spec\.replicas`, `^3$`},
		{`Deployment/flywheel-registry`, `spec\.replicas`, `^2$`},
		{`HorizontalPodAutoscaler/flywheel-serving`, `spec\.minReplicas`, `^3$`},
		{`HorizontalPodAutoscaler/flywheel-serving`, `spec\.maxReplicas`, `^20$`},
		{`HorizontalPodAutoscaler/flywheel-features`, `spec\.minReplicas`, `^3$`},
		{`Deployment/flywheel-serving`, `spec\.template\.spec\.containers\[serving\]\.resources\.requests\.cpu`, `^1$`},
		{`Deployment/flywheel-serving`, `spec\.template\.spec\.containers\[serving\]\.resources\.requests\.memory`, `^1Gi$`},
		{`Deployment/flywheel-serving`, `spec\.template\.spec\.containers\[serving\]\.resources\.limits\.cpu`, `^4$`},
		{`Deployment/flywheel-serving`, `spec\.template\.spec\.containers\[serving\]\.resources\.limits\.memory`, `^4Gi$`},
	}
	for _, svc := range serviceNames {
		d, ctr := `Deployment/flywheel-`+svc, `spec\.template\.spec\.containers\[`+svc+`\]`
		c = append(c,
			change{d, ctr + `\.image`, `^registry\.example\.com/flywheel/` + svc + `:0\.1\.0$`},
			change{d, ctr + `\.env\[SSL_CERT_FILE\]\.(name|value)`, `^(SSL_CERT_FILE|/etc/flywheel/ca/ca\.crt)$`},
			change{d, ctr + `\.volumeMounts\[ca-bundle\]\..*`, ""},
			change{d, `spec\.template\.spec\.volumes\[ca-bundle\]\..*`, `^(ca-bundle|flywheel-ca-bundle)$`},
		)
	}
	for _, svc := range []string{"registry", "serving"} {
		d, ctr := `Deployment/flywheel-`+svc, `spec\.template\.spec\.containers\[`+svc+`\]`
		c = append(c,
			change{d, ctr + `\.env\[FLYWHEEL_NATS_CREDS\]\.(name|value)`, `^(FLYWHEEL_NATS_CREDS|/etc/flywheel/nats/flywheel\.creds)$`},
			change{d, ctr + `\.volumeMounts\[nats-creds\]\..*`, ""},
			change{d, `spec\.template\.spec\.volumes\[nats-creds\]\..*`, ""},
		)
	}
	return c
}()

func TestExampleOverlayChangesWhatItSays(t *testing.T) {
	base, overlay := flattenAll(t, build(t, "base")), flattenAll(t, build(t, "overlays/example"))
	type diff struct{ object, path, value string }
	var diffs []diff
	for id, o := range overlay {
		b, ok := base[id]
		if !ok {
			diffs = append(diffs, diff{id, "<added>", ""})
			continue
		}
		for p, v := range o {
			if bv, ok := b[p]; !ok || bv != v {
				diffs = append(diffs, diff{id, p, v})
			}
		}
		for p := range b {
			if _, ok := o[p]; !ok {
				diffs = append(diffs, diff{id, p, "<removed>"})
			}
		}
	}
	for id := range base {
		if _, ok := overlay[id]; !ok {
			diffs = append(diffs, diff{id, "<removed>", ""})
		}
	}
	used := make([]bool, len(exampleOverlayChanges))
	for _, d := range diffs {
		explained := false
		for i, c := range exampleOverlayChanges {
			if !full(c.object, d.object) || !full(c.path, d.path) {
				continue
			}
			explained, used[i] = true, true
			if c.want != "" && !regexp.MustCompile(c.want).MatchString(d.value) {
				t.Errorf("%s %s = %q, want %s", d.object, d.path, d.value, c.want)
			}
		}
		if !explained {
			t.Errorf("the overlay changes %s %s to %q, which its kustomization.yaml does not say", d.object, d.path, d.value)
		}
	}
	for i, c := range exampleOverlayChanges {
		if !used[i] {
			t.Errorf("the overlay says it changes %s %s, but the build does not", c.object, c.path)
		}
	}
}

func full(re, s string) bool { return regexp.MustCompile(`^(?:` + re + `)$`).MatchString(s) }

// flattenAll maps each object (Kind/name, generated names without their hash) to its fields
// flattened to path → value; list items with a name are keyed by it.
func flattenAll(t *testing.T, objs []object) map[string]map[string]string {
	m := index(t, objs)
	out := map[string]map[string]string{}
	for _, o := range objs {
		name := o.Metadata.Name
		if g, ok := m.generated[name]; ok {
			name = g
		}
		fields := map[string]string{}
		flatten("", o.raw, m.generated, fields)
		delete(fields, "metadata.name")
		out[o.Kind+"/"+name] = fields
	}
	return out
}

func flatten(p string, v any, generated map[string]string, out map[string]string) {
	join := func(k string) string {
		if p == "" {
			return k
		}
		return p + "." + k
	}
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			flatten(join(k), x, generated, out)
		}
	case []any:
		for i, x := range v {
			key := strconv.Itoa(i)
			if m, ok := x.(map[string]any); ok {
				if n, ok := m["name"].(string); ok {
					key = n
				}
			}
			flatten(p+"["+key+"]", x, generated, out)
		}
	case string:
		if g, ok := generated[v]; ok {
			v = g
		}
		out[p] = v
	default:
		out[p] = fmt.Sprint(v)
	}
}

// ---- the copies of schemas/ ----

func TestSchemaCopiesInSync(t *testing.T) {
	want, err := k8s.SchemaCopies(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	problems, err := k8s.SchemaDrift(k8s.SchemaDir, want)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s/%s (run go generate ./deploy/k8s/)", k8s.SchemaDir, p)
	}
}

func TestSchemaDriftIsFound(t *testing.T) {
	dir := t.TempDir()
	want := map[string][]byte{"kustomization.yaml": []byte("k"), "streams/a.json": []byte("{}"), "features/v.yaml": []byte("v")}
	if err := k8s.SyncSchemas(dir, want); err != nil {
		t.Fatal(err)
	}
	if p, err := k8s.SchemaDrift(dir, want); err != nil || len(p) != 0 {
		t.Fatalf("after sync: %v %v", p, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "streams", "a.json"), []byte(`{"x":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "streams", "old.json"), []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "features", "v.yaml")); err != nil {
		t.Fatal(err)
	}
	p, err := k8s.SchemaDrift(dir, want)
	if err != nil {
		t.Fatal(err)
	}
	wantP := []string{"features/v.yaml: missing", "streams/a.json: differs from its source", "streams/old.json: not a copy of any schemas/ file"}
	if !slices.Equal(p, wantP) {
		t.Errorf("drift %q, want %q", p, wantP)
	}
	if err := k8s.SyncSchemas(dir, want); err != nil {
		t.Fatal(err)
	}
	if p, _ := k8s.SchemaDrift(dir, want); len(p) != 0 {
		t.Errorf("sync left %v", p)
	}
	if _, err := os.Stat(filepath.Join(dir, "streams", "old.json")); err == nil {
		t.Error("sync kept a file that is no longer in schemas/")
	}
}

// TestNoRealSecrets: the base ships example tokens only, and an overlay's secrets.env is never
// committed (git-ignored beside its example).
func TestNoRealSecrets(t *testing.T) {
	m := index(t, build(t, "base"))
	name, ok := m.builtName("flywheel-secrets", m.secrets)
	if !ok {
		t.Fatal("no Secret flywheel-secrets in the base")
	}
	for k, v := range m.secrets[name] {
		for entry := range strings.SplitSeq(v, ";") {
			if tok, _, _ := strings.Cut(entry, ":"); tok != "" && !strings.HasPrefix(tok, "example-") {
				t.Errorf("base Secret %s=%q: values must be empty or example-* placeholders", k, v)
			}
		}
	}
	overlays, _ := filepath.Glob("overlays/*")
	for _, o := range overlays {
		if _, err := os.Stat(filepath.Join(o, "secrets.env.example")); err != nil {
			continue
		}
		ignore, err := os.ReadFile(filepath.Join(o, ".gitignore"))
		if err != nil || !slices.Contains(strings.Fields(string(ignore)), "secrets.env") {
			t.Errorf("%s/.gitignore does not ignore secrets.env", o)
		}
	}
}

// ---- helpers ----

func schemaSet(t *testing.T, dir string) k8s.SchemaSet {
	for _, s := range k8s.SchemaSets {
		if s.Dir == dir {
			return s
		}
	}
	t.Fatalf("no schema set %s", dir)
	return k8s.SchemaSet{}
}

func checkKeyRef(t *testing.T, m manifests, kind string, ref keyRef, pool map[string]map[string]string, external map[string]bool, env string) {
	t.Helper()
	data, ok := pool[ref.Name]
	switch {
	case ok:
		if _, has := data[ref.Key]; !has && (ref.Optional == nil || !*ref.Optional) {
			t.Errorf("env %s: %s %s has no key %s", env, kind, ref.Name, ref.Key)
		}
	case !external[kind+"/"+ref.Name]:
		t.Errorf("env %s: no %s %s in the build", env, kind, ref.Name)
	}
}

func checkRef(t *testing.T, m manifests, kind, name string, pool map[string]map[string]string, external map[string]bool, optional *bool) {
	t.Helper()
	if _, ok := pool[name]; !ok && !external[kind+"/"+name] && (optional == nil || !*optional) {
		t.Errorf("volume from %s %s, which is neither in the build nor declared external", kind, name)
	}
}

func (m manifests) serviceHasPort(name, port string) bool {
	for _, s := range m.services {
		if s.Metadata.Name != name {
			continue
		}
		for _, p := range s.Spec.Ports {
			if strconv.Itoa(p.Port) == port {
				return true
			}
		}
	}
	return false
}

func (m manifests) selects(name string, labels map[string]string) bool {
	for _, s := range m.services {
		if s.Metadata.Name == name && len(s.Spec.Selector) > 0 && subset(s.Spec.Selector, labels) {
			return true
		}
	}
	return false
}

func mountOf(mounts map[string]volume, p string) (string, volume, bool) {
	best := ""
	for mp := range mounts {
		if strings.HasPrefix(p, strings.TrimSuffix(mp, "/")+"/") && len(mp) > len(best) {
			best = mp
		}
	}
	return best, mounts[best], best != ""
}

func volumeKind(v volume) string {
	switch {
	case v.ConfigMap != nil:
		return "configMap"
	case v.Secret != nil:
		return "secret"
	case v.EmptyDir != nil:
		return "emptyDir"
	}
	return "volume"
}

func portNumber(p any, named map[string]int) int {
	switch p := p.(type) {
	case float64:
		return int(p)
	case string:
		if n, err := strconv.Atoi(p); err == nil {
			return n
		}
		return named[p]
	}
	return 0
}

func replicas(d deployment) string {
	if d.Spec.Replicas == nil {
		return "unset"
	}
	return strconv.Itoa(*d.Spec.Replicas)
}

func subset(sub, of map[string]string) bool {
	for k, v := range sub {
		if of[k] != v {
			return false
		}
	}
	return true
}

// parsesAs checks raw is a value platform/config accepts for a field of Go type typ.
func parsesAs(typ, raw string) error {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil // the zero value
	}
	var err error
	switch typ {
	case "string", "[]string":
	case "bool":
		_, err = strconv.ParseBool(raw)
	case "int", "int64":
		_, err = strconv.ParseInt(raw, 10, 64)
	case "float64":
		_, err = strconv.ParseFloat(raw, 64)
	case "time.Duration":
		_, err = time.ParseDuration(raw)
	default:
		err = fmt.Errorf("unknown config type %s", typ)
	}
	if err != nil {
		return fmt.Errorf("not a %s: %w", typ, err)
	}
	return nil
}

// quantity reads the Kubernetes quantities the manifests use: plain or decimal numbers,
// millis (m), and binary or decimal multiples.
func quantity(s string) (float64, error) {
	mult := map[string]float64{"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
		"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}
	num := strings.TrimRight(s, "kmMGTi")
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("quantity %q: %w", s, err)
	}
	if suffix := s[len(num):]; suffix != "" {
		m, ok := mult[suffix]
		if !ok {
			return 0, fmt.Errorf("quantity %q: unknown suffix", s)
		}
		f *= m
	}
	return f, nil
}
