"""Where the command line finds the API and its token: flags over the environment over a profile of the
config file, and the profile chosen by --profile, REPORTS_PROFILE or "default"."""

from __future__ import annotations

from pathlib import Path

import pytest

from report_client.errors import ConfigError
from report_client.settings import config_path, resolve

CONFIG = """
[profiles.default]
api_url = "http://default.example:3000"
token = "default-token"

[profiles.staging]
api_url = "https://staging.example/"
token = "staging-token"

[profiles.local]
api_url = "http://127.0.0.1:3000"
token_command = "echo '  local-token  '"
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    return path


def settings_for(config: Path, *, api_url=None, token=None, profile=None, **environment: str):
    return resolve(
        api_url=api_url, token=token, profile=profile, environ={"REPORTS_CONFIG": str(config), **environment}
    )


def test_without_flags_or_environment_the_default_profile_is_used(config):
    settings = settings_for(config)

    assert (settings.profile, settings.api_url, settings.token()) == (
        "default",
        "http://default.example:3000",
        "default-token",
    )


def test_the_environment_wins_over_the_profile_and_flags_win_over_both(config):
    environment = {"REPORTS_API_URL": "http://env.example", "REPORTS_TOKEN": "env-token"}

    from_env = settings_for(config, **environment)
    from_flags = settings_for(config, api_url="http://flag.example", token="flag-token", **environment)

    assert (from_env.api_url, from_env.token()) == ("http://env.example", "env-token")
    assert (from_flags.api_url, from_flags.token()) == ("http://flag.example", "flag-token")
    assert from_flags.sources == {"api_url": "flag", "token": "flag"}


def test_each_value_falls_back_on_its_own(config):
    # Only the token from the environment: the URL still comes from the profile.
    settings = settings_for(config, REPORTS_TOKEN="env-token")

    assert (settings.api_url, settings.token()) == ("http://default.example:3000", "env-token")
    assert settings.sources == {"api_url": "profile default", "token": "REPORTS_TOKEN"}


def test_a_profile_is_chosen_by_flag_over_the_environment(config):
    by_env = settings_for(config, REPORTS_PROFILE="staging")
    by_flag = settings_for(config, profile="local", REPORTS_PROFILE="staging")

    # The trailing slash is dropped: paths are appended to the base URL.
    assert (by_env.profile, by_env.api_url, by_env.token()) == ("staging", "https://staging.example", "staging-token")
    assert (by_flag.profile, by_flag.api_url) == ("local", "http://127.0.0.1:3000")


def test_token_command_prints_the_token_and_runs_only_when_a_token_is_needed(config, tmp_path):
    marker = tmp_path / "ran"
    config.write_text(f'[profiles.default]\napi_url = "http://x.example"\ntoken_command = "touch {marker}; echo tok"\n')

    overridden = settings_for(config, REPORTS_TOKEN="env-token")
    assert overridden.token() == "env-token"
    assert not marker.exists()

    assert settings_for(config).token() == "tok"
    assert marker.exists()


def test_token_command_output_is_stripped(config):
    assert settings_for(config, profile="local").token() == "local-token"


def test_a_failing_token_command_is_a_config_error_with_its_message(config):
    config.write_text('[profiles.default]\ntoken_command = "echo no key here >&2; exit 3"\n')

    with pytest.raises(ConfigError, match="token_command of profile 'default' failed: no key here"):
        settings_for(config).token()


def test_an_unknown_profile_named_explicitly_is_an_error(config):
    with pytest.raises(ConfigError, match="no profile 'prod' .*profiles there: default, local, staging"):
        settings_for(config, profile="prod")
    with pytest.raises(ConfigError, match="no profile 'prod'"):
        settings_for(config, REPORTS_PROFILE="prod")


def test_no_config_file_is_fine_until_a_value_is_missing(tmp_path):
    settings = settings_for(tmp_path / "absent.toml", REPORTS_API_URL="http://127.0.0.1:3000")

    assert settings.api_url == "http://127.0.0.1:3000"
    with pytest.raises(ConfigError, match="no token: give --token, set REPORTS_TOKEN"):
        settings.token()
    with pytest.raises(ConfigError, match="no API URL"):
        settings_for(tmp_path / "absent.toml").require_api_url()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[profiles.default\n", "not valid TOML"),
        ('[profiles.default]\napi_url = "http://x"\ntokn = "typo"\n', "unknown keys tokn"),
        ('[profiles.default]\ntoken = "a"\ntoken_command = "b"\n', "both token and token_command"),
        ("[profiles.default]\napi_url = 3000\n", "must be a string"),
        ('profiles = "none"\n', "profiles must be tables"),
    ],
)
def test_a_bad_config_file_is_a_config_error(config, text, message):
    config.write_text(text)

    with pytest.raises(ConfigError, match=message):
        settings_for(config)


def test_an_api_url_that_is_not_http_is_refused(config):
    with pytest.raises(ConfigError, match="must be an http:// or https:// URL"):
        settings_for(config, api_url="127.0.0.1:3000")


def test_the_config_file_is_found_by_reports_config_or_under_home():
    assert config_path({"REPORTS_CONFIG": "/etc/reports.toml", "HOME": "/home/op"}) == Path("/etc/reports.toml")
    assert config_path({"HOME": "/home/op"}) == Path("/home/op/.config/reports/config.toml")
    assert config_path({"HOME": "/home/op", "XDG_CONFIG_HOME": "/xdg"}) == Path("/xdg/reports/config.toml")
