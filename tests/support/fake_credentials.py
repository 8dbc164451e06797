"""Fake AWS credentials for a test, with the user's own AWS config, profile and session hidden,
so nothing reaches a real account and nothing on this machine changes the outcome. Each
fixture adds where its requests go (in-process moto, or a server's URL)."""

from __future__ import annotations

from pathlib import Path

import pytest

HIDDEN = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE")


def use_fake_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, region: str) -> None:
    for name in HIDDEN:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
