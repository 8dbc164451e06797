# The post-deploy check as it runs ON the shared host, sent by `python -m checks --via-ssm`
# through SSM Run Command (AWS-RunShellScript). It uses only bash, coreutils and the aws CLI
# that Amazon Linux 2023 ships, and the per-service profiles the stack's SSM association wrote
# to /etc/aws/config. The sender prepends the variables:
#   MODE          prepare (assume, list, put, get), probe (the negative expectations) or
#                 cleanup (delete); one command per batch of services and phase
#   ACCOUNT RUN WAIT_SECONDS PROFILES_SHA256
#   SCRIPT_SECONDS     the script's own deadline, from its start: waiting for the profiles,
#                      then the body; the sender's executionTimeout leaves a minute beyond it
#   MAX_JOBS           aws CLI processes at once (each is a Python process of ~60 MB)
#   SERVICES BUCKETS   every service of the stack and its bucket
#   BATCH              prepare/cleanup: indices into SERVICES; probe: identities, `h` the host
#   PROBES             probe: identity -> the indices of the buckets it probes
# Each service's test object is ec2-assume-role-check/$RUN/<service>: the probe phase aims at
# the objects the prepare phase wrote, and the cleanup phase deletes them.
#
# Output, one line each (tab-separated), parsed by checks/via_ssm.py:
#   SOURCE <caller ARN>
#   CHECK  <service> <step> <1|0> <ms> <detail>
#   PROOF  <identity> <pairs probed> <ms> [<service>:<action>:<allowed|unproven>:<code>]...
#   END    <service or identity>    (everything for it was reported)
#   ERROR  <message>                (the check could not run at all)
#   DEADLINE <seconds>              (the body was stopped at its own deadline)
# No credential is ever printed. The CLI caches assumed-role credentials under $HOME; HOME is
# a private directory in memory (/dev/shm where there is one), removed before the script ends.
#
# The SSM agent SIGKILLs the whole command at executionTimeout, and no trap runs then. So
# everything before the cleanup runs under the script's own deadline, SCRIPT_SECONDS from its
# start, a minute inside executionTimeout, and this outer part then removes what the body left
# (test objects of an unfinished prepare, the CLI's credential cache) in at most 25 s.
set -u
started=$(date +%s)
export AWS_CONFIG_FILE="${AWS_CONFIG_FILE:-/etc/aws/config}"
export AWS_PAGER=""
unset AWS_PROFILE
# PREFIX (checks.contract.RESERVED_PREFIX) comes in the header, with the other variables.
NO_ETAG='"00000000000000000000000000000000"'
MAX_FINDINGS=20
# The CLI caches assumed-role keys under $HOME: it must be memory, never a disk.
base=""
for dir in /dev/shm "/run/user/$(id -u)" /run; do
  if [ -d "$dir" ] && [ -w "$dir" ] && [ "$(stat -f -c %T "$dir" 2>/dev/null)" = tmpfs ]; then
    base=$dir; break
  fi
done
[ -n "$base" ] || { printf 'ERROR\tno writable tmpfs (/dev/shm, /run) for the CLI credential cache\n'; exit 2; }
workdir=$(mktemp -d "$base/ec2-assume-role-check.XXXXXX") || {
  printf 'ERROR\tmktemp failed\n'; exit 2; }
chmod 0700 "$workdir"
export HOME="$workdir"
mkdir "$workdir/out" "$workdir/pending"
# The version ids of this run's puts, from its prepare command to its cleanup command (on
# tmpfs too; ids, not data): in a versioned bucket the cleanup deletes exactly those versions.
versions="$base/ec2-assume-role-check-versions-$RUN"
mkdir -p -m 0700 "$versions"

cleanup() {  # what the body wrote and did not delete (it was stopped), then the work dir
  local pending profile bucket key
  for pending in "$workdir"/pending/*; do
    [ -s "$pending" ] || continue
    IFS=$'\t' read -r profile bucket key < "$pending"
    timeout 20 aws s3api delete-object --profile "$profile" --bucket "$bucket" --key "$key" \
      --expected-bucket-owner "$ACCOUNT" --cli-connect-timeout 5 --cli-read-timeout 5 \
      >/dev/null 2>&1 &
  done
  wait
  rm -rf "$workdir"
  rmdir "$versions" 2>/dev/null  # kept only while it holds ids for the cleanup command
}
trap cleanup EXIT
trap 'exit 143' TERM INT

now_ms() { date +%s%3N; }
clean() { printf '%s' "$1" | tr '\t\r\n' '   ' | cut -c1-"${2:-300}"; }
emit() {  # service step ok start_ms detail
  printf 'CHECK\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$(( $(now_ms) - $4 ))" "$(clean "$5")"
}
code_of() { grep -oE 'An error occurred \([A-Za-z0-9.]+\)' <<<"$1" | head -n1 | tr -d '()' |
  sed 's/An error occurred //' | cut -c1-40; }
throttle() { while [ "$(jobs -rp | wc -l)" -ge "$MAX_JOBS" ]; do wait -n; done; }
is_denied() { grep -qE '\((AccessDenied|AccessDeniedException|UnauthorizedOperation)\)' <<<"$1"; }
key_of() { printf '%s%s/%s' "$PREFIX" "$RUN" "${SERVICES[$1]}"; }
version_of() { sed -n 's/.*"VersionId": *"\([^"]*\)".*/\1/p' <<<"$1" | head -n1; }

# Runs "$@" until it succeeds, fails with something other than AccessDenied, or WAIT_SECONDS
# are over (new IAM roles and policies take seconds to propagate); prints its output.
retry_denied() {
  local deadline=$(( $(now_ms) + WAIT_SECONDS * 1000 )) delay=1 out
  while ! out=$("$@" 2>&1); do
    if ! is_denied "$out" || [ "$(now_ms)" -ge "$deadline" ]; then
      printf '%s' "$out"
      return 1
    fi
    sleep "$delay"; delay=$(( delay < 8 ? delay * 2 : 8 ))
  done
  printf '%s' "$out"
}

s3() { aws s3api "$@" --expected-bucket-owner "$ACCOUNT" --cli-connect-timeout 10 \
  --cli-read-timeout 30; }

prepare_service() {  # index: assume, list, put the test object, read it back
  local i=$1 name=${SERVICES[$1]} bucket=${BUCKETS[$1]} start out key vid
  key=$(key_of "$i")
  start=$(now_ms)
  if ! out=$(retry_denied aws sts get-caller-identity --profile "$name" --query Arn --output text); then
    emit "$name" "assume role" 0 "$start" "$out"
    return
  fi
  emit "$name" "assume role" 1 "$start" "profile $name assumed $out"
  start=$(now_ms)
  if out=$(retry_denied s3 list-objects-v2 --bucket "$bucket" --max-items 1 --prefix "$PREFIX" \
      --profile "$name"); then
    emit "$name" "list" 1 "$start" "listed $bucket"
  else
    emit "$name" "list" 0 "$start" "$out"
  fi
  local body="$workdir/$i.body"
  { head -c 32 /dev/urandom; printf ' ec2-assume-role check of %s\n' "$name"; } > "$body"
  # Recorded before the put is sent: whatever stops the body, the outer part deletes it.
  printf '%s\t%s\t%s\n' "$name" "$bucket" "$key" > "$workdir/pending/$i"
  start=$(now_ms)
  if out=$(s3 put-object --profile "$name" --bucket "$bucket" --key "$key" --body "$body" \
      --if-none-match '*' 2>&1); then
    vid=$(version_of "$out")
    if [ -n "$vid" ] && [ "$vid" != null ]; then printf '%s\n' "$vid" > "$versions/$i"; fi
    emit "$name" "put" 1 "$start" "wrote $(wc -c < "$body") bytes to $key"
  else
    emit "$name" "put" 0 "$start" "$out"
    is_denied "$out" && rm -f "$workdir/pending/$i"
    return
  fi
  start=$(now_ms)
  if out=$(s3 get-object --profile "$name" --bucket "$bucket" --key "$key" \
      "$workdir/$i.read" 2>&1); then
    if cmp -s "$body" "$workdir/$i.read"; then
      emit "$name" "get" 1 "$start" "read back $(wc -c < "$workdir/$i.read") identical bytes"
    else
      emit "$name" "get" 0 "$start" "MISMATCH read back bytes that differ from those written"
    fi
  else
    emit "$name" "get" 0 "$start" "$out"
  fi
  # Done: the object stays for the probes; the cleanup phase deletes it.
  rm -f "$workdir/pending/$i"
}

probe() {  # profile-or-empty bucket key action -> allowed | denied | unproven:<code>
  local args=(--bucket "$2") out
  [ -n "$1" ] && args+=(--profile "$1")
  case $4 in
    list) out=$(s3 list-objects-v2 "${args[@]}" --prefix "$PREFIX" --max-items 1 2>&1) ;;
    get) out=$(s3 get-object "${args[@]}" --key "$3" /dev/null 2>&1) ;;
    put) out=$(s3 put-object "${args[@]}" --key "$3" --if-none-match '*' 2>&1) ;;
    delete) out=$(s3 delete-object "${args[@]}" --key "$3" --if-match "$NO_ETAG" 2>&1) ;;
  esac && { echo allowed; return; }
  if is_denied "$out"; then echo denied
  elif grep -qE '\((PreconditionFailed|NoSuchKey|412|404)\)' <<<"$out"; then echo allowed
  else echo "unproven:$(code_of "$out" | tr -d ' ' || true)"; fi
}

probe_bucket() {  # profile j actions...: one line per action, "<action> <verdict>"
  local profile=$1 j=$2 action; shift 2
  for action in "$@"; do
    printf '%s %s\n' "$action" "$(probe "$profile" "${BUCKETS[$j]}" "$(key_of "$j")" "$action")"
  done
}

probe_identity() {  # h (the host) or a service index; every target bucket at once
  local who=$1 profile="" start found="" pairs=0 count=0 j action verdict dir
  [ "$who" = h ] || profile=${SERVICES[$who]}
  dir="$workdir/probe.$who"
  mkdir -p "$dir"
  start=$(now_ms)
  # One assume first, so the parallel probes share the CLI's cached session.
  [ -n "$profile" ] && aws sts get-caller-identity --profile "$profile" >/dev/null 2>&1
  # Two rounds: every get must find the owner's object before any delete probe runs.
  for round in "list get put" "delete"; do
    for j in ${PROBES[$who]}; do
      [ "$j" = "$who" ] && continue
      throttle
      # shellcheck disable=SC2086 # the round is a list of words
      probe_bucket "$profile" "$j" $round >> "$dir/$j" &
    done
    wait
  done
  for j in ${PROBES[$who]}; do
    [ "$j" = "$who" ] && continue
    pairs=$(( pairs + 1 ))
    # A probe job that died (a failed fork, the OOM killer) wrote no line: the sender reads a
    # missing finding as a denial, so every action without a verdict is reported unproven.
    for action in list get put delete; do
      verdict=$(sed -n "s/^$action \([a-z]*\(:[A-Za-z0-9.]*\)\{0,1\}\)\$/\1/p" \
        "$dir/$j" 2>/dev/null | head -n1)
      [ "$verdict" = denied ] && continue
      count=$(( count + 1 ))
      # At most MAX_FINDINGS per line, so one leaking identity cannot crowd SSM's output.
      [ "$count" -le "$MAX_FINDINGS" ] &&
        found="$found	${SERVICES[$j]}:$action:${verdict:-unproven:missing}"
    done
  done
  [ "$count" -gt "$MAX_FINDINGS" ] && found="$found	more:$(( count - MAX_FINDINGS ))"
  printf 'PROOF\t%s\t%s\t%s%s\n' "${profile:-host}" "$pairs" "$(( $(now_ms) - start ))" "$found"
}

cleanup_service() {
  local i=$1 name=${SERVICES[$1]} start out
  start=$(now_ms)
  if out=$(s3 delete-object --profile "$name" --bucket "${BUCKETS[$i]}" --key "$(key_of "$i")" \
      2>&1); then
    emit "$name" "delete" 1 "$start" "deleted $(key_of "$i")$(remove_versions "$i" "$out")"
  else
    emit "$name" "delete" 0 "$start" "$out"
  fi
}

# After the delete step, in a versioned bucket: the put's version and the new delete marker,
# by id, and nothing else; refused (a stack without the grant), they stay for the lifecycle
# rule. Prints what to add to the step's detail.
remove_versions() {
  local i=$1 name=${SERVICES[$1]} marker vid removed=0 refused=""
  marker=$(version_of "$2")
  for vid in $(cat "$versions/$i" 2>/dev/null) $marker; do
    [ "$vid" = null ] && continue
    if out=$(s3 delete-object --profile "$name" --bucket "${BUCKETS[$i]}" \
        --key "$(key_of "$i")" --version-id "$vid" 2>&1); then
      removed=$(( removed + 1 ))
    else
      refused=$(code_of "$out")
    fi
  done
  rm -f "$versions/$i"
  if [ -n "$refused" ]; then
    printf "; its versions remain for the bucket's lifecycle rule, which removes them in a day"
    printf ' or two: the role lacks s3:DeleteObjectVersion (S3 answered %s;' "$refused"
    printf ' `pulumi up` grants it on the check'"'"'s prefix)'
  elif [ "$removed" -gt 0 ]; then
    printf " and its %s versions (the object's and its delete marker)" "$removed"
  fi
}

body() {  # at most MAX_JOBS aws CLI processes at once, whatever the batch
  local item
  for item in "${BATCH[@]}"; do
    case $MODE in
      prepare) throttle
               { prepare_service "$item"; printf 'END\t%s\n' "${SERVICES[$item]}"; } \
                 > "$workdir/out/$item" & ;;
      # One identity at a time: each probes its buckets MAX_JOBS at once.
      probe) { probe_identity "$item"
               if [ "$item" = h ]; then printf 'END\thost\n'
               else printf 'END\t%s\n' "${SERVICES[$item]}"; fi; } > "$workdir/out/$item" ;;
      cleanup) throttle
               { cleanup_service "$item"; printf 'END\t%s\n' "${SERVICES[$item]}"; } \
                 > "$workdir/out/$item" & ;;
    esac
  done
  wait
}
left() { echo $(( started + SCRIPT_SECONDS - $(date +%s) )); }

# The profiles the association installs carry the stack's digest; wait for the current one.
waited=0
current() { [ -r "$AWS_CONFIG_FILE" ] && { [ -z "$PROFILES_SHA256" ] ||
  [ "$(sha256sum < "$AWS_CONFIG_FILE" | cut -d' ' -f1)" = "$PROFILES_SHA256" ]; }; }
until current; do
  if [ "$waited" -ge "$WAIT_SECONDS" ] || [ "$(left)" -le 10 ]; then
    if [ -r "$AWS_CONFIG_FILE" ]; then
      printf 'ERROR\t%s is not the stack'"'"'s current profiles file (sha256 %s): the SSM association has not applied the latest `pulumi up` yet\n' \
        "$AWS_CONFIG_FILE" "$PROFILES_SHA256"
    else
      printf 'ERROR\tno profiles file at %s: the stack'"'"'s SSM association has not run here yet\n' "$AWS_CONFIG_FILE"
    fi
    exit 2
  fi
  sleep 2; waited=$(( waited + 2 ))
done
# The put must never overwrite, and the delete probe must not delete: aws CLI releases
# before late 2024 cannot say so.
if [ "$MODE" = prepare ] && {
    ! timeout 20 aws s3api delete-object --generate-cli-skeleton input 2>/dev/null |
    grep -q IfMatch || ! timeout 20 aws s3api put-object --generate-cli-skeleton input \
    2>/dev/null | grep -q IfNoneMatch; }; then
  printf 'ERROR\tthis aws CLI (%s) has no put-object --if-none-match or delete-object --if-match; use a newer AMI\n' \
    "$(aws --version 2>&1 | tr '\t\n' '  ')"
  exit 2
fi
if ! out=$(timeout 20 aws sts get-caller-identity --query Arn --output text \
    --cli-connect-timeout 5 --cli-read-timeout 10 2>&1); then
  printf 'ERROR\tthe host has no usable credentials: %s\n' "$(clean "$out")"
  exit 2
fi
printf 'SOURCE\t%s\n' "$out"
export -f body prepare_service probe probe_bucket probe_identity cleanup_service retry_denied emit clean \
  code_of is_denied key_of now_ms s3 version_of remove_versions
export -f throttle
export MODE ACCOUNT RUN WAIT_SECONDS PREFIX NO_ETAG MAX_FINDINGS MAX_JOBS workdir versions
body_seconds=$(left)
if [ "$body_seconds" -gt 5 ]; then
  timeout --kill-after=5 "$body_seconds" bash -c "$(declare -p SERVICES BUCKETS BATCH PROBES); body"
  stopped=$?
else
  stopped=124  # the wait for the profiles took the script's whole time
fi
status=0
for out in "$workdir"/out/*; do
  [ -f "$out" ] || continue
  cat "$out"
  grep -qE $'^(CHECK\t[^\t]*\t[^\t]*\t0\t|PROOF\t[^\t]*\t[^\t]*\t[^\t]*\t)' "$out" && status=1
done
if [ "$stopped" -eq 124 ] || [ "$stopped" -eq 137 ]; then
  printf 'DEADLINE\t%s\n' "$SCRIPT_SECONDS"
  status=1
fi
exit "$status"
