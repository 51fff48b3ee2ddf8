#!/usr/bin/env bash
# Builds the container images with podman from a Debian base made here, so no registry is needed:
# debootstrap a minimal bookworm with python3, import it, pass it as the PYTHON_IMAGE build
# argument, and build apps/runtime/Dockerfile and apps/dashboard/Dockerfile from the repository root;
# then, FROM that runtime image, one localhost/serverless-function-<name> image with
# apps/runtime/Function.Dockerfile for every apps/functions/<name>/ that holds a requirements.txt.
# Needs root, debootstrap, podman (vfs storage) and a Debian mirror. The base is made once: its
# tarball is kept in build/images/ and the imported image in podman's storage.
set -euo pipefail
cd "$(dirname "$0")/.."

base_image=${PYTHON_BASE_IMAGE:-localhost/python-base:bookworm}
tag=${IMAGE_TAG:-dev}
# The Debian mirror apt uses here, unless DEBIAN_MIRROR says otherwise; else debootstrap's default.
mirror=${DEBIAN_MIRROR:-}
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
  mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources | head -n 1)
fi
cache=build/images
base_tar=$cache/python-base-bookworm.tar
podman=(podman --storage-driver vfs)
mkdir -p "$cache"

if ! "${podman[@]}" image exists "$base_image"; then
  if [ ! -f "$base_tar" ]; then
    rootfs=$(mktemp -d)
    trap 'rm -rf "$rootfs"' EXIT
    echo "images: debootstrapping bookworm with python3 (a few minutes)" >&2
    debootstrap --variant=minbase --include=python3,python3-venv bookworm "$rootfs" ${mirror:+"$mirror"} >/dev/null
    # Package caches are no part of a base image.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    # mktemp made it 0700; as the image's / it must let the non-root user in.
    chmod 0755 "$rootfs"
    tar -C "$rootfs" -cf "$base_tar.partial" .
    mv "$base_tar.partial" "$base_tar"
  fi
  echo "images: importing $base_tar as $base_image" >&2
  "${podman[@]}" import --quiet --change 'CMD ["python3"]' "$base_tar" "$base_image" >/dev/null
fi

# Where the host's pip trusts an extra CA (a TLS-inspecting proxy), so must the build's pip.
# Mounted for the RUN steps only: neither file ends up in an image layer.
trust=()
if [ -n "${PIP_CERT:-}" ] && [ -f "$PIP_CERT" ]; then
  printf '[global]\ncert = /etc/pip-ca.crt\n' > "$cache/pip.conf"
  trust=(--volume "$(realpath "$PIP_CERT"):/etc/pip-ca.crt:ro"
         --volume "$PWD/$cache/pip.conf:/etc/pip.conf:ro")
fi

for app in runtime:serverless-runtime dashboard:monitoring-dashboard; do
  dir=${app%%:*}
  name=${app##*:}
  echo "images: building localhost/$name:$tag" >&2
  # Host networking for the build: pip reaches the package index; nothing listens.
  "${podman[@]}" build --quiet --pull=never --network host "${trust[@]}" \
    --build-arg "PYTHON_IMAGE=$base_image" \
    -f "apps/$dir/Dockerfile" -t "localhost/$name:$tag" . >/dev/null
done

# Functions with their own packages: the runtime image just built plus their requirements.
for requirements in apps/functions/*/requirements.txt; do
  [ -f "$requirements" ] || continue
  function=$(basename "$(dirname "$requirements")")
  echo "images: building localhost/serverless-function-$function:$tag" >&2
  "${podman[@]}" build --quiet --pull=never --network host "${trust[@]}" \
    --build-arg "RUNTIME_IMAGE=localhost/serverless-runtime:$tag" \
    --build-arg "FUNCTION=$function" \
    --ignorefile apps/runtime/Function.Dockerfile.dockerignore \
    -f apps/runtime/Function.Dockerfile -t "localhost/serverless-function-$function:$tag" . >/dev/null
done
