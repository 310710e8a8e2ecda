// Package aws runs the aws-sm provider against kumo
// (github.com/sivchari/kumo), an AWS emulator started in process. It is a
// module of its own so that kumo and its dependencies stay out of the main
// module; run its tests with `cd internal/testenv/aws && go test ./...`.
package aws
