#!/usr/bin/env bash
# Commit what changed under gitops/ to BRANCH and open (or update) its pull request into BASE.
# The image and promotion workflows call it: they never push to BASE, so a protected main keeps
# its required reviews and checks. GH_TOKEN must allow contents and pull-requests write.
#   scripts/pull-request.sh BRANCH BASE TITLE BODY_FILE
set -euo pipefail
branch=$1 base=$2 title=$3 body=$4

if [ -z "$(git status --porcelain -- gitops)" ]; then
  echo "gitops/ already pins this: no pull request"
  exit 0
fi
git switch --quiet --force-create "$branch"
git add --all -- gitops
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
