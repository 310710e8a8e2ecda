package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/secretbroker/secretbroker/providers"
	"github.com/secretbroker/secretbroker/spec"
)

// Names of what the webhook adds to a pod.
const (
	InstallContainer = "secretbroker-install" // copies inject into BinDir
	BrokerContainer  = "secretbroker"         // the native sidecar (with refresh)
	BinVolume        = "secretbroker-bin"
	SecretsVolume    = "secretbroker-secrets"
	ConfigVolume     = "secretbroker-config"
	BinDir           = "/secretbroker/bin"
	ConfigDir        = "/etc/secretbroker"
	BrokerPort       = 9102
	StatusInjected   = "injected"
)

// ImageConfigs finds the ENTRYPOINT and CMD of an image, for containers
// that give no command.
type ImageConfigs interface {
	Entrypoint(ctx context.Context, image, namespace string, pullSecrets []string) (entrypoint, cmd []string, err error)
}

// Options are the webhook's settings.
type Options struct {
	// Image holds /inject and /broker (the secretbroker image).
	Image string
	// Excluded namespaces are admitted unchanged (kube-system, the
	// webhook's own), whatever the configuration's namespaceSelector says.
	Excluded []string
	// Images resolves image configs; nil denies pods without a command.
	Images ImageConfigs
	// ConfigMaps reads the declaration of a pod that has both
	// secretbroker.io/config and secretbroker.io/refresh; nil denies such
	// pods.
	ConfigMaps ConfigMaps
}

// ConfigMaps reads one key of a ConfigMap in the pod's namespace.
type ConfigMaps interface {
	ConfigMapKey(ctx context.Context, namespace, name, key string) ([]byte, error)
}

// IsExcluded says whether pods in namespace are admitted unchanged.
func (o Options) IsExcluded(namespace string) bool { return slices.Contains(o.Excluded, namespace) }

// PatchOp is one RFC 6902 operation.
type PatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// Mutate returns the JSON patch that injects pod, or nil when the pod is
// left alone (no opt-in, already injected). An error denies the pod.
func Mutate(ctx context.Context, o Options, namespace string, pod *corev1.Pod) ([]PatchOp, error) {
	if o.IsExcluded(namespace) {
		return nil, nil
	}
	if pod.Annotations[AnnStatus] == StatusInjected || hasContainer(pod.Spec.InitContainers, InstallContainer) {
		return nil, nil
	}
	plan, err := ParsePlan(pod.Annotations)
	if err != nil || plan == nil {
		return nil, err
	}
	selected := map[string]bool{}
	for _, c := range plan.Containers {
		if !hasContainer(pod.Spec.Containers, c) {
			return nil, &InvalidError{[]string{fmt.Sprintf("%s: the pod has no container %q", AnnContainers, c)}}
		}
		selected[c] = true
	}
	for _, v := range []string{BinVolume, SecretsVolume, ConfigVolume} {
		for _, have := range pod.Spec.Volumes {
			if have.Name == v {
				return nil, fmt.Errorf("secretbroker: the pod already has a volume named %s", v)
			}
		}
	}
	p := pod.DeepCopy()
	volRoot := path.Dir(plan.Dir)
	p.Spec.Volumes = append(p.Spec.Volumes,
		memoryVolume(BinVolume, "64Mi"),
		memoryVolume(SecretsVolume, "1Mi"))
	if plan.ConfigMap != "" {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: ConfigVolume, VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: plan.ConfigMap}}}})
	}

	// The declaration, as references only: environment references for
	// secret-NAME, the ConfigMap's file for config. Never a value.
	var decl []corev1.EnvVar
	schemes := map[string]bool{}
	for _, s := range plan.Secrets {
		decl = append(decl, corev1.EnvVar{Name: s.Env, Value: s.Ref})
		if r, err := providers.ParseRef(s.Ref); err == nil {
			schemes[r.Scheme] = true
		}
	}
	if len(schemes) > 0 {
		decl = append(decl, corev1.EnvVar{Name: "INJECT_ENV_SCHEMES", Value: strings.Join(slices.Sorted(maps.Keys(schemes)), ",")})
	}
	decl = append(decl, corev1.EnvVar{Name: "INJECT_DIR", Value: plan.Dir})
	if plan.ConfigMap != "" {
		decl = append(decl, corev1.EnvVar{Name: "INJECT_CONFIG", Value: path.Join(ConfigDir, plan.ConfigKey)})
	}
	if plan.User != "" {
		decl = append(decl, corev1.EnvVar{Name: "INJECT_USER", Value: plan.User})
	}
	var declMounts []corev1.VolumeMount
	if plan.ConfigMap != "" {
		declMounts = append(declMounts, corev1.VolumeMount{Name: ConfigVolume, MountPath: ConfigDir, ReadOnly: true})
	}

	install := corev1.Container{
		Name:            InstallContainer,
		Image:           o.Image,
		Command:         []string{"/inject", "install", BinDir},
		SecurityContext: locked(),
		Resources:       small(),
		VolumeMounts:    []corev1.VolumeMount{{Name: BinVolume, MountPath: BinDir}},
	}
	inits := []corev1.Container{install}
	var appFiles []corev1.EnvVar // with refresh: NAME_FILE for each secret the broker writes
	if plan.Refresh > 0 {
		if appFiles, err = brokerFiles(ctx, o, namespace, plan, decl); err != nil {
			return nil, err
		}
		// A native sidecar, also in a Job's pod: once the pod's
		// containers have ended, the kubelet stops it (SIGTERM, which
		// the broker obeys at once), so the Job completes. No sentinel
		// and no --exit-when: those are for a broker run as an ordinary
		// container (examples/k8s/job.yaml), which no kubelet stops.
		b := corev1.Container{
			Name:          BrokerContainer,
			Image:         o.Image,
			Command:       []string{"/broker"},
			RestartPolicy: ptr(corev1.ContainerRestartPolicyAlways),
			Env: append([]corev1.EnvVar{
				{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
				{Name: "INJECT_LISTEN", Value: fmt.Sprintf("$(POD_IP):%d", BrokerPort)},
				{Name: "INJECT_REFRESH", Value: plan.Refresh.String()},
			}, decl...),
			Ports: []corev1.ContainerPort{{Name: "sb-metrics", ContainerPort: BrokerPort}},
			StartupProbe: &corev1.Probe{
				ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromInt32(BrokerPort)}},
				PeriodSeconds:    1,
				FailureThreshold: 120,
			},
			LivenessProbe: &corev1.Probe{
				ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(BrokerPort)}},
				PeriodSeconds: 10,
			},
			SecurityContext: locked(),
			Resources:       small(),
			VolumeMounts:    append([]corev1.VolumeMount{{Name: SecretsVolume, MountPath: volRoot}}, declMounts...),
		}
		inits = append(inits, b)
	}
	p.Spec.InitContainers = append(inits, p.Spec.InitContainers...)

	for i := range p.Spec.Containers {
		c := &p.Spec.Containers[i]
		if len(selected) > 0 && !selected[c.Name] {
			continue
		}
		argv, args, err := entrypoint(ctx, o, namespace, pod, c)
		if err != nil {
			return nil, err
		}
		wrap := []string{path.Join(BinDir, "inject")}
		mounts := []corev1.VolumeMount{{Name: BinVolume, MountPath: BinDir, ReadOnly: true}}
		if plan.Refresh > 0 {
			// The broker delivers and refreshes; the app's inject only
			// relays changes (SIGHUP), fetching nothing itself.
			wrap = append(wrap, "--dir", plan.Dir, "--supervise", "--watch", plan.Dir, "--reload-signal", "SIGHUP")
			c.Env = append(c.Env, appFiles...)
			mounts = append(mounts, corev1.VolumeMount{Name: SecretsVolume, MountPath: volRoot, ReadOnly: true})
		} else {
			c.Env = append(c.Env, decl...)
			mounts = append(mounts, corev1.VolumeMount{Name: SecretsVolume, MountPath: volRoot})
			mounts = append(mounts, declMounts...)
		}
		c.Command = append(append(wrap, "--"), argv...)
		c.Args = args
		c.VolumeMounts = append(c.VolumeMounts, mounts...)
	}
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	p.Annotations[AnnStatus] = StatusInjected

	return []PatchOp{
		{Op: "add", Path: "/metadata/annotations", Value: p.Annotations},
		{Op: "add", Path: "/spec/volumes", Value: p.Spec.Volumes},
		{Op: "add", Path: "/spec/initContainers", Value: p.Spec.InitContainers},
		{Op: "add", Path: "/spec/containers", Value: p.Spec.Containers},
	}, nil
}

// brokerFiles returns the NAME_FILE variables of the app's containers when
// the broker sidecar delivers: the app's inject fetches nothing, so it
// cannot name the files itself, and the webhook must name them as the
// broker's declaration will (spec.DeclaredSecrets, the broker's own rules):
// the secret-NAME references in decl, and with secretbroker.io/config the
// secrets of the ConfigMap's declaration, read now. The variables are fixed
// when the pod is admitted, as any container environment is; a ConfigMap
// that later names other secrets takes effect for new pods (a rollout).
func brokerFiles(ctx context.Context, o Options, namespace string, plan *Plan, decl []corev1.EnvVar) ([]corev1.EnvVar, error) {
	var refs, schemes []string
	for _, e := range decl {
		switch {
		case e.Name == "INJECT_ENV_SCHEMES":
			schemes = strings.Split(e.Value, ",")
		case !strings.HasPrefix(e.Name, "INJECT_"):
			refs = append(refs, e.Name+"="+e.Value)
		}
	}
	var file []byte
	where := ""
	if plan.ConfigMap != "" {
		where = fmt.Sprintf("%s: ConfigMap %s/%s key %s", AnnConfig, namespace, plan.ConfigMap, plan.ConfigKey)
		if o.ConfigMaps == nil {
			return nil, fmt.Errorf("secretbroker: %s with %s: this webhook reads no ConfigMaps, so it cannot give the app the NAME_FILE variables of the broker's secrets", AnnConfig, AnnRefresh)
		}
		var err error
		if file, err = o.ConfigMaps.ConfigMapKey(ctx, namespace, plan.ConfigMap, plan.ConfigKey); err != nil {
			return nil, fmt.Errorf("secretbroker: %s could not be read (with %s the webhook names the app's NAME_FILE variables from it): %w", where, AnnRefresh, err)
		}
	}
	secrets, err := spec.DeclaredSecrets(file, refs, schemes)
	if err != nil {
		if where == "" {
			where = AnnSecretPrefix + "NAME"
		}
		flat := strings.ReplaceAll(strings.Replace(err.Error(), ":\n  ", ": ", 1), "\n  ", "; ")
		return nil, &InvalidError{[]string{where + ": " + flat}}
	}
	var env []corev1.EnvVar
	for _, s := range secrets {
		if s.ExposeAs != "" {
			return nil, &InvalidError{[]string{fmt.Sprintf("%s: %s asks for expose_as, which a broker sidecar (%s) cannot honour: the app's environment is fixed when it starts and its inject holds no value", where, s.Where, AnnRefresh)}}
		}
		if s.EnvVar != "" {
			env = append(env, corev1.EnvVar{Name: s.EnvVar, Value: path.Join(plan.Dir, s.Name)})
		}
	}
	return env, nil
}

// entrypoint returns the container's full command line, split as
// command (argv) and args, reading the image's ENTRYPOINT and CMD when the
// pod gives no command.
func entrypoint(ctx context.Context, o Options, ns string, pod *corev1.Pod, c *corev1.Container) (argv, args []string, err error) {
	if len(c.Command) > 0 {
		return c.Command, c.Args, nil
	}
	if o.Images == nil {
		return nil, nil, fmt.Errorf("secretbroker: container %q gives no command and this webhook reads no image configs", c.Name)
	}
	var secrets []string
	for _, s := range pod.Spec.ImagePullSecrets {
		secrets = append(secrets, s.Name)
	}
	ep, cmd, err := o.Images.Entrypoint(ctx, c.Image, ns, secrets)
	if err != nil {
		return nil, nil, fmt.Errorf("secretbroker: container %q gives no command and the ENTRYPOINT of image %s could not be read: %w", c.Name, c.Image, err)
	}
	if len(c.Args) > 0 {
		cmd = c.Args // the pod's args replace the image's CMD
	}
	if len(ep) == 0 {
		if len(cmd) == 0 {
			return nil, nil, fmt.Errorf("secretbroker: container %q: image %s has neither ENTRYPOINT nor CMD", c.Name, c.Image)
		}
		return cmd[:1], cmd[1:], nil
	}
	return ep, cmd, nil
}

func hasContainer(cs []corev1.Container, name string) bool {
	return slices.ContainsFunc(cs, func(c corev1.Container) bool { return c.Name == name })
}

func memoryVolume(name, size string) corev1.Volume {
	q := resource.MustParse(size)
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
		EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &q}}}
}

func locked() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr(false),
		ReadOnlyRootFilesystem:   ptr(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
}

func small() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
	}
}

func ptr[T any](v T) *T { return &v }

// MarshalPatch encodes ops for an AdmissionResponse.
func MarshalPatch(ops []PatchOp) ([]byte, error) { return json.Marshal(ops) }
