# The post-deploy check as it runs ON the shared host, sent by `python -m checks --via-ssm`
# through SSM Run Command (AWS-RunShellScript). It uses only bash, coreutils and the aws CLI
# that Amazon Linux 2023 ships, and the per-service profiles the stack wrote to
# /etc/aws/config. The sender prepends the variables ACCOUNT, WAIT_SECONDS, SERVICES, BUCKETS
# and CHECKED (indices into SERVICES).
#
# Output, one line each (tab-separated), parsed by checks/via_ssm.py:
#   SOURCE <caller ARN>
#   CHECK  <service> <step> <1|0> <ms> <detail>
#   END    <service>            (that service's steps are all reported)
#   ERROR  <message>            (the check could not run at all)
# A failed step's detail is the aws CLI's own error text; the sender adds cause and fix.
# No credential is ever printed: the CLI resolves them itself from instance metadata.
set -u
export AWS_CONFIG_FILE="${AWS_CONFIG_FILE:-/etc/aws/config}"
export AWS_PAGER=""
unset AWS_PROFILE
PREFIX="ec2-assume-role-check/"
workdir=$(mktemp -d) || { printf 'ERROR\tmktemp failed\n'; exit 2; }
# The CLI caches assumed-role credentials under $HOME/.aws/cli/cache; keep that cache in the
# work directory, which is removed on exit, so no credential outlives the check on disk.
export HOME="$workdir"

cleanup() {
  # A test object whose delete did not run (the command was killed) is deleted here.
  local pending profile bucket key
  for pending in "$workdir"/pending.*; do
    [ -s "$pending" ] || continue
    IFS=$'\t' read -r profile bucket key < "$pending"
    aws s3api delete-object --profile "$profile" --bucket "$bucket" --key "$key" \
      --expected-bucket-owner "$ACCOUNT" >/dev/null 2>&1
  done
  rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

now_ms() { date +%s%3N; }
emit() {  # service step ok start_ms detail
  local detail
  detail=$(printf '%s' "$5" | tr '\t\r\n' '   ' | cut -c1-800)
  printf 'CHECK\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$(( $(now_ms) - $4 ))" "$detail"
}
is_denied() { grep -qE '\((AccessDenied|AccessDeniedException|UnauthorizedOperation)\)' <<<"$1"; }

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

list_bucket() {  # bucket [aws options...]
  local bucket=$1; shift
  aws s3api list-objects-v2 --bucket "$bucket" --max-items 1 --prefix "$PREFIX" \
    --expected-bucket-owner "$ACCOUNT" "$@" 2>&1
}

check_service() {  # index
  local i=$1 name=${SERVICES[$1]} bucket=${BUCKETS[$1]} start out
  # 1. The host's own credentials must be denied on the bucket.
  start=$(now_ms)
  if out=$(list_bucket "$bucket"); then
    emit "$name" "direct access denied" 0 "$start" "ALLOWED"
  elif is_denied "$out"; then
    emit "$name" "direct access denied" 1 "$start" "the caller is denied on $bucket"
  else
    emit "$name" "direct access denied" 0 "$start" "$out"
  fi
  # 2. The service's profile assumes its role; AccessDenied is retried while IAM propagates.
  start=$(now_ms)
  if ! out=$(retry_denied aws sts get-caller-identity --profile "$name" --query Arn --output text); then
    emit "$name" "assume role" 0 "$start" "$out"
    return
  fi
  emit "$name" "assume role" 1 "$start" "profile $name assumed $out"
  # 3. List (the role's own policy may still be propagating), put (never overwriting), read
  #    back, delete.
  start=$(now_ms)
  if out=$(retry_denied list_bucket "$bucket" --profile "$name"); then
    emit "$name" "list" 1 "$start" "listed $bucket"
  else
    emit "$name" "list" 0 "$start" "$out"
  fi
  local key="${PREFIX}$(cat /proc/sys/kernel/random/uuid)" body="$workdir/$i.body"
  { head -c 32 /dev/urandom; printf ' ec2-assume-role check of %s\n' "$name"; } > "$body"
  start=$(now_ms)
  if out=$(aws s3api put-object --profile "$name" --bucket "$bucket" --key "$key" \
      --body "$body" --if-none-match '*' --expected-bucket-owner "$ACCOUNT" 2>&1); then
    printf '%s\t%s\t%s\n' "$name" "$bucket" "$key" > "$workdir/pending.$i"
    emit "$name" "put" 1 "$start" "wrote $(wc -c < "$body") bytes to $key"
    start=$(now_ms)
    if out=$(aws s3api get-object --profile "$name" --bucket "$bucket" --key "$key" \
        --expected-bucket-owner "$ACCOUNT" "$workdir/$i.read" 2>&1); then
      if cmp -s "$body" "$workdir/$i.read"; then
        emit "$name" "get" 1 "$start" "read back $(wc -c < "$workdir/$i.read") identical bytes"
      else
        emit "$name" "get" 0 "$start" "MISMATCH read back bytes that differ from those written"
      fi
    else
      emit "$name" "get" 0 "$start" "$out"
    fi
    start=$(now_ms)
    if out=$(aws s3api delete-object --profile "$name" --bucket "$bucket" --key "$key" \
        --expected-bucket-owner "$ACCOUNT" 2>&1); then
      emit "$name" "delete" 1 "$start" "deleted $key"
      rm -f "$workdir/pending.$i"
    else
      emit "$name" "delete" 0 "$start" "$out"
    fi
  else
    emit "$name" "put" 0 "$start" "$out"
  fi
  # 4. Isolation: this profile must be denied on every other service's bucket.
  if [ "${#SERVICES[@]}" -gt 1 ]; then
    local allowed="" other="" j
    start=$(now_ms)
    for j in "${!SERVICES[@]}"; do
      [ "$j" = "$i" ] && continue
      if out=$(list_bucket "${BUCKETS[$j]}" --profile "$name"); then
        allowed="$allowed ${SERVICES[$j]}"
      elif ! is_denied "$out"; then
        other="$out"
      fi
    done
    if [ -n "$allowed" ]; then
      emit "$name" "isolation" 0 "$start" "ALLOWED$allowed"
    elif [ -n "$other" ]; then
      emit "$name" "isolation" 0 "$start" "$other"
    else
      emit "$name" "isolation" 1 "$start" "denied on the other services' buckets"
    fi
  fi
}

# Right after `pulumi up` the agent can answer before cloud-init has written the profiles.
if command -v cloud-init >/dev/null 2>&1; then
  cloud-init status --wait >/dev/null 2>&1
fi
if [ ! -r "$AWS_CONFIG_FILE" ]; then
  printf 'ERROR\tno profiles file at %s: the stack'"'"'s user data has not run here\n' "$AWS_CONFIG_FILE"
  exit 2
fi
# The put must never overwrite; aws CLI releases before August 2024 cannot say so.
if ! aws s3api put-object --generate-cli-skeleton input 2>/dev/null | grep -q IfNoneMatch; then
  printf 'ERROR\tthis aws CLI (%s) has no put-object --if-none-match; use a newer AMI\n' \
    "$(aws --version 2>&1 | tr '\t\n' '  ')"
  exit 2
fi
if ! out=$(aws sts get-caller-identity --query Arn --output text 2>&1); then
  printf 'ERROR\tthe host has no usable credentials: %s\n' "$(printf '%s' "$out" | tr '\t\n' '  ')"
  exit 2
fi
printf 'SOURCE\t%s\n' "$out"
for i in "${CHECKED[@]}"; do
  { check_service "$i"; printf 'END\t%s\n' "${SERVICES[$i]}"; } > "$workdir/$i.out" &
done
wait
status=0
for i in "${CHECKED[@]}"; do
  cat "$workdir/$i.out"
  grep -q $'^CHECK\t[^\t]*\t[^\t]*\t0\t' "$workdir/$i.out" && status=1
done
exit "$status"
