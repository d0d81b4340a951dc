#!/usr/bin/env bash
# Makes the images the Dockerfile and docker-compose.yml start from when the
# engine has none of them and cannot pull them (a machine without Docker Hub,
# like CI). An image that exists is never replaced, and one that can be pulled
# is pulled: stand-ins are the last resort.
#
#   scripts/docker-standins.sh base        # debian:bookworm-slim, golang:1.26, docker/dockerfile:1
#   scripts/docker-standins.sh postgres    # prints the PostgreSQL image to use (postgres:16 or a stand-in)
#
# The stand-ins:
#   debian:bookworm-slim  debootstrap --variant=minbase bookworm from DEBIAN_MIRROR, with bookworm-slim's
#                         dpkg path excludes (no docs, man pages, locales) and the host's CA bundle.
#   golang:1.26           that rootfs plus the host's Go toolchain (GOROOT of `go env`), as the
#                         official image lays it out (/usr/local/go, GOPATH=/go).
#   docker/dockerfile:1   BuildKit's Dockerfile frontend (the `# syntax=` line), built from the Go module
#                         proxy at BUILDKIT_VERSION.
#   podflow-standin/postgres:15
#                         Debian's postgresql package behind an entrypoint honouring POSTGRES_USER,
#                         POSTGRES_PASSWORD and POSTGRES_DB as the official image does.
# Builds that download over HTTPS (go mod download) trust what the host trusts, as behind any
# TLS-inspecting proxy: the host's CA bundle is copied into the rootfs.
set -euo pipefail

DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
BUILDKIT_VERSION=${BUILDKIT_VERSION:-v0.21.0}
HOST_CA=${HOST_CA:-/etc/ssl/certs/ca-certificates.crt}
POSTGRES_STANDIN=podflow-standin/postgres:15
if [ -n "${STANDIN_WORK:-}" ]; then WORK=$STANDIN_WORK; else
  WORK=$(mktemp -d /tmp/podflow-standins.XXXXXX); trap 'rm -rf "$WORK"' EXIT
fi
GO=${GO:-go}

say() { echo "standins: $*" >&2; }
have() { docker image inspect "$1" >/dev/null 2>&1; }

# try_pull IMAGE: true when the engine could pull it (a real registry).
try_pull() {
  [ "${PODFLOW_STANDINS_NO_PULL:-0}" = 1 ] && return 1
  timeout 120 docker pull -q "$1" >/dev/null 2>&1
}

rootfs() {
  local dir=$WORK/rootfs
  if [ -f "$dir/.done" ]; then echo "$dir"; return; fi
  command -v debootstrap >/dev/null || { say "debootstrap is missing (apt-get install debootstrap)"; return 1; }
  say "debootstrap --variant=minbase bookworm from $DEBIAN_MIRROR"
  rm -rf "$dir"; mkdir -p "$dir/etc/dpkg/dpkg.cfg.d"
  # bookworm-slim's excludes, set before the packages unpack.
  cat > "$dir/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
  cat > "$WORK/apt-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
EOF
  debootstrap --variant=minbase bookworm "$dir" "$DEBIAN_MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log" >&2; return 1; }
  cp "$WORK/apt-clean" "$dir/etc/apt/apt.conf.d/docker-clean"
  rm -rf "$dir"/usr/share/doc/*/[!c]* "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/usr/share/locale/* \
    "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb "$dir"/var/log/*.log
  mkdir -p "$dir/etc/ssl/certs"
  cp "$HOST_CA" "$dir/etc/ssl/certs/ca-certificates.crt"
  touch "$dir/.done"
  echo "$dir"
}

debian() {
  local img=debian:bookworm-slim
  if have $img || try_pull $img; then say "$img: present"; return; fi
  local dir; dir=$(rootfs)
  tar -C "$dir" --exclude=./.done -c . | docker import --change 'CMD ["bash"]' - $img >/dev/null
  say "$img: stand-in imported"
}

golang() {
  local img=golang:1.26
  if have $img || try_pull $img; then say "$img: present"; return; fi
  local dir goroot; dir=$(rootfs); goroot=$($GO env GOROOT)
  case "$($GO env GOVERSION)" in go1.26*) ;; *) say "the host's Go is $($GO env GOVERSION), not 1.26"; return 1 ;; esac
  mkdir -p "$WORK/go/usr/local" "$WORK/go/go/bin"
  # One tar stream: the rootfs, then the toolchain under /usr/local/go.
  { tar -C "$dir" --exclude=./.done -c . ; } >"$WORK/golang.tar"
  tar -C "$goroot/.." --transform "s,^$(basename "$goroot"),usr/local/go," -rf "$WORK/golang.tar" "$(basename "$goroot")"
  docker import \
    --change 'ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV GOLANG_VERSION='"$($GO env GOVERSION | sed 's/^go//')" \
    --change 'ENV GOPATH=/go' --change 'ENV GOTOOLCHAIN=local' --change 'WORKDIR /go' --change 'CMD ["bash"]' \
    "$WORK/golang.tar" $img >/dev/null
  rm -f "$WORK/golang.tar"
  say "$img: stand-in imported (the host's $($GO env GOVERSION))"
}

frontend() {
  local img=docker/dockerfile:1
  if have $img || try_pull $img; then say "$img: present"; return; fi
  say "building BuildKit's Dockerfile frontend $BUILDKIT_VERSION from the Go module proxy"
  local src
  src=$(cd "$WORK" && GOFLAGS=-mod=mod $GO mod download -json "github.com/moby/buildkit@$BUILDKIT_VERSION" \
    | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
  rm -rf "$WORK/buildkit" "$WORK/frontend"; mkdir -p "$WORK/frontend/bin"
  cp -r "$src" "$WORK/buildkit"; chmod -R u+w "$WORK/buildkit"
  # go install refuses a module with exclude lines: build inside its source
  # (-mod=mod: the module zip leaves its vendor/ folder out).
  (cd "$WORK/buildkit" && CGO_ENABLED=0 $GO build -mod=mod -trimpath -tags "netgo static_build osusergo" \
    -ldflags "-s -w -X main.Version=$BUILDKIT_VERSION" \
    -o "$WORK/frontend/bin/dockerfile-frontend" ./frontend/dockerfile/cmd/dockerfile-frontend)
  tar -C "$WORK/frontend" -c bin | docker import \
    --change 'LABEL moby.buildkit.frontend.network.none="true"' \
    --change 'LABEL moby.buildkit.frontend.caps="moby.buildkit.frontend.inputs,moby.buildkit.frontend.subrequests,moby.buildkit.frontend.contexts"' \
    --change 'ENTRYPOINT ["/bin/dockerfile-frontend"]' - $img >/dev/null
  rm -rf "$WORK/buildkit"
  say "$img: stand-in imported"
}

postgres() {
  if have postgres:16 || try_pull postgres:16; then echo postgres:16; return; fi
  if have $POSTGRES_STANDIN; then echo $POSTGRES_STANDIN; return; fi
  debian
  mkdir -p "$WORK/postgres"
  cat > "$WORK/postgres/Dockerfile" <<'EOF'
FROM debian:bookworm-slim
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
COPY entrypoint.sh /usr/local/bin/entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
USER postgres
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
EOF
  cat > "$WORK/postgres/entrypoint.sh" <<'EOF'
#!/bin/bash
# The official image's contract, in short: on an empty $PGDATA, a cluster whose
# superuser is $POSTGRES_USER (default postgres) with $POSTGRES_PASSWORD, and
# the database $POSTGRES_DB (default: the user's name); then postgres in front.
set -euo pipefail
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  [ -n "${POSTGRES_PASSWORD:-}" ] || { echo "POSTGRES_PASSWORD is not set" >&2; exit 1; }
  pw=$(mktemp); printf '%s' "$POSTGRES_PASSWORD" >"$pw"
  initdb -D "$PGDATA" -U "$user" --pwfile="$pw" --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pw"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  [ "$db" = postgres ] || createdb -U "$user" "$db"
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "initialized $PGDATA: user $user, database $db"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
EOF
  chmod 755 "$WORK/postgres/entrypoint.sh"
  DOCKER_BUILDKIT=0 docker build -q -t $POSTGRES_STANDIN "$WORK/postgres" >/dev/null 2>"$WORK/postgres.log" \
    || { cat "$WORK/postgres.log" >&2; return 1; }
  say "$POSTGRES_STANDIN: stand-in built from Debian's postgresql-15"
  echo $POSTGRES_STANDIN
}

case "${1:-}" in
  base) debian; golang; frontend ;;
  postgres) postgres ;;
  *) echo "usage: $0 base|postgres" >&2; exit 2 ;;
esac
