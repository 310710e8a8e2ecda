# secretbroker: static inject and broker binaries in a scratch image.
#   docker build -t secretbroker:local .
# Use it as a sidecar (ENTRYPOINT broker), as the Kubernetes webhook
# (`broker webhook`, which runs /broker-webhook), or copy inject into your own image:
#   COPY --from=secretbroker:local /inject /inject
#   ENTRYPOINT ["/inject", "--"]
#   CMD ["/your-app"]
ARG GO_VERSION=1.26
FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/secretbroker/secretbroker/internal/cli.Version=${VERSION}" -o /out/inject ./cmd/inject \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/secretbroker/secretbroker/internal/cli.Version=${VERSION}" -o /out/broker ./cmd/broker \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/secretbroker/secretbroker/internal/cli.Version=${VERSION}" -o /out/broker-webhook ./cmd/broker-webhook

FROM scratch
COPY --from=build /out/inject /out/broker /out/broker-webhook /
USER 65532:65532
ENTRYPOINT ["/broker"]
