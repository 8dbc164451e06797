"""The test speed fixture of tests/support/model_cache.py: one parse per process, and the
documents every session sees are the ones it would have had alone.

botocore changes a model as it uses it (it merges the SDK extras into S3's shapes, and its
endpoint defaults into endpoints.json), so a shared document is changed once per session. The
second test holds the shared documents, after several sessions, against what ONE session
ends up with in a process without the fixture: the changes are idempotent, so they match.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import boto3
from support.model_cache import parsed

SERVICES = ("s3", "iam", "sts", "kms", "ssm")
ONE_SESSION = textwrap.dedent(
    f"""
    import json, sys
    import boto3
    from botocore.loaders import JSONFileLoader

    seen = {{}}
    parse = JSONFileLoader.load_file

    def load_file(self, file_path):
        seen[file_path] = document = parse(self, file_path)
        return document

    JSONFileLoader.load_file = load_file
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="y")
    for service in {SERVICES!r}:
        session.client(service, region_name="eu-west-1")
    json.dump(seen, sys.stdout)
    """
)


def _clients() -> None:
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="y")
    for service in SERVICES:
        session.client(service, region_name="eu-west-1")


def test_sessions_share_each_parsed_model() -> None:
    """Two sessions' clients get one parsed document: each model is parsed once a process."""
    first = boto3.Session(region_name="eu-west-1")._loader.load_service_model("s3", "service-2")
    second = boto3.Session(region_name="eu-west-1")._loader.load_service_model("s3", "service-2")
    assert first is second


def test_the_shared_documents_are_what_one_session_alone_ends_up_with(tmp_path: Path) -> None:
    for _ in range(3):
        _clients()
    alone = subprocess.run(
        [sys.executable, "-c", ONE_SESSION],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=tmp_path,
    )
    documents = json.loads(alone.stdout)
    assert any(p.endswith("/s3/2006-03-01/service-2") for p in documents), sorted(documents)
    assert any(p.endswith("/endpoints") for p in documents)
    for path, document in documents.items():
        assert json.loads(json.dumps(parsed[path])) == document, path
