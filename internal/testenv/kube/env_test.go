package kube

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/secretbroker/secretbroker/webhook"
)

// repoRoot is where deploy/ and examples/ are.
const repoRoot = "../../.."

// assetsDir finds kube-apiserver and etcd: KUBEBUILDER_ASSETS, or the cache
// scripts/kube-assets.sh fills (it prints the directory).
func assetsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		// --print-dir reports the directory without building.
		out, err := exec.Command("bash", filepath.Join(repoRoot, "scripts/kube-assets.sh"), "--print-dir").Output()
		if err == nil {
			dir = strings.TrimSpace(string(out))
		}
	}
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			msg := fmt.Sprintf("no %s in %q: run scripts/kube-assets.sh (or set KUBEBUILDER_ASSETS)", b, dir)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	return dir
}

// cluster is one API server for the whole package, with the webhook
// served in process and registered from deploy/kubernetes/base/webhook.yaml.
type cluster struct {
	cfg    *rest.Config
	cs     kubernetes.Interface
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
	logs   *syncBuffer
}

var (
	once    sync.Once
	shared  *cluster
	sharedE error
	stopEnv func()
)

func TestMain(m *testing.M) {
	code := m.Run()
	if stopEnv != nil {
		stopEnv()
	}
	os.Exit(code)
}

// Images is the image-config source the webhook under test uses; a test
// that needs the in-process registry sets its address here.
var images = &webhook.Registry{Timeout: 5 * time.Second}

func start(t *testing.T) *cluster {
	t.Helper()
	dir := assetsDir(t)
	once.Do(func() { shared, sharedE = startCluster(dir) })
	if sharedE != nil {
		t.Fatal(sharedE)
	}
	return shared
}

func startCluster(assets string) (*cluster, error) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy/kubernetes/base/webhook.yaml"))
	if err != nil {
		return nil, err
	}
	var mwc admissionregv1.MutatingWebhookConfiguration
	if err := yaml.UnmarshalStrict(b, &mwc); err != nil {
		return nil, err
	}
	// A second, test-only configuration without the namespaceSelector,
	// for pods labelled handlerCheckLabel: it sends the webhook pods of the
	// namespaces the first one keeps away, so the handler's own exclusion
	// is what leaves them unchanged (TestHandlerExcludesWhatTheSelectorSends).
	open := mwc.DeepCopy()
	open.Name = "secretbroker-test-no-namespace-selector"
	open.Webhooks[0].Name = "no-namespace-selector.test.secretbroker.io"
	open.Webhooks[0].NamespaceSelector = nil
	open.Webhooks[0].ObjectSelector = &metav1.LabelSelector{MatchLabels: map[string]string{handlerCheckLabel: "true"}}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		WebhookInstallOptions: envtest.WebhookInstallOptions{MutatingWebhooks: []*admissionregv1.MutatingWebhookConfiguration{&mwc, open}},
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("envtest: %w", err)
	}
	c := &cluster{cfg: cfg, logs: &syncBuffer{}}
	stopEnv = func() { env.Stop() }
	if c.cs, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, err
	}
	if c.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	c.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))

	// The webhook reads the API server as its service account, with the
	// RBAC of deploy/kubernetes/base/rbac.yaml and nothing more (envtest
	// authorizes with RBAC): a rule it lacks fails the tests that need it.
	if err := c.grantWebhookRBAC(); err != nil {
		return nil, err
	}
	as := rest.CopyConfig(cfg)
	as.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:secretbroker:secretbroker-webhook",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:secretbroker", "system:authenticated"}}
	webhookClient, err := kubernetes.NewForConfig(as)
	if err != nil {
		return nil, err
	}
	images.Client = webhookClient

	// The webhook, as `broker webhook` runs it, on envtest's serving address.
	wo := env.WebhookInstallOptions
	srv := webhook.NewServer(webhook.Options{
		Image:      "registry.example/secretbroker:test",
		Excluded:   []string{"kube-system", "secretbroker"},
		Images:     images,
		ConfigMaps: webhook.KubeConfigMaps{Client: webhookClient},
	}, slog.New(slog.NewJSONHandler(c.logs, nil)))
	certs := &webhook.CertReloader{CertFile: filepath.Join(wo.LocalServingCertDir, "tls.crt"), KeyFile: filepath.Join(wo.LocalServingCertDir, "tls.key")}
	addr := net.JoinHostPort(wo.LocalServingHost, strconv.Itoa(wo.LocalServingPort))
	go webhook.ListenAndServe(context.Background(), addr, certs, srv.Handler())
	for i := 0; i < 50; i++ {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return c, nil
}

// handlerCheckLabel routes a pod through the test-only configuration that
// has no namespaceSelector.
const handlerCheckLabel = "test.secretbroker.io/no-namespace-selector"

// grantWebhookRBAC creates the ClusterRole and ClusterRoleBinding of
// deploy/kubernetes/base/rbac.yaml as they are written.
func (c *cluster) grantWebhookRBAC() error {
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy/kubernetes/base/rbac.yaml"))
	if err != nil {
		return err
	}
	ctx := context.Background()
	docs, err := docsOf(b)
	if err != nil {
		return err
	}
	for _, doc := range docs {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return err
		}
		switch meta.Kind {
		case "ClusterRole":
			var o rbacv1.ClusterRole
			if err = yaml.UnmarshalStrict(doc, &o); err == nil {
				_, err = c.cs.RbacV1().ClusterRoles().Create(ctx, &o, metav1.CreateOptions{})
			}
		case "ClusterRoleBinding":
			var o rbacv1.ClusterRoleBinding
			if err = yaml.UnmarshalStrict(doc, &o); err == nil {
				_, err = c.cs.RbacV1().ClusterRoleBindings().Create(ctx, &o, metav1.CreateOptions{})
			}
		default:
			err = fmt.Errorf("rbac.yaml: unexpected kind %q", meta.Kind)
		}
		if err != nil {
			return fmt.Errorf("rbac.yaml: %w", err)
		}
	}
	return nil
}

// certManagerModule holds the CustomResourceDefinitions of the kinds the
// cert-manager overlay uses, under deploy/crds (plain controller-gen
// output, the source of cert-manager's own Helm chart). They come from the
// Go module proxy like everything else here; nothing imports the module,
// so it is fetched with `go mod download` into the module cache and costs
// no compile time.
const certManagerModule = "github.com/cert-manager/cert-manager@v1.21.2"

var (
	crdOnce sync.Once
	crdErr  error
)

// certManagerCRDs installs cert-manager's Issuer and Certificate CRDs into
// the API server once. Without the module proxy the cert-manager kinds
// cannot be validated: the test skips them saying so (under CI=true it
// fails).
func certManagerCRDs(t *testing.T, c *cluster) bool {
	t.Helper()
	crdOnce.Do(func() {
		cmd := exec.Command("go", "mod", "download", "-json", certManagerModule)
		cmd.Dir = t.TempDir() // outside any module: go.sum stays as it is
		out, err := cmd.Output()
		var m struct{ Dir, Error string }
		if jerr := json.Unmarshal(out, &m); err != nil || jerr != nil || m.Error != "" || m.Dir == "" {
			crdErr = fmt.Errorf("go mod download %s: %v %s", certManagerModule, err, m.Error)
			return
		}
		crds := filepath.Join(m.Dir, "deploy", "crds")
		_, crdErr = envtest.InstallCRDs(c.cfg, envtest.CRDInstallOptions{Paths: []string{
			filepath.Join(crds, "cert-manager.io_issuers.yaml"),
			filepath.Join(crds, "cert-manager.io_certificates.yaml"),
		}, ErrorIfPathMissing: true})
		c.mapper.Reset() // discovery must see the new kinds
	})
	if crdErr != nil {
		msg := "cert-manager's CRDs could not be installed, so its Issuer and Certificate are not validated: " + crdErr.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Log(msg)
		return false
	}
	return true
}

// createPod creates pod, retrying while the API server has not yet picked
// up the webhook configuration (it loads it asynchronously): until then a
// pod would be stored unmutated, so each attempt that comes back without
// the status annotation but should have it is deleted and retried.
func (c *cluster) createPod(t *testing.T, ns string, pod *corev1.Pod, wantMutated bool) (*corev1.Pod, error) {
	t.Helper()
	ctx := context.Background()
	c.namespace(t, ns)
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := c.cs.CoreV1().Pods(ns).Create(ctx, pod.DeepCopy(), metav1.CreateOptions{})
		if err != nil || !wantMutated || got.Annotations[webhook.AnnStatus] == webhook.StatusInjected || time.Now().After(deadline) {
			if err == nil {
				// Read back what etcd stored.
				got, err = c.cs.CoreV1().Pods(ns).Get(ctx, got.Name, metav1.GetOptions{})
			}
			return got, err
		}
		c.cs.CoreV1().Pods(ns).Delete(ctx, got.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
		time.Sleep(300 * time.Millisecond)
	}
}

func (c *cluster) namespace(t *testing.T, ns string) {
	t.Helper()
	_, err := c.cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// apply server-side applies every document of file with strict field
// validation as a server-side dry run (nothing is stored, so the
// webhook configuration of deploy/ does not replace the one under test): an
// unknown or misplaced field fails.
func (c *cluster) apply(t *testing.T, file string, docs [][]byte) {
	t.Helper()
	ctx := context.Background()
	for i, doc := range docs {
		var u unstructured.Unstructured
		if err := yaml.Unmarshal(doc, &u.Object); err != nil {
			t.Errorf("%s document %d: %v", file, i, err)
			continue
		}
		gvk := u.GroupVersionKind()
		if gvk.Kind == "MutatingWebhookConfiguration" {
			// The one under test has this name (with a url for its
			// clientConfig, which an apply would merge with the service).
			u.SetName(u.GetName() + "-manifest-check")
		}
		m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Errorf("%s document %d (%s): %v", file, i, gvk, err)
			continue
		}
		var ri dynamic.ResourceInterface = c.dyn.Resource(m.Resource)
		if m.Scope.Name() == "namespace" {
			ns := u.GetNamespace()
			if ns == "" {
				ns = "default"
			}
			c.namespace(t, ns)
			ri = c.dyn.Resource(m.Resource).Namespace(ns)
		}
		if err := dryRunApply(ctx, ri, &u); err != nil {
			t.Errorf("%s document %d (%s %s): %v", file, i, gvk.Kind, u.GetName(), err)
		}
	}
}

func dryRunApply(ctx context.Context, ri dynamic.ResourceInterface, u *unstructured.Unstructured) error {
	js, err := u.MarshalJSON()
	if err != nil {
		return err
	}
	force := true
	_, err = ri.Patch(ctx, u.GetName(), types.ApplyPatchType, js, metav1.PatchOptions{
		FieldManager: "secretbroker-test", Force: &force, FieldValidation: "Strict", DryRun: []string{metav1.DryRunAll},
	})
	return err
}

// splitYAML returns the non-empty documents of a multi-document YAML file.
func splitYAML(t *testing.T, b []byte) [][]byte {
	t.Helper()
	docs, err := docsOf(b)
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

func docsOf(b []byte) ([][]byte, error) {
	var out [][]byte
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for {
		doc, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) > 0 && !isOnlyComments(doc) {
			out = append(out, doc)
		}
	}
}

func isOnlyComments(doc []byte) bool {
	for _, l := range strings.Split(string(doc), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var _ = http.StatusOK
