"""What the emulator's rules ask moto about the request at hand: is IAM enforced now, and who
signed it (an S3IAMRequest built from the S3 response object, as moto builds its own)."""

from __future__ import annotations

from typing import Any


def enforcing() -> bool:
    """Whether moto enforces IAM at this point (`INITIAL_NO_AUTH_ACTION_COUNT` reached)."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    return bool(ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT)


def s3_request(response: Any, method: str, action: str) -> Any:
    """moto's view of the signed S3 request `response` is serving, as `action` on its bucket:
    its caller (`._access_key`) and its identity check (`.check_action_permitted`)."""
    from moto.iam.access_control import S3IAMRequest

    return S3IAMRequest(
        account_id=response.current_account,
        method=method,
        path=f"/{response.bucket_name}",
        data=response.data,
        body=response.raw_body,
        headers=response.headers,
        action=action,
    )
