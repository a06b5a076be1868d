#!/usr/bin/env bash
# Refuses contract-breaking changes to proto/: runs `buf breaking` (the rules
# are buf.yaml's `breaking.use`, FILE) on the working tree against the commit
# the current change started from.
#
#   tools/proto-breaking.sh [--against <git-ref>]
#
# The base is the first of these that applies:
#   --against <git-ref>, or PROTO_BASE=<git-ref>  that commit
#   GITHUB_BASE_REF is set (a pull request)      merge base with origin/$GITHUB_BASE_REF
#   on a branch other than main                  merge base with main (else origin/main)
#   on main, proto/ or buf.yaml not committed    HEAD (checking before committing)
#   on main                                      HEAD~1 (CI checking the last commit)
#
# It checks the git repository of the current directory, so the tests can run
# it on throwaway repositories. BUF names the buf to run; by default the one
# Meridian's `npm install` put next to this script.
#
# Exit status: 0 compatible, 1 breaking changes, 2 could not check.
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
}

fail() {
  printf 'proto-breaking: %s\n' "$@" >&2
  exit 2
}

against="${PROTO_BASE:-}"
against_from=PROTO_BASE=
while (($# > 0)); do
  case "$1" in
    --against)
      (($# >= 2)) || fail "--against needs a git ref."
      against="$2" against_from="--against "
      shift 2
      ;;
    --against=*) against="${1#--against=}" against_from="--against "; shift ;;
    -h | --help) usage; exit 0 ;;
    *) printf 'proto-breaking: unknown argument %s\n\n' "$1" >&2; usage >&2; exit 2 ;;
  esac
done

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -n "${BUF:-}" ]]; then
  # Word-split on purpose, so BUF="npx buf" works.
  read -r -a buf <<<"$BUF"
elif [[ -x "$script_dir/../node_modules/.bin/buf" ]]; then
  buf=("$script_dir/../node_modules/.bin/buf")
elif command -v buf >/dev/null; then
  buf=(buf)
else
  fail "buf is not installed: run npm install (it comes with @bufbuild/buf), or set BUF."
fi

root="$(git rev-parse --show-toplevel 2>/dev/null)" || fail "$(pwd) is not inside a git repository."
cd "$root"

# A shallow clone (actions/checkout's default is one commit) lacks the history
# the base lives in. Passing would hide breaking changes, so fail, and say how
# to get the history. $1: what is missing; $2: the message if not shallow.
missing_history() {
  if [[ "$(git rev-parse --is-shallow-repository)" == true ]]; then
    fail "$1 is not in this clone, which is shallow: the history that holds the base is missing." \
      "Fetch full history: in GitHub Actions give actions/checkout 'fetch-depth: 0'; locally run 'git fetch --unshallow'."
  fi
  fail "$2"
}

commit_of() {
  git rev-parse --verify --quiet "$1^{commit}" ||
    missing_history "$1" "$1 is not a commit in this repository.${2:+ $2}"
}

merge_base_with() {
  git merge-base HEAD "$1" ||
    missing_history "the merge base of HEAD and $1" \
      "HEAD and $1 have no commit in common: pass --against <git-ref>."
}

passed() {
  printf 'proto-breaking: %s\n' "$1"
  exit 0
}

git rev-parse --verify --quiet HEAD >/dev/null ||
  passed "no commits yet: nothing to compare proto/ against."

if [[ -n "$against" ]]; then
  base="$(commit_of "$against")"
  why="$against_from$against"
elif [[ -n "${GITHUB_BASE_REF:-}" ]]; then
  # A pull request: GitHub checks out the PR merged into its target, so the
  # merge base is the target's tip, what the PR will land on.
  commit_of "origin/$GITHUB_BASE_REF" "Fetch it: git fetch origin $GITHUB_BASE_REF." >/dev/null
  base="$(merge_base_with "origin/$GITHUB_BASE_REF")"
  why="merge base with origin/$GITHUB_BASE_REF"
else
  main=main
  git rev-parse --verify --quiet 'main^{commit}' >/dev/null || main=origin/main
  git rev-parse --verify --quiet "$main^{commit}" >/dev/null ||
    fail "found neither main nor origin/main to compare this branch with: pass --against <git-ref>."
  branch="$(git symbolic-ref --short --quiet HEAD || true)"
  # A detached HEAD within main's history (CI checking out a commit of main)
  # counts as main; any other detached HEAD as a branch.
  if [[ "$branch" != main ]] &&
    { [[ -n "$branch" ]] || ! git merge-base --is-ancestor HEAD "$main"; }; then
    # Only what the branch itself changed counts: a commit that main gained
    # after the branch began is not the branch's to break.
    base="$(merge_base_with "$main")"
    why="merge base with $main"
  elif [[ -n "$(git status --porcelain --untracked-files=all -- proto buf.yaml)" ]]; then
    # Contract changes not yet committed: a developer checking before committing.
    base="$(git rev-parse HEAD)"
    why="HEAD, as proto/ has uncommitted changes"
  elif git rev-parse --verify --quiet 'HEAD~1^{commit}' >/dev/null; then
    # A clean main: the last commit is the change to check.
    base="$(git rev-parse HEAD~1)"
    why="HEAD~1, the commit before the last"
  elif [[ "$(git rev-parse --is-shallow-repository)" == true ]]; then
    missing_history "HEAD~1" ""
  else
    passed "HEAD is the first commit: nothing to compare proto/ against."
  fi
fi

base_name="$(git log -1 --format='%h "%s"' "$base")"

# Before the contracts existed nothing could depend on them.
git cat-file -e "$base:proto" 2>/dev/null ||
  passed "no proto/ at $base_name ($why): nothing to break."

# buf clones the base out of this repository's .git, so it sees exactly the
# committed tree; the working tree side includes uncommitted and untracked
# files. JSON output names the rule, which the text output leaves out. stderr
# is kept apart so that a warning from buf is never read as a finding.
buf_stderr="$(mktemp)"
trap 'rm -f "$buf_stderr"' EXIT
status=0
findings="$("${buf[@]}" breaking --against ".git#ref=$base" --error-format=json 2>"$buf_stderr")" ||
  status=$?

if ((status == 0)); then
  passed "no breaking changes against $base_name ($why)."
fi

# Exit 100 means findings, one JSON object per line; anything else is buf
# failing to run, and its own message is the explanation.
cat "$buf_stderr" >&2
if ((status != 100)); then
  fail "buf breaking failed (exit $status) against $base_name."
fi

# Prints each finding as "file:line:column [RULE] message" (and, on GitHub
# Actions, as an ::error annotation on that line), then the policy; exits 1
# for breaking changes, 2 when the contracts do not compile (nothing checked).
read -r -d '' report <<'EOF' || true
const findings = require("node:fs")
  .readFileSync(0, "utf8")
  .split("\n")
  .filter((line) => line.trim() !== "")
  .map((line) => {
    try {
      return JSON.parse(line);
    } catch {
      return { type: "BUF", message: line };
    }
  });
const { BASE_NAME, WHY, GITHUB_ACTIONS } = process.env;
const compile = findings.some((f) => f.type === "COMPILE");
// A deleted file has no place to point at (buf gives no path).
const where = (f) => (f.path ? `${f.path}:${f.start_line}:${f.start_column} ` : "");

console.log(
  compile
    ? `proto-breaking: buf could not compile the contracts at ${BASE_NAME} or in the working tree (npx buf build checks the working tree):`
    : `proto-breaking: ${findings.length} breaking change(s) against ${BASE_NAME} (${WHY}):`,
);
for (const f of findings) console.log(`  ${where(f)}[${f.type}] ${f.message}`);

if (GITHUB_ACTIONS === "true") {
  // Escaping as in GitHub's "workflow commands" reference.
  const data = (s) => String(s).replace(/%/g, "%25").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
  const prop = (s) => data(s).replace(/:/g, "%3A").replace(/,/g, "%2C");
  for (const f of findings) {
    const at = f.path ? `file=${prop(f.path)},line=${f.start_line},col=${f.start_column},` : "";
    console.log(`::error ${at}title=${prop(f.type)}::${data(f.message)}`);
  }
}
if (compile) process.exit(2);

console.log(`
A caller built from the old contract would break: services deploy one at a
time, and clients outside this repository update when they choose. To make an
intended breaking change, add a new package version beside v1 instead, e.g.
meridian.user.v2 in proto/meridian/user/v2/, serve it next to v1 and move the
callers over. Never override or disable this check: no ignore or except in
buf.yaml, no --against or PROTO_BASE that skips the change. README.md,
"Contracts and breaking changes", has the steps.`);
process.exit(1);
EOF
printf '%s\n' "$findings" | BASE_NAME="$base_name" WHY="$why" node -e "$report"
