# syntax=docker/dockerfile:1
# The demo upstream of `make run` (deploy/demo), for compose and k8s.
#   docker build -f deploy/docker/demo.Dockerfile -t jotguard/demo .

FROM golang:1.26 AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOWORK=off GOFLAGS=-trimpath
COPY sdk/go.mod sdk/go.sum sdk/
COPY deploy/demo/go.mod deploy/demo/go.sum deploy/demo/
RUN --mount=type=cache,target=/root/go/pkg/mod cd deploy/demo && go mod download
COPY sdk/ sdk/
COPY deploy/demo/ deploy/demo/
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    cd deploy/demo && go build -ldflags="-s -w" -o /out/demo ./cmd/demo && go build -ldflags="-s -w" -o /out/probe ./cmd/probe

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/demo /out/probe /
USER 65532:65532
ENV JOTGUARD_DEMO_ADDR=0.0.0.0:8090
EXPOSE 8090
HEALTHCHECK --interval=10s --timeout=4s --retries=3 CMD ["/probe", "http://127.0.0.1:8090/readyz"]
ENTRYPOINT ["/demo"]
