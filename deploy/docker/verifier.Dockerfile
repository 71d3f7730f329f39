# syntax=docker/dockerfile:1
# The jotguard verifier: a static binary on distroless/static, non-root.
# Build from the repository root (the go.work monorepo is the context):
#   docker build -f deploy/docker/verifier.Dockerfile -t jotguard/verifier .
# The module is built with GOWORK=off: its go.mod holds
# `replace …/sdk => ../sdk`, so only sdk/ and verifier/ are needed.

FROM golang:1.26 AS build
# What --version and jotguard_build_info report: docker build --build-arg VERSION=v1.2.3
ARG VERSION=dev
WORKDIR /src
ENV CGO_ENABLED=0 GOWORK=off GOFLAGS=-trimpath
COPY sdk/go.mod sdk/go.sum sdk/
COPY verifier/go.mod verifier/go.sum verifier/
RUN --mount=type=cache,target=/root/go/pkg/mod cd verifier && go mod download
COPY sdk/ sdk/
COPY verifier/ verifier/
COPY deploy/demo/go.mod deploy/demo/go.sum deploy/demo/
COPY deploy/demo/cmd/probe/ deploy/demo/cmd/probe/
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    cd verifier && go build -ldflags="-s -w -X main.version=$VERSION" -o /out/verifier ./cmd/verifier && \
    cd ../deploy/demo && go build -ldflags="-s -w" -o /out/probe ./cmd/probe

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/verifier /out/probe /
USER 65532:65532
# Listen on every interface inside the container (the default is loopback):
# the checks or the proxy on 8081, /healthz, /readyz and /metrics on 9081
# (in proxy mode every path of 8081 is the application's).
ENV JOTGUARD_VERIFIER_ADDR=0.0.0.0:8081
ENV JOTGUARD_ADMIN_ADDR=0.0.0.0:9081
EXPOSE 8081 9081
HEALTHCHECK --interval=10s --timeout=4s --retries=3 CMD ["/probe", "http://127.0.0.1:9081/readyz"]
ENTRYPOINT ["/verifier"]
