package awssm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/secretbroker/secretbroker/providers"
	"github.com/secretbroker/secretbroker/secret"
)

// ARN is a parsed Secrets Manager secret ARN:
// arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX.
type ARN struct {
	Partition, Region, Account, Name string // Name keeps AWS's suffix when the ARN has one
}

// ParseARN parses a secret ARN. A partial ARN (no random suffix) is fine.
func ParseARN(s string) (ARN, error) {
	parts := strings.SplitN(s, ":", 7)
	if len(parts) != 7 || parts[0] != "arn" || parts[1] == "" || parts[2] != "secretsmanager" || parts[3] == "" || parts[5] != "secret" || parts[6] == "" {
		return ARN{}, fmt.Errorf("%q is not a Secrets Manager secret ARN; want arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME, or give the secret's name", s)
	}
	// The region and the account are part of the secret's identity (see
	// Identities): they must read one way only.
	if !regionRE.MatchString(parts[3]) || !accountRE.MatchString(parts[4]) {
		return ARN{}, fmt.Errorf("%q is not a Secrets Manager secret ARN: want a region such as eu-west-1 and a 12-digit account id", s)
	}
	return ARN{Partition: parts[1], Region: parts[3], Account: parts[4], Name: parts[6]}, nil
}

// code is the AWS error code of err ("ResourceNotFoundException"), or "".
func code(err error) string {
	if ae, ok := asAPIError(err); ok {
		return ae.ErrorCode()
	}
	return ""
}

// awsMessage is AWS's own message for err, or err's text for other errors.
// Neither holds a secret value: AWS's errors name secrets, never contents.
func awsMessage(err error) string {
	if ae, ok := asAPIError(err); ok {
		if m := ae.ErrorMessage(); m != "" {
			return ae.ErrorCode() + ": " + m
		}
		return ae.ErrorCode()
	}
	return err.Error()
}

func isKMS(code, msg string) bool {
	return code == "DecryptionFailure" || strings.HasPrefix(code, "KMS") ||
		(code == "AccessDeniedException" && strings.Contains(msg, "KMS"))
}

// classifyFor turns a GetSecretValue error for k into a *providers.Error.
func classifyFor(err error, action string, k key) *providers.Error {
	if ae, ok := asAPIError(err); ok {
		return fromCode(ae.ErrorCode(), ae.ErrorMessage(), action, k)
	}
	return classify(err, action, k.target())
}

// classify handles the errors that are not AWS answers: no credentials,
// no network, the deadline.
func classify(err error, action, what string) *providers.Error {
	msg := err.Error()
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return &providers.Error{Kind: providers.KindTimeout, Detail: fmt.Sprintf("%s for %s did not finish before the deadline (--timeout), retries included", action, what)}
	case strings.Contains(msg, "retrieve credentials") || strings.Contains(msg, "get credentials") || strings.Contains(msg, "get identity"):
		return &providers.Error{Kind: providers.KindConfig, Detail: "no usable AWS credentials (the SDK's chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws files, web identity, ECS/EKS container credentials, IMDSv2); set providers.aws.profile or role_arn, or give the workload a role", Err: errors.New(msg)}
	}
	var ne net.Error
	if errors.As(err, &ne) || strings.Contains(msg, "connection refused") || strings.Contains(msg, "no such host") || strings.Contains(msg, "send request") {
		return &providers.Error{Kind: providers.KindUnreachable, Detail: fmt.Sprintf("Secrets Manager could not be reached for %s; check the network, the region and providers.aws.endpoint / AWS_ENDPOINT_URL_SECRETS_MANAGER", what), Err: err}
	}
	return &providers.Error{Kind: providers.KindOther, Detail: fmt.Sprintf("%s for %s", action, what), Err: err}
}

// fromCode maps an AWS error code (from a call or from a batch's Errors
// list) to a *providers.Error saying what to do.
func fromCode(c, msg, action string, k key) *providers.Error {
	said := c
	if msg != "" {
		said += ": " + msg
	}
	cause := errors.New("AWS said: " + said)
	e := &providers.Error{Err: cause}
	switch {
	case isKMS(c, msg):
		e.Kind = providers.KindDenied
		e.Detail = fmt.Sprintf("secret %s could not be decrypted with its KMS key", k.target())
	case c == "ResourceNotFoundException":
		e.Kind = providers.KindNotFound
		e.Detail = fmt.Sprintf("no secret %s; check the name or ARN and the region (?region=, providers.aws.region, AWS_REGION)", k.target())
		if k.version != "" || (k.stage != "" && k.stage != "AWSCURRENT") {
			e.Detail = fmt.Sprintf("no such version of secret %s, or no such secret; list its versions with `aws secretsmanager list-secret-version-ids --secret-id %s`", k.target(), k.id)
		}
	case c == "AccessDeniedException":
		e.Kind = providers.KindDenied
		act := "secretsmanager:" + strings.TrimSuffix(action, " (via BatchGetSecretValue)")
		e.Detail = fmt.Sprintf("the credential may not call %s on secret %s; grant it on the secret's ARN (`inject policy aws` prints the policy)", act, k.target())
	case c == "InvalidRequestException" && strings.Contains(strings.ToLower(msg), "deletion"):
		e.Kind = providers.KindNotFound
		e.Detail = fmt.Sprintf("secret %s is scheduled for deletion; restore it with `aws secretsmanager restore-secret` or point at another secret", k.target())
	case c == "InvalidParameterException" || c == "InvalidRequestException" || c == "ValidationException":
		e.Kind = providers.KindInvalid
		e.Detail = fmt.Sprintf("Secrets Manager refused the request for secret %s", k.target())
	case c == "UnrecognizedClientException" || c == "InvalidClientTokenId" || c == "InvalidSignatureException" ||
		c == "SignatureDoesNotMatch" || c == "ExpiredTokenException" || c == "IncompleteSignature" || c == "MissingAuthenticationToken":
		e.Kind = providers.KindConfig
		e.Detail = "AWS refused the credential itself (unknown, expired or wrongly signed); check AWS_PROFILE / providers.aws.profile, role_arn and the clock"
	case c == "ThrottlingException" || c == "TooManyRequestsException" || c == "RequestLimitExceeded":
		e.Kind = providers.KindUnreachable
		e.Detail = fmt.Sprintf("Secrets Manager kept throttling %s for secret %s after the SDK's retries; try again, or raise --timeout", action, k.target())
	case c == "InternalServiceError" || c == "InternalFailure" || c == "ServiceUnavailable":
		e.Kind = providers.KindUnreachable
		e.Detail = fmt.Sprintf("Secrets Manager failed (%s) for secret %s after the SDK's retries", c, k.target())
	default:
		e.Kind = providers.KindOther
		e.Detail = fmt.Sprintf("%s for secret %s", action, k.target())
	}
	return e
}

// extract applies ref's #KEY to one fetched version.
func extract(ref providers.Ref, k key, r *raw) (secret.Value, error) {
	if !ref.HasKey {
		if r.str != nil {
			return secret.FromString(*r.str), nil
		}
		return secret.New(bytes.Clone(r.bin)), nil
	}
	if r.str == nil {
		return secret.Value{}, providers.Errorf(ref, providers.KindInvalid, "secret %s is binary (SecretBinary) and has no keys; drop #%s to get its bytes", k.target(), ref.Key)
	}
	d := json.NewDecoder(strings.NewReader(*r.str))
	d.UseNumber()
	var data any
	if err := d.Decode(&data); err != nil || d.More() {
		// The parser's message can quote the text, which is the secret.
		return secret.Value{}, providers.Errorf(ref, providers.KindInvalid, "#%s needs a JSON SecretString, but secret %s is not JSON (the parser's message is withheld because it may quote the value); drop #%s to get the whole string", ref.Key, k.target(), ref.Key)
	}
	return providers.Extract(ref, data)
}
