# syntax=docker/dockerfile:1
#
# podflow: the scheduler and triggerer daemons and the podflow CLI in one image.
#
#   docker build -t podflow:local .
#   docker run --rm podflow:local podflow --help
#
# The entrypoint is tini; the command is the program to run: scheduler (the
# default), triggerer, or podflow (e.g. `podflow db migrate`). bash stays in
# the image because bash tasks run in the scheduler's container.

FROM golang:1.26 AS build
# go.mod names a patch release; an older cached golang:1.26 fetches it.
ENV GOTOOLCHAIN=auto
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
# docker build --build-arg VERSION=$(git describe --tags) --build-arg COMMIT=$(git rev-parse HEAD) .
ARG VERSION=dev
ARG COMMIT=unknown
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath \
        -ldflags="-s -w -X github.com/podflow/podflow/internal/version.version=${VERSION} -X github.com/podflow/podflow/internal/version.commit=${COMMIT}" \
        -o /out/ \
        ./cmd/podflow ./cmd/scheduler ./cmd/triggerer

FROM debian:bookworm-slim
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        bash ca-certificates curl tini tzdata \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10001 podflow \
    && useradd --uid 10001 --gid 10001 --home-dir /home/podflow --create-home --shell /bin/bash podflow \
    && mkdir -p /dags /etc/podflow/kube \
    && chown podflow:podflow /dags /etc/podflow/kube
COPY --from=build /out/podflow /out/scheduler /out/triggerer /usr/local/bin/
ENV PODFLOW_DAGS_FOLDER=/dags \
    PODFLOW_HEALTH_ADDR=0.0.0.0:8080
USER 10001:10001
WORKDIR /home/podflow
EXPOSE 8080
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["scheduler"]
