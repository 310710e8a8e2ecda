package webhook

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/secretbroker/secretbroker/internal/dockertest"
)

// TestRuntimeShape runs a mutated pod's containers on the local Docker
// Engine exactly as the patch describes them, since no kubelet runs pods in
// the envtest tests: the install init container's copy into a memory volume
// (a tmpfs volume, mode 0777 as a kubelet makes an emptyDir), the rewritten
// command, the patch's environment and mounts, read-only root filesystems
// and dropped capabilities; with refresh, the broker sidecar started first
// and waited on through /readyz (its startupProbe) before the app starts in
// the same network namespace. The app reads its secret through *_FILE, and
// no value is in its environment: with the declaration in annotations or in
// a ConfigMap, with and without the broker. When the app has ended the
// sidecar is stopped as the kubelet stops native sidecars (a Job's pod
// completes then), and must exit 0 on SIGTERM.
func TestRuntimeShape(t *testing.T) {
	dockertest.Require(t)
	ctx := t.TempDir()
	dockertest.BuildStatic(t, "./cmd/inject", ctx, "inject")
	dockertest.BuildStatic(t, "./cmd/broker", ctx, "broker")
	dockertest.BuildStatic(t, "./internal/testapp", ctx, "app")
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM scratch\nCOPY inject broker /\n"), 0o644)
	sbImage := "secretbroker-webhook-shape-sb:test"
	dockertest.Build(t, ctx, sbImage)
	appCtx := filepath.Join(ctx, "appctx")
	os.MkdirAll(appCtx, 0o755)
	os.Rename(filepath.Join(ctx, "app"), filepath.Join(appCtx, "app"))
	os.WriteFile(filepath.Join(appCtx, "Dockerfile"), []byte("FROM scratch\nCOPY app /app\n"), 0o644)
	appImage := "secretbroker-webhook-shape-app:test"
	dockertest.Build(t, appCtx, appImage)

	// The upstream the file provider reads, generated now.
	raw := make([]byte, 12)
	rand.Read(raw)
	value := "s3cr3t-" + hex.EncodeToString(raw)
	data := filepath.Join(ctx, "data")
	os.MkdirAll(data, 0o755)
	os.WriteFile(filepath.Join(data, "db.yaml"), []byte("password: "+value+"\n"), 0o644)
	want := fmt.Sprintf("sha256=%x", sha256.Sum256([]byte(value)))

	// The declaration of the config cases, as their ConfigMap holds it.
	cms := fakeConfigMaps{"apps/app-sb/broker.yaml": "secrets:\n  - {name: db_password, ref: \"file:///data/db.yaml#password\"}\n"}

	for _, tc := range []struct {
		name    string
		refresh string
		config  bool // the declaration in a ConfigMap, not in secret-NAME annotations
		job     bool // a Job's pod
	}{{"exec", "", false, false}, {"sidecar", "1m", false, false}, {"config", "", true, false}, {"config-sidecar", "1m", true, false}, {"job-sidecar", "1m", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			ann := map[string]string{AnnInject: "true"}
			if tc.config {
				ann[AnnConfig] = "app-sb"
			} else {
				ann[AnnSecretPrefix+"db_password"] = "file:///data/db.yaml#password"
			}
			if tc.refresh != "" {
				ann[AnnRefresh] = tc.refresh
			}
			p := pod(ann, corev1.Container{Name: "app", Image: appImage, Command: []string{"/app", "read", "DB_PASSWORD_FILE"}})
			if tc.job {
				p.Labels = map[string]string{"batch.kubernetes.io/job-name": "report"}
				p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: "report"}}
			}
			ops, err := Mutate(context.Background(), Options{Image: sbImage, ConfigMaps: cms}, "apps", p)
			if err != nil {
				t.Fatal(err)
			}
			m := apply(t, p, ops)

			// The pod's volumes: memory emptyDirs as tmpfs volumes, the
			// ConfigMap as a read-only directory holding its key.
			vols := map[string]string{}
			for _, v := range m.Spec.Volumes {
				if v.ConfigMap != nil {
					dir := filepath.Join(t.TempDir(), v.Name)
					os.MkdirAll(dir, 0o755)
					os.WriteFile(filepath.Join(dir, DefaultConfigKey), must(cms.ConfigMapKey(context.Background(), "apps", v.ConfigMap.Name, DefaultConfigKey)), 0o644)
					vols[v.Name] = dir
					continue
				}
				name := fmt.Sprintf("sb-shape-%s-%s-%d", tc.name, v.Name, time.Now().UnixNano())
				dockertest.MustDocker(t, "volume", "create", "--driver", "local", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=64m,mode=0777", name)
				t.Cleanup(func() { dockertest.Docker(t, "volume", "rm", "-f", name) })
				vols[v.Name] = name
			}
			// The pod's sandbox: a container that holds the volumes (a tmpfs
			// volume is emptied when no container mounts it) and the network
			// namespace every container of the pod joins, as a pause container does.
			pause := fmt.Sprintf("sb-shape-pause-%d", time.Now().UnixNano())
			pargs := []string{"run", "-d", "--name", pause}
			for _, v := range vols {
				if !filepath.IsAbs(v) {
					pargs = append(pargs, "-v", v+":/hold/"+v)
				}
			}
			dockertest.MustDocker(t, append(pargs, "--entrypoint", "/app", appImage, "wait", "0")...)
			t.Cleanup(func() { dockertest.Docker(t, "rm", "-f", pause) })
			netns := "container:" + pause
			var sidecars []string
			for _, ic := range m.Spec.InitContainers {
				if ic.RestartPolicy != nil && *ic.RestartPolicy == corev1.ContainerRestartPolicyAlways {
					name := fmt.Sprintf("sb-shape-broker-%d", time.Now().UnixNano())
					args := append([]string{"run", "-d", "--name", name, "--network", netns}, dockerArgs(ic, vols, data)...)
					dockertest.MustDocker(t, args...)
					t.Cleanup(func() { dockertest.Docker(t, "rm", "-f", name) })
					sidecars = append(sidecars, name)
					// The startupProbe: GET /readyz on the probe port, here through
					// the broker's own healthcheck (no curl in a scratch image).
					probe := ic.StartupProbe.HTTPGet
					ready := false
					for range 100 {
						if _, err := dockertest.Docker(t, "exec", name, "/broker", "healthcheck", "--listen", fmt.Sprintf("127.0.0.1:%d", probe.Port.IntVal)); err == nil {
							ready = true
							break
						}
						time.Sleep(200 * time.Millisecond)
					}
					if !ready {
						logs, _ := dockertest.Docker(t, "logs", name)
						t.Fatalf("the broker never passed its startupProbe %s:\n%s", probe.Path, logs)
					}
					continue
				}
				args := append([]string{"run", "--rm", "--network", netns}, dockerArgs(ic, vols, data)...)
				dockertest.MustDocker(t, args...)
			}
			app := m.Spec.Containers[0]
			args := []string{"run", "--rm", "--network", netns}
			out := dockertest.MustDocker(t, append(args, dockerArgs(app, vols, data)...)...)
			if !strings.Contains(out, want) || !strings.Contains(out, "env-clean") {
				t.Fatalf("the app did not read the secret through DB_PASSWORD_FILE with a clean environment:\n%s", redact(out, value))
			}
			if strings.Contains(out, value) {
				t.Fatal("a secret value reached the output")
			}
			// The pod's containers have ended: the kubelet stops its native
			// sidecars with SIGTERM (then SIGKILL after the grace period),
			// and a Job's pod completes. The broker must end on SIGTERM
			// with 0, not linger to be killed (137).
			for _, name := range sidecars {
				dockertest.MustDocker(t, "stop", "--time", "10", name)
				if code := strings.TrimSpace(dockertest.MustDocker(t, "inspect", "--format", "{{.State.ExitCode}}", name)); code != "0" {
					logs, _ := dockertest.Docker(t, "logs", name)
					t.Errorf("the broker sidecar exited %s when stopped, want 0:\n%s", code, redact(logs, value))
				}
			}
		})
	}
}

var kubeVar = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// dockerArgs turns a container of the pod spec into docker run arguments:
// its image, command and args, environment (with the kubelet's $(VAR)
// expansion; status.podIP is loopback, the pod's shared network
// namespace), volume mounts and security context. /data holds the file
// provider's upstream, mounted read-only into every container.
func dockerArgs(c corev1.Container, vols map[string]string, data string) []string {
	var a []string
	env := map[string]string{}
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP" {
			v = "127.0.0.1"
		}
		v = kubeVar.ReplaceAllStringFunc(v, func(s string) string { return env[s[2:len(s)-1]] })
		env[e.Name] = v
		a = append(a, "-e", e.Name+"="+v)
	}
	for _, m := range c.VolumeMounts {
		spec := vols[m.Name] + ":" + m.MountPath
		if m.ReadOnly {
			spec += ":ro"
		}
		a = append(a, "-v", spec)
	}
	a = append(a, "-v", data+":/data:ro")
	if sc := c.SecurityContext; sc != nil {
		if sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
			a = append(a, "--read-only")
		}
		if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
			a = append(a, "--security-opt", "no-new-privileges")
		}
		if sc.Capabilities != nil {
			for _, d := range sc.Capabilities.Drop {
				a = append(a, "--cap-drop", string(d))
			}
		}
	}
	a = append(a, "--entrypoint", c.Command[0], c.Image)
	return append(append(a, c.Command[1:]...), c.Args...)
}

func redact(s, value string) string { return strings.ReplaceAll(s, value, "[redacted]") }
