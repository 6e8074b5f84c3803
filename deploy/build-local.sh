#!/bin/sh
# Builds the sleeper image from a static binary compiled on this machine, with
# deploy/Dockerfile.local: no base image, no registry, no BuildKit needed.
#
#   deploy/build-local.sh                 # -> sleeper:local
#   TAG=sleeper:dev VERSION=v1.2.3 deploy/build-local.sh
set -eu

cd "$(dirname "$0")/.."
TAG=${TAG:-sleeper:local}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}

# Static because scratch has no libc; GOOS=linux so that it also works from a
# Mac talking to a Linux engine (GOARCH is the host's; set it to cross-build).
CGO_ENABLED=0 GOOS=linux go build -trimpath \
	-ldflags "-s -w -X main.version=${VERSION}" -o deploy/sleeper ./cmd/sleeper

# The context is deploy/, and deploy/.dockerignore sends only the binary.
docker build -f deploy/Dockerfile.local -t "$TAG" deploy/
echo "built $TAG ($VERSION)"
