"""A real S3 server: a one-node Ceph cluster (mon + memstore OSD) behind a RADOS Gateway.

Everything lives in a temp dir and binds 127.0.0.1; every daemon runs in the foreground (`-f`)
under Popen, so each is stopped by its own PID. `stop_rgw()` / `start_rgw()` stop and bring
back only the gateway (same port, same cluster, objects kept) for fault tests.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from ._util import (
    HOST,
    ManagedService,
    ServiceError,
    free_port,
    log_tail,
    need_binary,
    register,
    run,
    spawn,
    stop_process,
    wait_until,
)

ACCESS_KEY = "atdataTestAccessKey"
SECRET_KEY = "atdataTestSecretKey0123456789abcdefghij"
REGION = "us-east-1"
RGW_NAME = "client.rgw.a"


class CephS3Server(ManagedService):
    """One mon, one memstore OSD, one radosgw; an S3 user with a known key pair."""

    def __init__(
        self,
        rgw_port: int | None = None,
        mon_port: int | None = None,
        memstore_bytes: int = 2 * 1024**3,
    ) -> None:
        self.rgw_port = rgw_port or free_port()
        self.mon_port = mon_port or free_port()
        self.memstore_bytes = memstore_bytes
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        self.region = REGION
        self.workdir = Path(tempfile.mkdtemp(prefix="atdata-ceph-"))
        self.conf = self.workdir / "ceph.conf"
        self.mon: subprocess.Popen | None = None
        self.osd: subprocess.Popen | None = None
        self.rgw: subprocess.Popen | None = None
        self.osd_id: int | None = None
        self.startup_seconds: float | None = None
        self._bucket_seq = itertools.count(1)

    # -- public API ---------------------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.rgw_port}"

    @property
    def running(self) -> bool:
        return all(p is not None and p.poll() is None for p in (self.mon, self.osd, self.rgw))

    def client(self, **config):
        """A boto3 S3 client for this gateway (path-style addressing)."""
        import boto3
        from botocore.config import Config

        cfg = {"s3": {"addressing_style": "path"}, "retries": {"max_attempts": 3}}
        cfg.update(config)
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(**cfg),
        )

    def new_bucket(self, prefix: str = "test") -> str:
        """Create a fresh, empty bucket and return its name."""
        clean = "".join(c if c.isalnum() or c == "-" else "-" for c in prefix.lower()).strip("-")
        name = f"{clean[:30] or 'b'}-{next(self._bucket_seq)}-{uuid.uuid4().hex[:8]}"
        self.client().create_bucket(Bucket=name)
        return name

    @property
    def credentials(self) -> dict[str, str]:
        """The keys in the form ``S3DataStore(credentials=...)`` takes."""
        return {"access_key": self.access_key, "secret_key": self.secret_key}

    def keys(self, bucket: str) -> list[str]:
        """Every object key in ``bucket``, sorted, through a plain boto3 client (not ours)."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def open_uploads(self, bucket: str) -> list[str]:
        """Keys of the multipart uploads started in ``bucket`` and neither completed nor aborted."""
        response = self.client().list_multipart_uploads(Bucket=bucket)
        return [u["Key"] for u in response.get("Uploads", [])]

    def env(self) -> dict[str, str]:
        """AWS_* variables that point boto3/CLI tools at this gateway."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint_url,
        }

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> CephS3Server:
        if self.running:
            return self
        if self.mon is not None or self.osd is not None:
            raise ServiceError("CephS3Server cannot be started twice; use start_rgw()")
        t0 = time.monotonic()
        register(self)
        try:
            self._bootstrap()
            self.start_rgw(timeout=120)
            self._admin(
                [
                    "user",
                    "create",
                    "--uid=test",
                    "--display-name=atdata test",
                    f"--access-key={self.access_key}",
                    f"--secret-key={self.secret_key}",
                ],
                what="radosgw-admin user create",
            )
            # the first bucket of a fresh cluster creates the rgw pools (several seconds)
            self.client().create_bucket(Bucket="warmup")
        except BaseException:
            self.close()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def stop_rgw(self) -> None:
        """Stop only the gateway (SIGTERM to its PID); the cluster and its objects stay."""
        stop_process(self.rgw, timeout=20)
        self.rgw = None

    def start_rgw(self, timeout: float = 60) -> None:
        """(Re)start the gateway on the same port and wait until it answers HTTP."""
        if self.rgw is not None and self.rgw.poll() is None:
            return
        radosgw = need_binary("radosgw")
        log = self.workdir / "log" / "rgw.stderr"
        self.rgw = spawn([radosgw, "-f", "-c", str(self.conf), "-n", RGW_NAME], log=log)

        def answers() -> bool:
            # any HTTP answer (even an error status) means it is serving
            with contextlib.suppress(urllib.error.HTTPError):
                urllib.request.urlopen(self.endpoint_url + "/", timeout=1).close()
            return True

        try:
            wait_until(
                answers,
                what="radosgw",
                timeout=timeout,
                proc=self.rgw,
                log=self.workdir / "log" / f"{RGW_NAME}.log",
            )
        except ServiceError as e:
            raise ServiceError(f"{e}\nstderr:\n{log_tail(log, 10)}") from None

    def restart_rgw(self) -> None:
        self.stop_rgw()
        self.start_rgw()

    def stop(self) -> None:
        """Stop gateway, OSD and monitor (in that order), each by its own PID."""
        for attr in ("rgw", "osd", "mon"):
            stop_process(getattr(self, attr), timeout=20)
            setattr(self, attr, None)

    def __repr__(self) -> str:
        return f"CephS3Server(endpoint_url={self.endpoint_url!r}, running={self.running})"

    # -- internals ----------------------------------------------------------------------------
    def _ceph(self, args: list[str], what: str, timeout: float = 60) -> str:
        return run(
            [need_binary("ceph"), "-c", str(self.conf), "--connect-timeout", "30", *args],
            what=what,
            timeout=timeout,
        )

    def _admin(self, args: list[str], what: str) -> str:
        # (its own admin socket path: the running radosgw already owns the default one)
        return run(
            [
                need_binary("radosgw-admin"),
                "-c",
                str(self.conf),
                "-n",
                RGW_NAME,
                "--admin-socket",
                str(self.workdir / "run" / "radosgw-admin.asok"),
                *args,
            ],
            what=what,
            timeout=120,
        )

    def _write_conf(self, fsid: str) -> None:
        d = self.workdir
        for sub in ("run", "log", "mon", "osd", "rgw", "crash"):
            (d / sub).mkdir()
        self.conf.write_text(f"""\
[global]
fsid = {fsid}
mon host = v2:{HOST}:{self.mon_port}
mon initial members = a
public addr = {HOST}
cluster addr = {HOST}
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = {self.memstore_bytes}
run dir = {d}/run
log file = {d}/log/$name.log
pid file = {d}/run/$name.pid
admin socket = {d}/run/$name.asok
keyring = {d}/keyring
crash dir = {d}/crash
mon data = {d}/mon/$cluster-$id
osd data = {d}/osd/$cluster-$id
rgw data = {d}/rgw/$cluster-$id
mon data avail crit = 1
mon data avail warn = 2
# a one-node test cluster: commit map changes at once instead of batching them for 1 s
# (rgw's first start creates several pools, each one a new osdmap epoch)
paxos propose interval = 0.01
paxos min wait = 0.001
objecter tick interval = 1

[{RGW_NAME}]
ms mon client mode = crc
ms client mode = crc
rgw frontends = beast endpoint={HOST}:{self.rgw_port}
rgw enable usage log = false
""")

    def _bootstrap(self) -> None:
        d = self.workdir
        fsid = str(uuid.uuid4())
        self._write_conf(fsid)
        authtool = need_binary("ceph-authtool")
        keyring = d / "keyring"
        run(
            [
                authtool,
                "--create-keyring",
                str(keyring),
                "--gen-key",
                "-n",
                "mon.",
                "--cap",
                "mon",
                "allow *",
            ],
            what="ceph-authtool mon.",
        )
        run(
            [
                authtool,
                str(keyring),
                "--gen-key",
                "-n",
                "client.admin",
                "--cap",
                "mon",
                "allow *",
                "--cap",
                "osd",
                "allow *",
                "--cap",
                "mgr",
                "allow *",
            ],
            what="ceph-authtool client.admin",
        )
        monmap = d / "monmap"
        run(
            [
                need_binary("monmaptool"),
                "--create",
                "--addv",
                "a",
                f"[v2:{HOST}:{self.mon_port}]",
                "--fsid",
                fsid,
                str(monmap),
            ],
            what="monmaptool",
        )
        ceph_mon = need_binary("ceph-mon")
        run(
            [
                ceph_mon,
                "-c",
                str(self.conf),
                "--mkfs",
                "-i",
                "a",
                "--monmap",
                str(monmap),
                "--keyring",
                str(keyring),
            ],
            what="ceph-mon --mkfs",
        )
        self.mon = spawn(
            [ceph_mon, "-f", "-c", str(self.conf), "-i", "a"], log=d / "log" / "mon.stderr"
        )
        osd_uuid = str(uuid.uuid4())
        self.osd_id = int(self._ceph(["osd", "new", osd_uuid], what="ceph osd new").strip())
        ceph_osd = need_binary("ceph-osd")
        (d / "osd" / f"ceph-{self.osd_id}").mkdir()
        run(
            [
                ceph_osd,
                "-c",
                str(self.conf),
                "-i",
                str(self.osd_id),
                "--mkfs",
                "--osd-uuid",
                osd_uuid,
            ],
            what="ceph-osd --mkfs",
            timeout=120,
        )
        self.osd = spawn(
            [ceph_osd, "-f", "-c", str(self.conf), "-i", str(self.osd_id)],
            log=d / "log" / "osd.stderr",
        )
        # radosgw started before the OSD is up waits for an objecter tick (5 s) to notice it
        wait_until(
            self._osd_up,
            what="ceph-osd",
            timeout=60,
            proc=self.osd,
            log=d / "log" / f"osd.{self.osd_id}.log",
            interval=0.1,
        )

    def _osd_up(self) -> bool:
        out = self._ceph(["osd", "stat", "-f", "json"], what="ceph osd stat", timeout=30)
        return json.loads(out).get("num_up_osds", 0) >= 1
