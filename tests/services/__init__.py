"""Real servers for the test suite: Redis, PostgreSQL, Ceph RGW (S3), an ATProto PDS, and the
dataset AppView (atdata-app).

Each handle starts its server on a free 127.0.0.1 port in its own temp dir, polls until it is
ready (a ServiceError carries the server's log tail otherwise), and stops it by its own PID.
No pytest here: tests/conftest.py wraps these in fixtures, and `python -m tests.services`
runs them by hand for development (see docs/services.md).
"""

from ._util import ServiceError, free_port
from .appview import AppViewServer
from .ceph_s3 import CephS3Server
from .pds import PdsServer
from .postgres_server import PostgresServer
from .redis_server import RedisServer

__all__ = [
    "AppViewServer",
    "CephS3Server",
    "PdsServer",
    "PostgresServer",
    "RedisServer",
    "ServiceError",
    "free_port",
]
