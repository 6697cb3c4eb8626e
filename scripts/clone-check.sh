#!/usr/bin/env bash
# The clone stands alone: clones the repository (its committed files, with any uncommitted change
# to them, never an untracked file) into a temporary folder with nothing beside it, and runs the
# README's commands there (scripts/readme-check.py). Whatever the project reads from outside
# itself — a folder beside the repository, a file that was never added — is not there, and the commands fail.
#
# cargo uses this work tree's build folder (CARGO_TARGET_DIR), and the clone's files keep the times
# of the files they equal here, so cargo finds the build up to date and compiles nothing again.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# no tracked file but prose may name the folder beside the repository
if refs=$(git grep -l -E '\.\./shared' -- ':!*.md'); then
  echo "clone-check: these tracked files read the folder beside the repository:" $refs >&2
  exit 1
fi

work=$(mktemp -d -t jxg-clone.XXXXXX)
trap 'rm -rf "$work"' EXIT
snapshot=$(git stash create 2>/dev/null || true)
git clone -q --no-local "$root" "$work/jxg"
if [ -n "$snapshot" ]; then
  git -C "$work/jxg" fetch -q "$root" "$snapshot"
  git -C "$work/jxg" checkout -q --detach FETCH_HEAD
fi
git -C "$work/jxg" ls-files -z | (cd "$work/jxg" && while IFS= read -r -d '' f; do
  if cmp -s "$f" "$root/$f"; then touch -r "$root/$f" "$f"; fi
done)
# and their folders: a build script that watches a folder (the PostgreSQL migrations) finds it
# as it was built
git -C "$work/jxg" ls-files -z | xargs -0 -r dirname | sort -u | (cd "$work/jxg" && while IFS= read -r d; do
  if [ -d "$root/$d" ]; then touch -r "$root/$d" "$d"; fi
done)
# cargo builds into this work tree's folder; the clone's own target/ holds what its commands write
# (the demo, logs) and reaches the binaries through target/debug
export CARGO_TARGET_DIR="$root/target"
mkdir "$work/jxg/target"
ln -s "$root/target/debug" "$work/jxg/target/debug"
echo "clone-check: $(git -C "$work/jxg" log --oneline -1) in $work/jxg, nothing beside it"
ls -A "$work" | grep -qvx jxg && { echo "clone-check: $work holds more than the clone" >&2; exit 1; }
cd "$work/jxg"
python3 scripts/readme-check.py
