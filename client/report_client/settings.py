"""Where the API is and which token to send: flags, then the environment, then a profile of the config file.

The config file (TOML, `$REPORTS_CONFIG` or `~/.config/reports/config.toml`):

    [profiles.default]
    api_url = "http://127.0.0.1:3000"
    token_command = "./dev token --tenant tenant-a --role farm_manager"

    [profiles.prod]
    api_url = "https://reports.example.com"
    token = "eyJ..."
"""

from __future__ import annotations

import re
import shlex
import subprocess
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from report_client.errors import ConfigError

DEFAULT_PROFILE = "default"
TOKEN_COMMAND_TIMEOUT_SEC = 60
_PROFILE_KEYS = frozenset({"api_url", "token", "token_command"})
# A bearer token is visible ASCII without spaces (RFC 6750's b64token and more); anything else would break
# the Authorization header, and must never be echoed back: it is a credential.
_BEARER_TOKEN = re.compile(r"[\x21-\x7e]+")
_SOURCE_NAMES = {"flag": "--token"}


def config_path(environ: Mapping[str, str]) -> Path:
    explicit = environ.get("REPORTS_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".config")
    return Path(base) / "reports" / "config.toml"


def read_profiles(path: Path) -> dict[str, dict[str, Any]]:
    """The file's profiles; none when there is no file (a file that cannot be read is an error)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"the config file {path} is not UTF-8 text (byte {error.start}): it must be UTF-8 TOML"
        ) from None
    except OSError as error:
        raise ConfigError(f"cannot read the config file {path}: {error.strerror or error}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"the config file {path} is not valid TOML: {error}") from None
    profiles = document.get("profiles", {})
    if not isinstance(profiles, dict) or not all(isinstance(value, dict) for value in profiles.values()):
        raise ConfigError(f"{path}: profiles must be tables, e.g. [profiles.default]")
    for name, profile in profiles.items():
        unknown = sorted(set(profile) - _PROFILE_KEYS)
        if unknown:
            raise ConfigError(
                f"{path}: profile {name!r} has unknown keys {', '.join(unknown)}",
                hint=f"a profile takes {', '.join(sorted(_PROFILE_KEYS))}",
            )
        for key, value in profile.items():
            if not isinstance(value, str):
                raise ConfigError(f"{path}: profiles.{name}.{key} must be a string")
        if "token" in profile and "token_command" in profile:
            raise ConfigError(f"{path}: profile {name!r} has both token and token_command; keep one")
    return profiles


@dataclass(frozen=True)
class Settings:
    """The resolved connection settings. The token is only worked out (a token_command run) when a
    request needs one, so commands that need none never run it."""

    api_url: str | None
    profile: str
    sources: dict[str, str] = field(default_factory=dict)  # which layer each value came from, for error hints
    _token: str | None = None
    _token_command: str | None = None
    _config_file: Path | None = None

    def require_api_url(self) -> str:
        if not self.api_url:
            raise ConfigError(
                "no API URL: give --api-url, set REPORTS_API_URL, or set api_url in the profile "
                f"{self.profile!r} of {self._config_file}",
                hint="on the local stack (./dev run) it is http://127.0.0.1:3000",
            )
        return self.api_url

    def token(self) -> str:
        if self._token:
            return self._token
        if self._token_command:
            return _run_token_command(self._token_command, self.profile)
        raise ConfigError(
            "no token: give --token, set REPORTS_TOKEN, or set token or token_command in the profile "
            f"{self.profile!r} of {self._config_file}",
            hint="on the local stack: export REPORTS_TOKEN=$(./dev token --tenant tenant-a --role farm_manager)",
        )


def resolve(
    *,
    api_url: str | None,
    token: str | None,
    profile: str | None,
    environ: Mapping[str, str],
) -> Settings:
    """Flags (the arguments) over the environment over the chosen profile."""
    path = config_path(environ)
    profiles = read_profiles(path)
    explicit_profile = profile or environ.get("REPORTS_PROFILE") or None
    name = explicit_profile or DEFAULT_PROFILE
    if name not in profiles and explicit_profile is not None:
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigError(f"no profile {name!r} in {path} (profiles there: {known})")
    chosen = profiles.get(name, {})
    sources: dict[str, str] = {}

    def pick(flag: str | None, env_name: str, key: str) -> str | None:
        for value, source in ((flag, "flag"), (environ.get(env_name), env_name), (chosen.get(key), f"profile {name}")):
            if value:
                sources[key] = source
                return value
        return None

    url = pick(api_url, "REPORTS_API_URL", "api_url")
    if url is not None:
        url = _checked_url(url, sources["api_url"])
    direct_token = pick(token, "REPORTS_TOKEN", "token")
    if direct_token is not None:
        _check_token(direct_token, _SOURCE_NAMES.get(sources["token"], sources["token"]))
    # A token given by flag or environment wins over the profile's token_command, as over its token.
    command = None if direct_token else chosen.get("token_command")
    return Settings(
        api_url=url, profile=name, sources=sources, _token=direct_token, _token_command=command, _config_file=path
    )


def _checked_url(url: str, source: str) -> str:
    def refuse(reason: str) -> ConfigError:
        return ConfigError(
            f"the API URL {url!r} (from {source}) cannot be used: {reason}",
            hint="give the API's base URL, e.g. http://127.0.0.1:3000 or https://reports.example.com",
        )

    if any(not character.isprintable() or character.isspace() for character in url):
        raise refuse("it contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise refuse(str(error)) from None
    if parts.scheme not in ("http", "https"):
        raise refuse("it must be an http:// or https:// URL")
    if not parts.hostname:
        raise refuse("it has no host")
    if port == 0:
        raise refuse("port 0 is not a port to connect to")
    if parts.query or parts.fragment or url.rstrip("/").endswith(("?", "#")):
        raise refuse("it must not have a query (?...) or a fragment (#...)")
    if parts.username is not None or parts.password is not None:
        raise refuse("it must not carry a user name or password; give the token with --token")
    return url.rstrip("/")


def _check_token(token: str, source: str) -> None:
    if not _BEARER_TOKEN.fullmatch(token):
        raise ConfigError(
            f"the token from {source} is not a bearer token: it must be visible ASCII characters, "
            "without spaces, line breaks or control characters",
            hint="check how the token was copied (a stray newline or quote) or what printed it",
        )


def _run_token_command(command: str, profile: str) -> str:
    try:
        # Through the shell: a token_command is written as one would type it ("./dev token ... | tr -d ...").
        completed = subprocess.run(
            command, shell=True, capture_output=True, timeout=TOKEN_COMMAND_TIMEOUT_SEC, check=False
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(
            f"the token_command of profile {profile!r} did not finish in {TOKEN_COMMAND_TIMEOUT_SEC} s"
        ) from None
    except OSError as error:
        raise ConfigError(f"the token_command of profile {profile!r} could not run: {error}") from None
    if completed.returncode != 0:
        stderr = completed.stderr.decode("utf-8", errors="replace")
        detail = stderr.strip().splitlines()[-1:] or [f"exit status {completed.returncode}"]
        raise ConfigError(
            f"the token_command of profile {profile!r} failed: {detail[0]}", hint=f"command: {shlex.quote(command)}"
        )
    # The newline commands end their output with (and blanks around the token) are not part of it.
    output = completed.stdout.strip(b" \t\r\n")
    if not output.strip():
        raise ConfigError(f"the token_command of profile {profile!r} printed no token on stdout")
    token = output.decode("latin-1")
    _check_token(token, f"the token_command of profile {profile!r}")
    return token
