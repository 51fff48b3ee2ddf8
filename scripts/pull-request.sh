#!/usr/bin/env bash
# Commit what changed under PATHs (default: gitops) to BRANCH and open (or update) its pull
# request into BASE. The image workflow pins dev (gitops/registry); the promotion workflow pins an
# environment's commit (argocd/environments/<env>). Neither path is an input of the images, so a
# merged pull request builds nothing new. They never push to BASE, so a protected main keeps its
# required reviews and checks. GH_TOKEN must allow contents and pull-requests write.
#   scripts/pull-request.sh BRANCH BASE TITLE BODY_FILE [PATH...]
set -euo pipefail
branch=$1 base=$2 title=$3 body=$4
shift 4
paths=("${@:-gitops}")

if [ -z "$(git status --porcelain -- "${paths[@]}")" ]; then
  echo "${paths[*]} already pins this: no pull request"
  exit 0
fi
git switch --quiet --force-create "$branch"
git add --all -- "${paths[@]}"
git -c user.name="github-actions[bot]" \
  -c user.email="41898282+github-actions[bot]@users.noreply.github.com" \
  commit --quiet --message "$title"

# The token reaches git for this one push only, never the checkout's config.
auth=$(printf 'x-access-token:%s' "$GH_TOKEN" | base64 -w0)
echo "::add-mask::${auth}"
# The branch belongs to this script: an older, unmerged pin is replaced, not stacked.
git -c "http.https://github.com/.extraheader=AUTHORIZATION: basic ${auth}" \
  push --quiet --force origin "HEAD:refs/heads/${branch}"

open=$(gh pr list --head "$branch" --base "$base" --state open --json number --jq '.[].number')
if [ -n "$open" ]; then
  gh pr edit "$open" --title "$title" --body-file "$body"
else
  gh pr create --head "$branch" --base "$base" --title "$title" --body-file "$body"
fi
