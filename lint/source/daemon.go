package source

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

// The Docker Engine is reached through its HTTP API directly: two endpoints
// (inspect, save) do not justify the Docker client module, whose package
// initialisers would run at every start of the ENTRYPOINT binary lint lives
// in. DOCKER_HOST (unix:// or tcp://), DOCKER_TLS_VERIFY and DOCKER_CERT_PATH
// are honoured as the docker CLI does.

// dockerEngine returns an HTTP client and base URL for the Docker Engine.
func dockerEngine() (*http.Client, string, error) {
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = "unix:///var/run/docker.sock"
	}
	u, err := url.Parse(host)
	if err != nil {
		return nil, "", fmt.Errorf("DOCKER_HOST %q: %w", host, err)
	}
	tr := &http.Transport{ResponseHeaderTimeout: 2 * time.Minute, IdleConnTimeout: 30 * time.Second}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	switch u.Scheme {
	case "unix":
		sock := u.Path
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", sock)
		}
		return &http.Client{Transport: tr}, "http://docker", nil
	case "tcp":
		tr.DialContext = dialer.DialContext
		if os.Getenv("DOCKER_TLS_VERIFY") == "" {
			return &http.Client{Transport: tr}, "http://" + u.Host, nil
		}
		dir := os.Getenv("DOCKER_CERT_PATH")
		if dir == "" {
			home, _ := os.UserHomeDir()
			dir = filepath.Join(home, ".docker")
		}
		cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
		if err != nil {
			return nil, "", fmt.Errorf("DOCKER_TLS_VERIFY: %w", err)
		}
		ca, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
		if err != nil {
			return nil, "", fmt.Errorf("DOCKER_TLS_VERIFY: %w", err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca)
		tr.TLSClientConfig = &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}
		return &http.Client{Transport: tr}, "https://" + u.Host, nil
	}
	return nil, "", fmt.Errorf("DOCKER_HOST %q: want unix:// or tcp://", host)
}

// openDaemon reads an image from the local Docker Engine as one `docker
// save` stream, which the scanner walks in a single pass. (go-containerregistry's
// daemon package would buffer the whole image in memory, or save it again
// for every layer.)
func openDaemon(ctx context.Context, ref string) (*Target, error) {
	if _, err := name.ParseReference(ref); err != nil {
		return nil, &UsageError{fmt.Sprintf("%q is not an image reference: %v", ref, err)}
	}
	hc, base, err := dockerEngine()
	if err != nil {
		return nil, err
	}
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ictx, http.MethodGet, base+"/images/"+url.PathEscape(ref)+"/json", nil)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the Docker Engine is not reachable: %w", err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the Docker Engine has no image %s (%s: %s)", ref, resp.Status, strings.TrimSpace(string(msg)))
	}
	return &Target{
		Name: KindDaemon + ":" + ref,
		Stream: func() (io.ReadCloser, error) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/images/get?names="+url.QueryEscape(ref), nil)
			resp, err := hc.Do(req)
			if err != nil {
				return nil, fmt.Errorf("docker save: %w", err)
			}
			if resp.StatusCode != http.StatusOK {
				msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				resp.Body.Close()
				return nil, fmt.Errorf("docker save %s: %s: %s", ref, resp.Status, strings.TrimSpace(string(msg)))
			}
			return resp.Body, nil
		},
		Close: func() error { hc.CloseIdleConnections(); return nil },
	}, nil
}
