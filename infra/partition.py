"""AWS partitions: which one a region belongs to, and what differs between them.

The program builds ARNs from the partition the provider reports (`aws.get_partition`); this
module lets config validation, which runs before any invoke, know the same partition from the
region name, so that a principal of another partition is refused up front.
"""

from __future__ import annotations

import re
from enum import StrEnum


class Partition(StrEnum):
    AWS = "aws"
    CHINA = "aws-cn"
    GOVCLOUD = "aws-us-gov"


# e.g. us-east-1, ap-southeast-5, il-central-1, cn-northwest-1, us-gov-west-1, us-iso-east-1.
# The area is one AWS uses (so `zz-north-1` or `mars-north-9` is refused up front, not when
# the provider first calls an endpoint that does not exist).
REGION = re.compile(
    r"(?P<area>af|ap|ca|cn|eu|il|me|mx|sa|us)(?P<kind>-gov|-iso[a-z]?)?"
    r"-(?:north|south|east|west|central|northeast|northwest|southeast|southwest)-[1-9][0-9]?"
)
SUPPORTED = ", ".join(p.value for p in Partition)


def partition_of_region(region: str) -> Partition | str:
    """The region's partition, or why the region is refused (one clause, for a config error)."""
    match = REGION.fullmatch(region) if isinstance(region, str) else None
    if match is None:
        return "not an AWS region name (e.g. us-east-1, eu-west-1, cn-north-1, us-gov-west-1)"
    if match["kind"] == "-gov":
        return Partition.GOVCLOUD
    if match["kind"]:
        return (
            f"the isolated partitions are not supported (only {SUPPORTED}): their endpoints and "
            "managed policies differ and cannot be tested here"
        )
    return Partition.CHINA if match["area"] == "cn" else Partition.AWS


def ec2_principal(partition: Partition) -> str:
    """EC2's service principal as IAM expects it in the partition (China appends .cn).

    The program asks the provider (`aws.get_service_principal`); this is the same answer for
    sizing documents before any invoke runs, and for the tests' mocks.
    """
    return "ec2.amazonaws.com.cn" if partition is Partition.CHINA else "ec2.amazonaws.com"
