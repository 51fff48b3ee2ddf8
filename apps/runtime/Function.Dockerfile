# syntax=docker/dockerfile:1
# A function's image: the runtime image plus the packages of apps/functions/<FUNCTION>/requirements.txt.
# Build from the repository root, after the runtime image:
#   docker build -f apps/runtime/Function.Dockerfile --build-arg FUNCTION=cpu-stats \
#     --build-arg RUNTIME_IMAGE=serverless-runtime -t serverless-function-cpu-stats .
# Its context is cut down by Function.Dockerfile.dockerignore (Docker finds it beside this file;
# podman and buildah need --ignorefile), not by the root .dockerignore.
# The packages go to /opt/function-packages, which a .pth file in the runtime venv's site-packages
# puts on sys.path AFTER site-packages: the runtime's own dependencies always win. A requirement
# that pins a package the runtime already ships at another version would be shadowed silently, so
# the build refuses it. Only binary wheels, hash-checked; the final image gets no pip.
ARG RUNTIME_IMAGE=serverless-runtime

FROM ${RUNTIME_IMAGE} AS build
ARG FUNCTION
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1
# Root in this stage only (it writes /opt/build and /staging); the final stage is non-root.
# hadolint ignore=DL3002
USER 0:0
# A venv with the base Python's own pip, outside the runtime venv and left in this stage.
RUN test -n "${FUNCTION}" || { echo "FUNCTION build argument is required (a folder of apps/functions)" >&2; exit 1; } \
    && python3 -m venv /opt/build
COPY apps/functions/${FUNCTION}/requirements.txt /tmp/requirements.txt
COPY scripts/function_packages.py /tmp/function_packages.py
# The same interpreter as /opt/venv's, so the wheels match its Python and ABI. Console scripts of
# the packages would point at /opt/build's Python, which the final image lacks: dropped.
RUN /opt/build/bin/pip install --require-hashes --only-binary :all: --no-deps \
        --target /opt/function-packages -r /tmp/requirements.txt \
    && rm -rf /opt/function-packages/bin \
    && /opt/venv/bin/python /tmp/function_packages.py check /opt/function-packages \
    && site=$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))') \
    && mkdir -p "/staging${site}" \
    && echo /opt/function-packages > "/staging${site}/serverless-function-packages.pth" \
    && mv /opt/function-packages /staging/opt/function-packages

FROM ${RUNTIME_IMAGE}
ARG FUNCTION
ARG RUNTIME_IMAGE
# /opt/function-packages and the .pth file, owned by root: read-only to the function's user.
COPY --from=build /staging/ /
LABEL org.opencontainers.image.title="serverless-function-${FUNCTION}" \
      org.opencontainers.image.description="The serverless runtime with the packages of function ${FUNCTION}" \
      org.opencontainers.image.base.name="${RUNTIME_IMAGE}"
# Numeric, so that Kubernetes' runAsNonRoot can verify it without a passwd lookup.
USER 10001:10001
