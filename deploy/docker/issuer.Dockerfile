# syntax=docker/dockerfile:1
# The jotguard issuer: a static binary on distroless/static, non-root.
# Build from the repository root (the go.work monorepo is the context):
#   docker build -f deploy/docker/issuer.Dockerfile -t jotguard/issuer .
# The module is built with GOWORK=off: its go.mod holds
# `replace …/sdk => ../sdk`, so only sdk/ and issuer/ are needed.

FROM golang:1.26 AS build
# What --version and jotguard_build_info report: docker build --build-arg VERSION=v1.2.3
ARG VERSION=dev
WORKDIR /src
ENV CGO_ENABLED=0 GOWORK=off GOFLAGS=-trimpath
COPY sdk/go.mod sdk/go.sum sdk/
COPY issuer/go.mod issuer/go.sum issuer/
RUN --mount=type=cache,target=/root/go/pkg/mod cd issuer && go mod download
COPY sdk/ sdk/
COPY issuer/ issuer/
COPY deploy/demo/go.mod deploy/demo/go.sum deploy/demo/
COPY deploy/demo/cmd/probe/ deploy/demo/cmd/probe/
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    cd issuer && go build -ldflags="-s -w -X main.version=$VERSION" -o /out/issuer ./cmd/issuer && \
    cd ../deploy/demo && go build -ldflags="-s -w" -o /out/probe ./cmd/probe

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/issuer /out/probe /
USER 65532:65532
# Listen on every interface inside the container (the default is loopback).
ENV JOTGUARD_ISSUER_ADDR=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=4s --retries=3 CMD ["/probe", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["/issuer"]
