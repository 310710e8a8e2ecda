// Package awsfake is an in-process AWS Secrets Manager for tests. It speaks
// the service's real wire format — POST /, X-Amz-Target:
// secretsmanager.<Action>, application/x-amz-json-1.1 bodies, errors as
// 400 {"__type": ..., "message": ...} — and verifies the SigV4 signature of
// every request with the SDK's own signer against its static test
// credentials, so a client that signs wrongly, or sends to the wrong
// region or service, is refused as AWS would refuse it.
//
// Each region and account has its own secrets (CreateStringIn): a request
// reads those of the region it is signed for and of the account of its
// credentials (static ones are Account's; AssumeRole's are the role's), or
// those an ARN names, as AWS does.
//
// It implements GetSecretValue, BatchGetSecretValue (with per-secret
// Errors), DescribeSecret, ListSecrets, CreateSecret and PutSecretValue, STS
// AssumeRole and GetCallerIdentity, version stages
// (AWSCURRENT, AWSPREVIOUS), ARNs with AWS's 6-character suffix, and lets a
// test inject what real AWS does under stress: access denied per action and
// secret, KMS decryption failures, throttling, 5xx.
package awsfake

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Account is the account id in every ARN the server makes.
const Account = "123456789012"

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	URL             string
	Region          string
	AccessKeyID     string
	SecretAccessKey string

	ts *httptest.Server

	mu       sync.Mutex
	secrets  map[string]*secretEntry // by name, in Region and Account
	others   map[scope]map[string]*secretEntry
	denied   map[string]bool            // "Action" or "Action secret-name"
	only     map[string]map[string]bool // action -> the only secret names it is allowed on
	kmsFail  map[string]bool            // by name
	throttle int                        // the next n requests are throttled
	fail5xx  int                        // the next n requests fail with 500
	calls    map[string]int             // by action
	sigFails int
	latency  time.Duration
	failNext map[string]apiErr  // action -> the error its next request gets
	sessions map[string]session // temporary credentials from AssumeRole, by access key id
	assumed  []string           // role ARNs assumed, in order
	callers  map[string]string  // action -> the principal of its last request
	at       scope              // the region and account of the request being served (under mu)
}

type session struct {
	secret, token, principal, account string
}

// scope is where a secret lives.
type scope struct{ region, account string }

type secretEntry struct {
	name, arn, kmsKeyID string
	versions            []*version // oldest first
}

type version struct {
	id      string
	str     *string
	bin     []byte
	stages  []string
	created time.Time
}

// New starts a fake for region with freshly generated credentials; it is
// closed by Close. Point the SDK at URL with those static credentials.
func New(region string) *Server {
	s := &Server{
		Region:          region,
		AccessKeyID:     "FAKEAKID" + randomUpper(12),
		SecretAccessKey: randomUpper(40),
		secrets:         map[string]*secretEntry{},
		others:          map[scope]map[string]*secretEntry{},
		denied:          map[string]bool{},
		only:            map[string]map[string]bool{},
		failNext:        map[string]apiErr{},
		kmsFail:         map[string]bool{},
		calls:           map[string]int{},
		sessions:        map[string]session{},
		callers:         map[string]string{},
	}
	s.ts = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.ts.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.ts.Close() }

// Credentials are the static credentials the server accepts.
func (s *Server) Credentials() aws.Credentials {
	return aws.Credentials{AccessKeyID: s.AccessKeyID, SecretAccessKey: s.SecretAccessKey, Source: "awsfake"}
}

// Env is the environment that points the SDK's default chain at the server.
func (s *Server) Env() map[string]string {
	return map[string]string{
		"AWS_ACCESS_KEY_ID":                s.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":            s.SecretAccessKey,
		"AWS_REGION":                       s.Region,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": s.URL,
		"AWS_ENDPOINT_URL_STS":             s.URL,
		"AWS_EC2_METADATA_DISABLED":        "true",
		"AWS_CONFIG_FILE":                  "/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE":      "/dev/null",
	}
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func randomFrom(set string, n int) string {
	b := make([]byte, n)
	for i := range b {
		x, _ := rand.Int(rand.Reader, big.NewInt(int64(len(set))))
		b[i] = set[x.Int64()]
	}
	return string(b)
}

func randomUpper(n int) string { return randomFrom("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", n) }

func newVersionID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// CreateString stores a string secret and returns its ARN.
func (s *Server) CreateString(name, value string) string {
	return s.create(name, &version{str: &value})
}

// CreateBinary stores a binary secret and returns its ARN.
func (s *Server) CreateBinary(name string, value []byte) string {
	return s.create(name, &version{bin: bytes.Clone(value)})
}

func (s *Server) create(name string, v *version) string {
	return s.createIn(scope{s.Region, Account}, name, v)
}

// CreateStringIn stores a string secret in another region or account
// (the server then accepts requests signed for that region) and returns
// its ARN.
func (s *Server) CreateStringIn(region, account, name, value string) string {
	return s.createIn(scope{region, account}, name, &version{str: &value})
}

func (s *Server) createIn(sc scope, name string, v *version) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	store := s.store(sc)
	if store == nil {
		store = map[string]*secretEntry{}
		s.others[sc] = store
	}
	if e, ok := store[name]; ok {
		return e.arn
	}
	e := &secretEntry{name: name, arn: fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s", sc.region, sc.account, name, randomFrom(alnum, 6))}
	v.id, v.stages, v.created = newVersionID(), []string{"AWSCURRENT"}, time.Now()
	e.versions = []*version{v}
	store[name] = e
	return e.arn
}

// store is the secrets of sc; nil for a region and account with none.
func (s *Server) store(sc scope) map[string]*secretEntry {
	if sc == (scope{s.Region, Account}) {
		return s.secrets
	}
	return s.others[sc]
}

// serves reports whether requests signed for region are accepted.
func (s *Server) serves(region string) bool {
	if region == s.Region {
		return true
	}
	for sc := range s.others {
		if sc.region == region {
			return true
		}
	}
	return false
}

// PutString adds a new current version to a secret, as PutSecretValue
// does: the old AWSCURRENT becomes AWSPREVIOUS. It returns the version id.
func (s *Server) PutString(name, value string, extraStages ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.secrets[name]
	if e == nil {
		panic("awsfake: PutString on unknown secret " + name)
	}
	return e.put(&version{str: &value}, append([]string{"AWSCURRENT"}, extraStages...))
}

func (e *secretEntry) put(v *version, stages []string) string {
	v.id, v.created = newVersionID(), time.Now()
	v.stages = stages
	moveCurrent := contains(stages, "AWSCURRENT")
	for _, old := range e.versions {
		var keep []string
		for _, st := range old.stages {
			switch {
			case contains(stages, st) && st != "AWSCURRENT":
			case st == "AWSPREVIOUS" && moveCurrent:
			case st == "AWSCURRENT" && moveCurrent:
				keep = append(keep, "AWSPREVIOUS")
			default:
				keep = append(keep, st)
			}
		}
		old.stages = keep
	}
	e.versions = append(e.versions, v)
	return v.id
}

// SetKMSKey records the KMS key a secret is encrypted with (DescribeSecret
// reports it).
func (s *Server) SetKMSKey(name, keyARN string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[name].kmsKeyID = keyARN
}

// FailKMS makes reads of the secret fail as when KMS cannot decrypt it.
func (s *Server) FailKMS(name string) { s.mu.Lock(); s.kmsFail[name] = true; s.mu.Unlock() }

// Deny makes action (e.g. "BatchGetSecretValue") fail with
// AccessDeniedException; with secret names, only for those secrets.
func (s *Server) Deny(action string, names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(names) == 0 {
		s.denied[action] = true
	}
	for _, n := range names {
		s.denied[action+" "+n] = true
	}
}

// Restrict allows action only on the named secrets, as an IAM policy
// listing exact ARNs does: any other name, existing or not, is denied
// (AWS authorises before it looks the secret up).
func (s *Server) Restrict(action string, names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.only[action] = map[string]bool{}
	for _, n := range names {
		s.only[action][n] = true
	}
}

// FailNext makes the next request for action fail with a 400 of type code.
func (s *Server) FailNext(action, code, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext[action] = apiErr{400, code, msg}
}

// Throttle makes the next n requests fail with ThrottlingException.
func (s *Server) Throttle(n int) { s.mu.Lock(); s.throttle = n; s.mu.Unlock() }

// Fail5xx makes the next n requests fail with 500 InternalServiceError.
func (s *Server) Fail5xx(n int) { s.mu.Lock(); s.fail5xx = n; s.mu.Unlock() }

// SetLatency delays every answer by d, as a network round trip would.
func (s *Server) SetLatency(d time.Duration) { s.mu.Lock(); s.latency = d; s.mu.Unlock() }

// Calls returns how many requests for action were answered (any outcome);
// with action "" the total.
func (s *Server) Calls(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if action == "" {
		n := 0
		for _, c := range s.calls {
			n += c
		}
		return n
	}
	return s.calls[action]
}

// ResetCalls zeroes the counters.
func (s *Server) ResetCalls() { s.mu.Lock(); s.calls = map[string]int{}; s.mu.Unlock() }

// SignatureFailures is how many requests failed signature verification.
func (s *Server) SignatureFailures() int { s.mu.Lock(); defer s.mu.Unlock(); return s.sigFails }

type apiErr struct {
	status int
	typ    string
	msg    string
}

func writeErr(w http.ResponseWriter, e apiErr) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Errortype", e.typ)
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.typ, "message": e.msg})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Amzn-Requestid", newVersionID())
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeErr(w, apiErr{400, "SerializationException", "cannot read body"})
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		writeErr(w, apiErr{404, "UnknownOperationException", ""})
		return
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		s.serveSTS(w, r, body)
		return
	}
	target := r.Header.Get("X-Amz-Target")
	action, ok := strings.CutPrefix(target, "secretsmanager.")
	if !ok {
		writeErr(w, apiErr{400, "UnknownOperationException", ""})
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		writeErr(w, apiErr{400, "SerializationException", "Content-Type must be application/x-amz-json-1.1, got " + ct})
		return
	}
	who, sigErr := s.verify(r, body, "secretsmanager")
	if sigErr != nil {
		writeErr(w, *sigErr)
		return
	}
	principal := who.principal

	s.mu.Lock()
	lat := s.latency
	s.mu.Unlock()
	if lat > 0 {
		time.Sleep(lat)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.at = scope{who.region, who.account}
	s.calls[action]++
	s.callers[action] = principal
	if s.throttle > 0 {
		s.throttle--
		writeErr(w, apiErr{400, "ThrottlingException", "Rate exceeded"})
		return
	}
	if fe, ok := s.failNext[action]; ok {
		delete(s.failNext, action)
		writeErr(w, fe)
		return
	}
	if s.fail5xx > 0 {
		s.fail5xx--
		writeErr(w, apiErr{500, "InternalServiceError", "An error occurred on the server side."})
		return
	}
	var out any
	var e *apiErr
	switch action {
	case "GetSecretValue":
		var in struct{ SecretId, VersionId, VersionStage string }
		if e = decode(body, &in); e == nil {
			out, e = s.getSecretValue("GetSecretValue", in.SecretId, in.VersionId, in.VersionStage)
		}
	case "BatchGetSecretValue":
		var in struct {
			SecretIdList []string
			Filters      []any
			NextToken    string
		}
		if e = decode(body, &in); e == nil {
			out, e = s.batch(in.SecretIdList, len(in.Filters) > 0)
		}
	case "DescribeSecret":
		var in struct{ SecretId string }
		if e = decode(body, &in); e == nil {
			out, e = s.describe(in.SecretId)
		}
	case "ListSecrets":
		if s.denied["ListSecrets"] {
			e = &apiErr{400, "AccessDeniedException", fmt.Sprintf("User: %s is not authorized to perform: secretsmanager:ListSecrets because no identity-based policy allows the secretsmanager:ListSecrets action", principal)}
			break
		}
		list := []map[string]any{}
		for _, ent := range s.secrets {
			list = append(list, map[string]any{"ARN": ent.arn, "Name": ent.name})
		}
		out = map[string]any{"SecretList": list}
	case "CreateSecret":
		var in struct {
			Name, SecretString string
			SecretBinary       []byte
		}
		if e = decode(body, &in); e == nil {
			if _, dup := s.secrets[in.Name]; dup {
				e = &apiErr{400, "ResourceExistsException", fmt.Sprintf("The operation failed because the secret %s already exists.", in.Name)}
				break
			}
			s.mu.Unlock()
			var arn string
			if in.SecretBinary != nil {
				arn = s.CreateBinary(in.Name, in.SecretBinary)
			} else {
				arn = s.CreateString(in.Name, in.SecretString)
			}
			s.mu.Lock()
			ent := s.secrets[in.Name]
			out = map[string]any{"ARN": arn, "Name": in.Name, "VersionId": ent.versions[0].id}
		}
	case "PutSecretValue":
		var in struct {
			SecretId, SecretString string
			SecretBinary           []byte
			VersionStages          []string
		}
		if e = decode(body, &in); e == nil {
			ent := s.find(in.SecretId)
			if ent == nil {
				e = notFound()
				break
			}
			stages := in.VersionStages
			if len(stages) == 0 {
				stages = []string{"AWSCURRENT"}
			}
			v := &version{bin: in.SecretBinary}
			if in.SecretBinary == nil {
				str := in.SecretString
				v.str = &str
			}
			id := ent.put(v, stages)
			out = map[string]any{"ARN": ent.arn, "Name": ent.name, "VersionId": id, "VersionStages": stages}
		}
	default:
		e = &apiErr{400, "UnknownOperationException", ""}
	}
	if e != nil {
		writeErr(w, *e)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

func decode(body []byte, v any) *apiErr {
	if err := json.Unmarshal(body, v); err != nil {
		return &apiErr{400, "SerializationException", "Start of structure or map found where not expected."}
	}
	return nil
}

func notFound() *apiErr {
	return &apiErr{400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret."}
}

// find looks a secret up by name in the request's region and account, or
// by full ARN or partial ARN (no suffix) in the ARN's account (as a
// resource policy that lets the caller's account read it would) and the
// request's region.
func (s *Server) find(id string) *secretEntry {
	sc := s.at
	if sc == (scope{}) {
		sc = scope{s.Region, Account}
	}
	if p := strings.Split(id, ":"); len(p) >= 7 && p[0] == "arn" {
		if p[3] != sc.region {
			return nil
		}
		sc.account = p[4]
	}
	store := s.store(sc)
	if e, ok := store[id]; ok {
		return e
	}
	for _, e := range store {
		if e.arn == id || (strings.HasPrefix(id, "arn:") && strings.HasPrefix(e.arn, id+"-") && len(e.arn) == len(id)+7) {
			return e
		}
	}
	return nil
}

func (s *Server) deniedFor(action string, e *secretEntry, id string) bool {
	if only, ok := s.only[action]; ok {
		name := id
		if e != nil {
			name = e.name
		}
		if !only[name] {
			return true
		}
	}
	return s.denied[action] || (e != nil && s.denied[action+" "+e.name])
}

func (s *Server) accessDenied(action, resource string) *apiErr {
	return &apiErr{400, "AccessDeniedException", fmt.Sprintf("User: arn:aws:sts::%s:assumed-role/app/test is not authorized to perform: secretsmanager:%s on resource: %s because no identity-based policy allows the secretsmanager:%s action", Account, action, resource, action)}
}

func (s *Server) getSecretValue(action, id, versionID, stage string) (map[string]any, *apiErr) {
	if id == "" {
		return nil, &apiErr{400, "InvalidParameterException", "You must provide a value for the SecretId parameter."}
	}
	e := s.find(id)
	if s.deniedFor(action, e, id) {
		// AWS checks authorisation before it looks: an unknown secret
		// the caller may not read is "denied", not "not found".
		return nil, s.accessDenied(action, id)
	}
	if e == nil {
		return nil, notFound()
	}
	if s.kmsFail[e.name] {
		return nil, &apiErr{400, "DecryptionFailure", "Secrets Manager can't decrypt the protected secret text using the provided KMS key."}
	}
	if stage == "" && versionID == "" {
		stage = "AWSCURRENT"
	}
	var v *version
	for _, c := range e.versions {
		if (versionID == "" || c.id == versionID) && (stage == "" || contains(c.stages, stage)) {
			v = c
		}
	}
	if v == nil {
		if versionID != "" {
			return nil, &apiErr{400, "ResourceNotFoundException", fmt.Sprintf("Secrets Manager can't find the specified secret value for VersionId: %s", versionID)}
		}
		return nil, &apiErr{400, "ResourceNotFoundException", fmt.Sprintf("Secrets Manager can't find the specified secret value for staging label: %s", stage)}
	}
	out := map[string]any{
		"ARN": e.arn, "Name": e.name, "VersionId": v.id, "VersionStages": v.stages,
		"CreatedDate": float64(v.created.UnixMilli()) / 1000,
	}
	if v.str != nil {
		out["SecretString"] = *v.str
	} else {
		out["SecretBinary"] = v.bin // encoding/json writes []byte as base64, as AWS does
	}
	return out, nil
}

func (s *Server) batch(ids []string, filters bool) (map[string]any, *apiErr) {
	if s.denied["BatchGetSecretValue"] {
		return nil, &apiErr{400, "AccessDeniedException", fmt.Sprintf("User: arn:aws:sts::%s:assumed-role/app/test is not authorized to perform: secretsmanager:BatchGetSecretValue because no identity-based policy allows the secretsmanager:BatchGetSecretValue action", Account)}
	}
	switch {
	case filters && len(ids) > 0:
		return nil, &apiErr{400, "InvalidParameterException", "Either 'SecretIdList' or 'Filters' must be provided, but not both."}
	case filters:
		return nil, &apiErr{400, "InvalidRequestException", "awsfake does not implement Filters"}
	case len(ids) == 0:
		return nil, &apiErr{400, "InvalidParameterException", "Either 'SecretIdList' or 'Filters' must be provided."}
	case len(ids) > 20:
		return nil, &apiErr{400, "InvalidParameterException", "SecretIdList must contain at most 20 items."}
	}
	values := []map[string]any{}
	errs := []map[string]string{}
	for _, id := range ids {
		v, e := s.getSecretValue("GetSecretValue", id, "", "")
		if e != nil {
			errs = append(errs, map[string]string{"SecretId": id, "ErrorCode": e.typ, "Message": e.msg})
			continue
		}
		values = append(values, v)
	}
	return map[string]any{"SecretValues": values, "Errors": errs}, nil
}

func (s *Server) describe(id string) (map[string]any, *apiErr) {
	e := s.find(id)
	if s.deniedFor("DescribeSecret", e, id) {
		return nil, s.accessDenied("DescribeSecret", id)
	}
	if e == nil {
		return nil, notFound()
	}
	stages := map[string][]string{}
	for _, v := range e.versions {
		if len(v.stages) > 0 {
			stages[v.id] = v.stages
		}
	}
	out := map[string]any{"ARN": e.arn, "Name": e.name, "VersionIdsToStages": stages}
	if e.kmsKeyID != "" {
		out["KmsKeyId"] = e.kmsKeyID
	}
	return out, nil
}

// verify checks the request's SigV4 signature by signing a copy of it with
// the SDK's signer and the server's credentials, as AWS does.
func (s *Server) verify(r *http.Request, body []byte, wantService string) (caller, *apiErr) {
	who, e := s.verifySig(r, body, wantService)
	if e != nil {
		s.mu.Lock()
		s.sigFails++
		s.mu.Unlock()
	}
	return who, e
}

// caller is who signed a request, for which region.
type caller struct{ principal, account, region string }

func (s *Server) verifySig(r *http.Request, body []byte, wantService string) (caller, *apiErr) {
	var none caller
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return none, &apiErr{400, "MissingAuthenticationTokenException", "Missing Authentication Token"}
	}
	fields := map[string]string{}
	for _, f := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || fields["SignedHeaders"] == "" || fields["Signature"] == "" {
		return none, &apiErr{400, "IncompleteSignatureException", "Authorization header requires Credential, SignedHeaders and Signature."}
	}
	akid, day, region, service, term := scope[0], scope[1], scope[2], scope[3], scope[4]
	creds := s.Credentials()
	principal, account := "arn:aws:iam::"+Account+":user/test", Account
	if akid != s.AccessKeyID {
		s.mu.Lock()
		sess, ok := s.sessions[akid]
		s.mu.Unlock()
		if !ok {
			return none, &apiErr{400, "UnrecognizedClientException", "The security token included in the request is invalid."}
		}
		if r.Header.Get("X-Amz-Security-Token") != sess.token {
			return none, &apiErr{400, "UnrecognizedClientException", "The security token included in the request is invalid."}
		}
		creds = aws.Credentials{AccessKeyID: akid, SecretAccessKey: sess.secret, SessionToken: sess.token}
		principal, account = sess.principal, sess.account
	}
	if service != wantService || term != "aws4_request" {
		return none, &apiErr{400, "InvalidSignatureException", fmt.Sprintf("Credential should be scoped to correct service: '%s'. (got %q)", wantService, service)}
	}
	s.mu.Lock()
	serves := s.serves(region)
	s.mu.Unlock()
	if !serves {
		return none, &apiErr{400, "InvalidSignatureException", fmt.Sprintf("Credential should be scoped to a valid region, not '%s'. ", region)}
	}
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || when.Format("20060102") != day {
		return none, &apiErr{400, "IncompleteSignatureException", "X-Amz-Date is missing or does not match the credential scope."}
	}
	if d := time.Since(when); d > 5*time.Minute || d < -5*time.Minute {
		return none, &apiErr{400, "InvalidSignatureException", "Signature expired: the request time is more than 5 minutes from the server's."}
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	must := []string{"host", "x-amz-date"}
	if wantService == "secretsmanager" {
		must = append(must, "x-amz-target")
	}
	if creds.SessionToken != "" {
		must = append(must, "x-amz-security-token")
	}
	for _, h := range must {
		if !contains(signed, h) {
			return none, &apiErr{400, "InvalidSignatureException", h + " must be signed."}
		}
	}
	cp, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	cp.Host = r.Host
	cp.ContentLength = r.ContentLength
	for _, h := range signed {
		if h == "host" || h == "content-length" || h == "x-amz-security-token" {
			continue // the signer adds the token itself from creds
		}
		for _, v := range r.Header.Values(h) {
			cp.Header.Add(h, v)
		}
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(r.Context(), creds, cp, hex.EncodeToString(sum[:]), service, region, when); err != nil {
		return none, &apiErr{500, "InternalFailure", "signer: " + err.Error()}
	}
	if cp.Header.Get("Authorization") != auth {
		return none, &apiErr{403, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."}
	}
	return caller{principal, account, region}, nil
}

// serveSTS answers STS's AssumeRole (query protocol, XML answers) with
// temporary credentials the server then accepts, so role_arn is tested
// end to end.
func (s *Server) serveSTS(w http.ResponseWriter, r *http.Request, body []byte) {
	xmlErr := func(status int, code, msg string) {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>`, code, html.EscapeString(msg), newVersionID())
	}
	who, e := s.verify(r, body, "sts")
	principal := who.principal
	if e != nil {
		xmlErr(e.status, strings.TrimSuffix(e.typ, "Exception"), e.msg)
		return
	}
	form, err := url.ParseQuery(string(body))
	s.mu.Lock()
	s.calls[form.Get("Action")]++
	s.mu.Unlock()
	if err == nil && form.Get("Action") == "GetCallerIdentity" {
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>%s</Arn><UserId>AIDAFAKE</UserId><Account>%s</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></GetCallerIdentityResponse>`,
			html.EscapeString(principal), who.account, newVersionID())
		return
	}
	if err != nil || form.Get("Action") != "AssumeRole" {
		xmlErr(400, "InvalidAction", "awsfake implements only AssumeRole and GetCallerIdentity")
		return
	}
	role, name := form.Get("RoleArn"), form.Get("RoleSessionName")
	if !strings.HasPrefix(role, "arn:aws:iam::") || !strings.Contains(role, ":role/") || name == "" {
		xmlErr(400, "ValidationError", "RoleArn must be a role ARN and RoleSessionName is required")
		return
	}
	akid := "FAKEASIA" + randomUpper(12)
	// The session is the role's, in the role's account.
	roleAccount := strings.Split(role, ":")[4]
	sess := session{secret: randomUpper(40), token: randomFrom(alnum, 64), account: roleAccount,
		principal: fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", roleAccount, role[strings.LastIndex(role, "/")+1:], name)}
	s.mu.Lock()
	s.sessions[akid] = sess
	s.assumed = append(s.assumed, role)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><AssumedRoleUser><AssumedRoleId>AROAFAKE:%s</AssumedRoleId><Arn>%s</Arn></AssumedRoleUser><Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials></AssumeRoleResult><ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></AssumeRoleResponse>`,
		html.EscapeString(name), html.EscapeString(sess.principal), akid, sess.secret, sess.token, time.Now().Add(time.Hour).UTC().Format(time.RFC3339), newVersionID())
}

// AssumedRoles lists the role ARNs assumed through the server's STS.
func (s *Server) AssumedRoles() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.assumed...)
}

// Caller is the principal that made the last request for action: the
// static user, or the assumed-role session.
func (s *Server) Caller(action string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.callers[action]
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
