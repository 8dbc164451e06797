# The post-deploy check as it runs ON the shared host, sent by `python -m checks --via-ssm`
# through SSM Run Command (AWS-RunShellScript). It uses only bash, coreutils and the aws CLI
# that Amazon Linux 2023 ships, and the per-service profiles the stack's SSM association wrote
# to /etc/aws/config.
#
# It decides nothing: it sends what the sender planned and prints what each request answered,
# as `OK` or the AWS error code. The sender (checks/via_ssm.py) reads every answer with the one
# function the local check uses too (checks.plan.judge), and retries what IAM propagation
# denied by sending the command again. The sender prepends the variables:
#   MODE          prepare (assume, list, put, get), probe (the planned requests) or cleanup
#                 (delete); one command per batch
#   STOP_AT_FAILURE  prepare: 1 while the sender may still retry, so a service whose assume
#                 or list failed stops there and writes nothing; 0 on the last try
#   PREFIX ACCOUNT RUN WAIT_SECONDS PROFILES_SHA256
#   SCRIPT_SECONDS     the script's own deadline, from its start: waiting for the profiles,
#                      then the body; the sender's executionTimeout leaves a minute beyond it
#   MAX_JOBS           aws CLI processes at once (each is a Python process of ~60 MB)
#   SERVICES BUCKETS   every service of the stack and its bucket
#   BATCH              prepare/cleanup: indices into SERVICES
#   REQUESTS           probe: one request a line, `<n> <who> <owner> <action>` (who `h`, the
#                      host, or an index; owner an index), and `wait`: the requests above are
#                      answered before any below is sent
# Each service's test object is $PREFIX$RUN/<service>: the probes aim at the objects the
# prepare command wrote, and the cleanup command deletes them.
#
# Output, one line each (tab-separated):
#   SOURCE <caller ARN>
#   CHECK  <service> <step> <OK or code> <ms> <detail>
#   ANSWER <n> <OK or code> <ms> <operation>  (probe: one a request, in plan order; the code
#                                   empty where the call got no answer, no line where its job
#                                   died; the operation whose error it is, as the CLI names it)
#   END    <service>                (prepare/cleanup: everything for it was reported)
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
mkdir "$workdir/out" "$workdir/pending" "$workdir/answers"
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
# The first error the CLI printed, as `<code>\t<operation>` (nothing where it printed none: no
# answer at all); the operation may be the AssumeRole the CLI made for the profile first.
error_of() {
  grep -oE 'An error occurred \([A-Za-z0-9.]+\) when calling the [A-Za-z0-9]+ operation' <<<"$1" |
    head -n1 | sed -E 's/An error occurred \(([A-Za-z0-9.]{1,40})[A-Za-z0-9.]*\) when calling the ([A-Za-z0-9]{1,60})[A-Za-z0-9]* operation/\1\t\2/'
}
code_of() { local error; error=$(error_of "$1"); printf '%s' "${error%%$'\t'*}"; }
since() { local ms=$(( $(now_ms) - $1 )); echo $(( ms < 0 ? 0 : ms )); }  # a clock step back
emit() {  # service step exit-status start_ms output: the call's code, and its words
  local code=OK
  [ "$3" -eq 0 ] || code=$(code_of "$5")
  printf 'CHECK\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$code" "$(since "$4")" "$(clean "$5")"
}
throttle() { while [ "$(jobs -rp | wc -l)" -ge "$MAX_JOBS" ]; do wait -n; done; }
key_of() { printf '%s%s/%s' "$PREFIX" "$RUN" "${SERVICES[$1]}"; }
version_of() { sed -n 's/.*"VersionId": *"\([^"]*\)".*/\1/p' <<<"$1" | head -n1; }
s3() { aws s3api "$@" --expected-bucket-owner "$ACCOUNT" --cli-connect-timeout 10 \
  --cli-read-timeout 30; }

prepare_service() {  # index: assume, list, put the test object, read it back
  local i=$1 name=${SERVICES[$1]} bucket=${BUCKETS[$1]} start out status key vid
  key=$(key_of "$i")
  start=$(now_ms)
  out=$(aws sts get-caller-identity --profile "$name" --query Arn --output text 2>&1)
  status=$?
  [ "$status" -eq 0 ] && out="profile $name assumed $out"
  emit "$name" "assume role" "$status" "$start" "$out"
  [ "$status" -eq 0 ] || return
  start=$(now_ms)
  out=$(s3 list-objects-v2 --bucket "$bucket" --max-items 1 --prefix "$PREFIX" \
    --profile "$name" 2>&1)
  status=$?
  [ "$status" -eq 0 ] && out="listed $bucket"
  emit "$name" "list" "$status" "$start" "$out"
  [ "$status" -eq 0 ] || [ "$STOP_AT_FAILURE" = 0 ] || return
  local body="$workdir/$i.body"
  { head -c 32 /dev/urandom; printf ' ec2-assume-role check of %s\n' "$name"; } > "$body"
  # Recorded before the put is sent: whatever stops the body, the outer part deletes it.
  printf '%s\t%s\t%s\n' "$name" "$bucket" "$key" > "$workdir/pending/$i"
  start=$(now_ms)
  out=$(s3 put-object --profile "$name" --bucket "$bucket" --key "$key" --body "$body" \
    --if-none-match '*' 2>&1)
  status=$?
  if [ "$status" -eq 0 ]; then
    vid=$(version_of "$out")
    if [ -n "$vid" ] && [ "$vid" != null ]; then printf '%s\n' "$vid" > "$versions/$i"; fi
    out="wrote $(wc -c < "$body") bytes to $key"
  fi
  emit "$name" "put" "$status" "$start" "$out"
  [ "$status" -eq 0 ] || return  # the cleanup command deletes the key all the same
  start=$(now_ms)
  out=$(s3 get-object --profile "$name" --bucket "$bucket" --key "$key" "$workdir/$i.read" 2>&1)
  status=$?
  if [ "$status" -eq 0 ] && cmp -s "$body" "$workdir/$i.read"; then
    emit "$name" "get" 0 "$start" "read back $(wc -c < "$workdir/$i.read") identical bytes"
  elif [ "$status" -eq 0 ]; then
    printf 'CHECK\t%s\tget\tMISMATCH\t%s\tread back bytes that differ from those written\n' \
      "$name" "$(since "$start")"
  else
    emit "$name" "get" "$status" "$start" "$out"
  fi
  # Done: the object stays for the probes; the cleanup command deletes it.
  rm -f "$workdir/pending/$i"
}

answer() {  # who owner action -> "<OK or code>\t<ms>\t<operation>" (no code: no answer)
  local args=(--bucket "${BUCKETS[$2]}") key out start answered=$'OK\t'
  [ "$1" = h ] || args+=(--profile "${SERVICES[$1]}")
  key=$(key_of "$2")
  start=$(now_ms)
  case $3 in
    list) out=$(s3 list-objects-v2 "${args[@]}" --prefix "$PREFIX" --max-items 1 2>&1) ;;
    get) out=$(s3 get-object "${args[@]}" --key "$key" /dev/null 2>&1) ;;
    put) out=$(s3 put-object "${args[@]}" --key "$key" --if-none-match '*' 2>&1) ;;
    delete) out=$(s3 delete-object "${args[@]}" --key "$key" --if-match "$NO_ETAG" 2>&1) ;;
    *) false ;;
  esac || answered=$(error_of "$out")
  [ -n "$answered" ] || answered=$'\t'  # no error the CLI names: no answer at all
  printf '%s\t%s\t%s\n' "${answered%%$'\t'*}" "$(since "$start")" "${answered#*$'\t'}"
}

probe_requests() {  # every request of REQUESTS, MAX_JOBS at once; one file of answer each
  local n who owner action
  # One assume per identity first, so the parallel requests share the CLI's cached session.
  for who in $(awk '$2 != "h" && $1 != "wait" { print $2 }' <<<"$REQUESTS" | sort -u); do
    throttle
    aws sts get-caller-identity --profile "${SERVICES[$who]}" >/dev/null 2>&1 &
  done
  wait
  while read -r n who owner action; do
    [ -n "$n" ] || continue
    if [ "$n" = wait ]; then wait; continue; fi
    throttle
    answer "$who" "$owner" "$action" > "$workdir/answers/$n" &
  done <<<"$REQUESTS"
  wait
}

cleanup_service() {
  local i=$1 name=${SERVICES[$1]} start out status
  start=$(now_ms)
  out=$(s3 delete-object --profile "$name" --bucket "${BUCKETS[$i]}" --key "$(key_of "$i")" 2>&1)
  status=$?
  [ "$status" -eq 0 ] && out="deleted $(key_of "$i")$(remove_versions "$i" "$out")"
  emit "$name" "delete" "$status" "$start" "$out"
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
  case $MODE in
    probe) probe_requests; return ;;
  esac
  for item in "${BATCH[@]}"; do
    throttle
    case $MODE in
      prepare) { prepare_service "$item"; printf 'END\t%s\n' "${SERVICES[$item]}"; } \
                 > "$workdir/out/$item" & ;;
      cleanup) { cleanup_service "$item"; printf 'END\t%s\n' "${SERVICES[$item]}"; } \
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
export -f body prepare_service answer probe_requests cleanup_service emit clean code_of \
  error_of since key_of now_ms s3 version_of remove_versions throttle
export MODE STOP_AT_FAILURE ACCOUNT RUN WAIT_SECONDS PREFIX NO_ETAG MAX_JOBS REQUESTS workdir \
  versions
body_seconds=$(left)
if [ "$body_seconds" -gt 5 ]; then
  timeout --kill-after=5 "$body_seconds" bash -c "$(declare -p SERVICES BUCKETS BATCH); body"
  stopped=$?
else
  stopped=124  # the wait for the profiles took the script's whole time
fi
for out in "$workdir"/out/*; do
  [ -f "$out" ] && cat "$out"
done
# In plan order; a request whose answer file is missing (its job died) gets no line.
while read -r n _; do
  [ -n "$n" ] && [ "$n" != wait ] && [ -s "$workdir/answers/$n" ] &&
    printf 'ANSWER\t%s\t%s\n' "$n" "$(cat "$workdir/answers/$n")"
done <<<"$REQUESTS"
if [ "$stopped" -eq 124 ] || [ "$stopped" -eq 137 ]; then
  printf 'DEADLINE\t%s\n' "$SCRIPT_SECONDS"
fi
exit 0
