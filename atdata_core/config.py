"""Where things live (platformdirs) and the TOML config: index backend, named repos, atmosphere.

The config file is optional; with none, everything defaults to the embedded SQLite index and a
disk store in the user data dir. ``ATDATA_TUI_HOME`` moves all of it (tests, demos, screenshots).
Secrets never live here unless the user puts them here: S3 credentials come from the boto3 chain
(or a named ``profile``), and ATProto sessions live in their own 0600 file.
"""

from __future__ import annotations

import os
import tomllib
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from .errors import AtdataError

APP_NAME = "atdata-tui"
CONFIG_FILE = "config.toml"


class ConfigError(AtdataError):
    """The config file is malformed; the message names the file, the key and the fix."""


def _home() -> Path | None:
    home = os.environ.get("ATDATA_TUI_HOME")
    return Path(home).expanduser() if home else None


def data_dir() -> Path:
    home = _home()
    return home / "data" if home else Path(platformdirs.user_data_dir(APP_NAME))


def config_dir() -> Path:
    home = _home()
    return home / "config" if home else Path(platformdirs.user_config_dir(APP_NAME))


def cache_dir() -> Path:
    home = _home()
    return home / "cache" if home else Path(platformdirs.user_cache_dir(APP_NAME))


def config_path() -> Path:
    return Path(os.environ.get("ATDATA_TUI_CONFIG") or config_dir() / CONFIG_FILE)


def default_index_path() -> Path:
    return data_dir() / "index.db"


def default_store_root() -> Path:
    return data_dir() / "shards"


def session_path() -> Path:
    return config_dir() / "session.json"


@dataclass
class RepoConfig:
    """A named repository: an index backend and (optionally) a data store."""

    name: str
    path: str | None = None
    redis: str | None = None
    postgres: str | None = None
    store: str | None = None  # "disk" or "s3"
    store_path: str | None = None
    bucket: str | None = None
    endpoint: str | None = None
    region: str | None = None
    prefix: str = ""
    profile: str | None = None
    access_key: str | None = None
    secret_key: str | None = None


@dataclass
class AtmosphereConfig:
    pds: str | None = None
    plc: str | None = None
    handle: str | None = None
    #: The dataset AppView (atdata-app) that network search asks: ``https://host``.
    appview: str | None = None
    #: Seconds to wait for a PDS, the PLC or the AppView (per connection and per read).
    timeout: float | None = None


@dataclass
class Config:
    path: Path | None = None
    index_path: str | None = None
    redis: str | None = None
    postgres: str | None = None
    repos: dict[str, RepoConfig] = field(default_factory=dict)
    atmosphere: AtmosphereConfig = field(default_factory=AtmosphereConfig)
    keys: dict[str, str] = field(default_factory=dict)
    theme: str | None = None


_REPO_KEYS = set(RepoConfig.__dataclass_fields__) - {"name"}


def _expect(table: Any, where: str, path: Path) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [{where}] must be a table")
    return table


def _str(value: Any, key: str, path: Path) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ConfigError(f"{path}: {key} must be a string, got {type(value).__name__}")


def _service_url(value: Any, key: str, path: Path) -> str | None:
    """An http(s) URL of a service (``https://host[:port][/path]``), or ``did:web:host``."""
    text = _str(value, key, path)
    if text is None:
        return None
    url = text.strip()
    if url.startswith("did:web:"):
        url = "https://" + urllib.parse.unquote(url[len("did:web:") :])
    parts = urllib.parse.urlsplit(url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or parts.username
        or parts.password
        or any(ord(c) < 0x21 or ord(c) == 0x7F for c in url)
    ):
        shown = "(a URL with credentials)" if parts.username or parts.password else repr(text[:120])
        raise ConfigError(
            f"{path}: {key} = {shown} is not a service URL; write it as "
            '"https://host" (or "http://127.0.0.1:port" for a local one), with no query, '
            "fragment or credentials"
        )
    return url.rstrip("/")


def _seconds(value: Any, key: str, path: Path) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 600:
        raise ConfigError(f"{path}: {key} must be a number of seconds between 0 and 600")
    return float(value)


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate the config file (a missing file is an empty config)."""
    p = Path(path) if path else config_path()
    if not p.exists():
        return Config(path=None)
    try:
        raw = tomllib.loads(p.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config {p}: {exc}") from None
    cfg = Config(path=p)
    index = _expect(raw.get("index", {}), "index", p)
    cfg.index_path = _str(index.get("path"), "index.path", p)
    cfg.redis = _str(index.get("redis"), "index.redis", p)
    cfg.postgres = _str(index.get("postgres"), "index.postgres", p)
    for name, table in _expect(raw.get("repos", {}), "repos", p).items():
        table = _expect(table, f"repos.{name}", p)
        unknown = set(table) - _REPO_KEYS
        if unknown:
            raise ConfigError(
                f"{p}: [repos.{name}] has unknown keys {sorted(unknown)}; known: {sorted(_REPO_KEYS)}"
            )
        values = {k: _str(v, f"repos.{name}.{k}", p) for k, v in table.items()}
        cfg.repos[name] = RepoConfig(
            name=name, **{k: v for k, v in values.items() if v is not None}
        )
    atmo = _expect(raw.get("atmosphere", {}), "atmosphere", p)
    cfg.atmosphere = AtmosphereConfig(
        pds=_str(atmo.get("pds"), "atmosphere.pds", p),
        plc=_str(atmo.get("plc"), "atmosphere.plc", p),
        handle=_str(atmo.get("handle"), "atmosphere.handle", p),
        appview=_service_url(atmo.get("appview"), "atmosphere.appview", p),
        timeout=_seconds(atmo.get("timeout"), "atmosphere.timeout", p),
    )
    keys = _expect(raw.get("keys", {}), "keys", p)
    cfg.keys = {k: str(v) for k, v in keys.items()}
    ui = _expect(raw.get("ui", {}), "ui", p)
    cfg.theme = _str(ui.get("theme"), "ui.theme", p)
    return cfg


EXAMPLE_CONFIG = """\
# atdata-tui configuration (TOML). Every section is optional.

[index]
# path = "/data/team/index.db"          # another SQLite index (atdata's ~/.atdata/index.db works)
# redis = "redis://localhost:6379/0"     # or a team index in Redis
# postgres = "postgresql://user@host/db" # or in PostgreSQL

# Named repositories: browse and write "lab/name".
# [repos.lab]
# postgres = "postgresql://user@db.lab/atdata"
# store = "s3"
# bucket = "lab-datasets"
# endpoint = "https://s3.lab.example"    # R2, MinIO, Ceph: any S3-compatible endpoint
# region = "us-east-1"
# profile = "lab"                         # credentials from ~/.aws (never stored in the index)

[atmosphere]
# pds = "https://bsky.social"
# plc = "https://plc.directory"
# appview = "https://datasets.atdata.blue"  # the dataset AppView: `atdata-tui search`, "network"
# timeout = 15                               # seconds to wait for a PDS, the PLC or the AppView

[keys]
# Remap bindings by id: quit = "ctrl+q", filter = "slash,f"
"""
