"""What the stack, the check and the host script agree on, as plain values, importing nothing.

The program (infra/), the check (checks/) and the script the check sends to the host
(remote_check.sh, given these values in its header) read them from here, so each is defined
once: the prefix the check alone writes under, the IAM action behind each probe, and the names
of the stack outputs the check reads.
"""

RESERVED_PREFIX = "ec2-assume-role-check/"
"""Where the check writes (and deletes) its test objects in each bucket, under unique names, so
user data is never touched. The stack's lifecycle rule expires anything left there after a
day, and a versioned bucket's grant lets the check delete versions there and nowhere else."""

PROBE_ACTIONS = {
    "list": "s3:ListBucket",
    "get": "s3:GetObject",
    "put": "s3:PutObject",
    "delete": "s3:DeleteObject",
}
"""Each probe of the check, and the one S3 action it exercises."""

OUTPUT_KEYS = (
    "topology",
    "region",
    "partition",
    "services",
    "hostRoleArn",
    "hostInstanceId",
    "hostInstanceProfile",
    "hostAdopted",
    "awsConfig",
    "awsConfigSha256",
    "profilesAssociationId",
    "instances",
)
"""The stack outputs (and the `Ec2AssumeRole` component's outputs), by name."""

SERVICE_KEYS = ("bucketName", "bucketArn", "roleArn", "kmsKeyArn")
"""Each entry of the `services` output; `kmsKeyArn` only for an SSE-KMS service."""
