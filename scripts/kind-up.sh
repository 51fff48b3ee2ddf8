#!/usr/bin/env bash
# make kind-up: from nothing to serverless-dev Synced and Healthy on a local kind cluster, the way
# the e2e workflow does it (.github/workflows/e2e.yml runs this very script, so CI proves it):
#
#   1. the kind cluster of .github/kind/cluster.yaml (NodePort 31001 on localhost), unless it exists;
#   2. the runtime, dashboard and function images built from this working tree, loaded into kind;
#   3. Argo CD at the pinned version below;
#   4. this working tree served from a git daemon inside the cluster (tests/e2e/git-server.yaml),
#      as one commit whose repository URL and image names point at that server and those images
#      (tests/e2e/served_repo.py): nothing is pushed anywhere, and no registry is needed;
#   5. argocd/clusters/kind bootstrapped from it by scripts/bootstrap_argocd.py (its refusals
#      apply; SERVERLESS_SHARED_ARGOCD=1 lets it use an instance that runs other Applications);
#   6. a wait until serverless-dev is Synced and Healthy.
#
# Needs docker, kind, kubectl and git on PATH and `make setup` done. Run it again to redeploy
# the working tree (the cluster and Argo CD are reused). `kind delete cluster --name serverless`
# removes everything.
set -euo pipefail
cd "$(dirname "$0")/.."

# What CI runs and proves; change them here only (tests/workflows checks the README and the
# git server's image agree).
ARGOCD_VERSION=v3.5.4
KIND_NODE_IMAGE=kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5
KIND_CONFIG=.github/kind/cluster.yaml
GIT_SERVER=tests/e2e/git-server.yaml
GIT_URL=git://git-server.gitops-e2e.svc.cluster.local/serverless.git
# The tag of the images built here; imagePullPolicy IfNotPresent then runs the loaded ones.
TAG=${KIND_UP_TAG:-local}
PYTHON=${KIND_UP_PYTHON:-.venv/bin/python}
WAIT_SECONDS=${KIND_UP_WAIT_SECONDS:-900}

say() { echo "kind-up: $*" >&2; }
fail() {
  say "$*"
  exit 2
}

for tool in docker kind kubectl git; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed (needed: docker, kind, kubectl, git)"
done
[ -x "$PYTHON" ] || fail "$PYTHON not found: run \`make setup\` first"

cluster=$(sed -n 's/^name: *//p' "$KIND_CONFIG")
[ -n "$cluster" ] || fail "$KIND_CONFIG names no cluster"

# 1. The cluster.
if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  say "kind cluster $cluster exists: reusing it"
else
  say "creating kind cluster $cluster ($KIND_NODE_IMAGE)"
  kind create cluster --config "$KIND_CONFIG" --image "$KIND_NODE_IMAGE" --wait 120s
fi
kubectl config use-context "kind-$cluster" >/dev/null

# 2. The images: the runtime, the dashboard, and one per function folder with a requirements.txt,
# FROM the runtime just built (as images.yml builds them).
images=(serverless-runtime monitoring-dashboard)
say "building images (tag $TAG)"
docker build --file apps/runtime/Dockerfile --tag "serverless-runtime:$TAG" .
docker build --file apps/dashboard/Dockerfile --tag "monitoring-dashboard:$TAG" .
for requirements in apps/functions/*/requirements.txt; do
  [ -e "$requirements" ] || continue
  name=$(basename "$(dirname "$requirements")")
  docker build --file apps/runtime/Function.Dockerfile \
    --build-arg "RUNTIME_IMAGE=serverless-runtime:$TAG" --build-arg "FUNCTION=$name" \
    --tag "serverless-function-$name:$TAG" .
  images+=("serverless-function-$name")
done
kind load docker-image "${images[@]/%/:$TAG}" --name "$cluster"

# 3. Argo CD (server-side apply: its CRDs are too large for client-side apply's annotation).
say "installing Argo CD $ARGOCD_VERSION"
kubectl create namespace argocd --dry-run=client --output yaml | kubectl apply --filename -
kubectl apply --namespace argocd --server-side --force-conflicts \
  --filename "https://raw.githubusercontent.com/argoproj/argo-cd/$ARGOCD_VERSION/manifests/install.yaml"
kubectl wait --for=condition=Established --timeout=120s \
  crd/applications.argoproj.io crd/appprojects.argoproj.io
for workload in statefulset/argocd-application-controller deployment/argocd-repo-server \
  deployment/argocd-redis deployment/argocd-server; do
  kubectl --namespace argocd rollout status "$workload" --timeout=300s
done

# 4. This working tree, served from inside the cluster.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say "serving this working tree at $GIT_URL"
kubectl apply --filename "$GIT_SERVER"
kubectl --namespace gitops-e2e rollout status deployment/git-server --timeout=300s
image_args=()
for image in "${images[@]}"; do
  image_args+=(--image "$image=$image:$TAG")
done
commit=$("$PYTHON" -m tests.e2e.served_repo --dest "$work/served" --url "$GIT_URL" "${image_args[@]}")
git clone --quiet --bare "$work/served" "$work/serverless.git"
# Replaces what a previous run served: a new history, as a force-push would.
tar -C "$work/serverless.git" -cf - . |
  kubectl --namespace gitops-e2e exec -i deployment/git-server -- \
    sh -c 'rm -rf /srv/git/serverless.git && mkdir /srv/git/serverless.git && tar -C /srv/git/serverless.git -xf -'

# 5. The bootstrap, with its checks, from the served copy (its URL is the git server's).
"$PYTHON" scripts/bootstrap_argocd.py kind --repo "$work/served"

# 6. Until dev runs the served commit, Synced and Healthy. On a second run Argo CD still shows the
# previous one: ask it to look at Git now (what the GitHub webhook does) instead of polling.
for app in serverless-root serverless-dev; do
  kubectl --namespace argocd annotate application "$app" argocd.argoproj.io/refresh=normal \
    --overwrite >/dev/null 2>&1 || true
done
say "waiting for serverless-dev to be Synced and Healthy at $commit (up to ${WAIT_SECONDS}s)"
deadline=$((SECONDS + WAIT_SECONDS))
state=
while [ "$SECONDS" -lt "$deadline" ]; do
  state=$(kubectl --namespace argocd get application serverless-dev --output \
    jsonpath='{.status.sync.revision} {.status.sync.status} {.status.health.status}' \
    2>/dev/null || true)
  if [ "$state" = "$commit Synced Healthy" ]; then
    say "serverless-dev is Synced and Healthy: the dashboard is at http://localhost:31001"
    say "Argo CD's UI: kubectl -n argocd port-forward svc/argocd-server 8080:443 (user admin)"
    exit 0
  fi
  sleep 5
done
say "serverless-dev is not Synced and Healthy after ${WAIT_SECONDS}s (last: ${state:-not created})"
exit 1
