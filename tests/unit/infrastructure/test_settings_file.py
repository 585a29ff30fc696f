"""Settings from defaults, ``icn.toml`` (or ``ICN_CONFIG``), ``ICN_*`` and flags, in that order."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from icn.infrastructure.passphrase import resolve_passphrase
from icn.infrastructure.settings import (
    REDACTED,
    ConfigError,
    Settings,
    load_settings,
    redact_url,
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ICN_* variable of the outer environment leaks into these tests."""
    for name in list(os.environ):
        if name.upper().startswith("ICN_"):
            monkeypatch.delenv(name)


def _write(folder: Path, text: str, name: str = "icn.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_without_a_file_every_value_is_the_default(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    assert settings.config_file is None
    assert settings.http_port == Settings().http_port == 8080
    assert settings.sources["http_port"] == "default"
    assert settings.sources["data_dir"] == "flag"
    assert settings.data_dir == tmp_path


def test_the_data_dirs_file_sets_values_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, 'http_port = 9001\ncheckpoint_every = 7\nserve = ["a", "b"]\n')
    monkeypatch.setenv("ICN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ICN_CHECKPOINT_EVERY", "11")
    settings = load_settings()
    assert settings.config_file == path
    assert settings.data_dir == tmp_path and settings.sources["data_dir"] == "env"
    assert (settings.http_port, settings.sources["http_port"]) == (9001, "file")
    assert (settings.checkpoint_every, settings.sources["checkpoint_every"]) == (11, "env")
    assert (settings.serve, settings.sources["serve"]) == (["a", "b"], "file")
    assert settings.sources["http_host"] == "default"


def test_a_flag_wins_over_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ICN_DATA_DIR", str(tmp_path / "from-env"))
    settings = load_settings(tmp_path / "from-flag")
    assert settings.data_dir == tmp_path / "from-flag"
    assert settings.sources["data_dir"] == "flag"


def test_icn_config_names_a_file_elsewhere_which_may_set_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The data dir's own icn.toml is not read when ICN_CONFIG names another file.
    _write(tmp_path / "data", "http_port = 1111\n")
    path = _write(tmp_path / "etc", 'data_dir = "../data"\nhttp_port = 2222\n', "node.toml")
    monkeypatch.setenv("ICN_CONFIG", str(path))
    settings = load_settings()
    assert settings.config_file == path
    assert settings.data_dir == tmp_path / "etc" / ".." / "data"
    assert settings.sources["data_dir"] == "file"
    assert settings.http_port == 2222


def test_icn_config_naming_no_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ICN_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match=r"ICN_CONFIG names .*missing\.toml"):
        load_settings()


def test_an_unknown_key_is_refused_with_the_file_and_key_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "http_port = 9001\nhttp_prot = 9002\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path)
    message = str(caught.value)
    assert str(path) in message
    assert "unknown key 'http_prot'" in message and "did you mean 'http_port'" in message


def test_a_table_is_not_a_setting(tmp_path: Path) -> None:
    _write(tmp_path, "[http]\nport = 9001\n")
    with pytest.raises(ConfigError, match="unknown key 'http'"):
        load_settings(tmp_path)


def test_the_data_dirs_own_file_may_not_move_the_data_dir(tmp_path: Path) -> None:
    _write(tmp_path, 'data_dir = "/elsewhere"\n')
    with pytest.raises(ConfigError, match="'data_dir' cannot be set in the data dir's own"):
        load_settings(tmp_path)


def test_a_file_that_is_not_toml_is_refused_naming_it(tmp_path: Path) -> None:
    path = _write(tmp_path, "http_port = = 1\n")
    with pytest.raises(ConfigError, match=f"{path}: not valid TOML"):
        load_settings(tmp_path)


def test_a_bad_value_in_the_file_names_the_file_and_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "http_port = 70000\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path)
    assert f"{path}: key 'http_port'" in str(caught.value)
    assert "65535" in str(caught.value)


def test_a_bad_value_in_the_environment_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, "checkpoint_seconds = 5\n")
    monkeypatch.setenv("ICN_CHECKPOINT_SECONDS", "soon")
    monkeypatch.setenv("ICN_STREAM_HEARTBEAT_S", "0")
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path)
    message = str(caught.value)
    assert "ICN_CHECKPOINT_SECONDS (environment)" in message
    assert "ICN_STREAM_HEARTBEAT_S (environment): Input should be greater than 0" in message
    assert "soon" not in message  # values are not echoed: a misplaced secret stays unsaid


def test_a_wrong_type_in_the_file_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, 'behind_tls = "perhaps"\n')
    with pytest.raises(ConfigError, match="key 'behind_tls'"):
        load_settings(tmp_path)


def test_environment_values_parse_as_they_always_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ICN_SERVE", "a, b c")
    monkeypatch.setenv("ICN_CORS_ORIGINS", '["https://a.example"]')
    monkeypatch.setenv("ICN_REPLICATION", "false")
    monkeypatch.setenv("ICN_URL", "http://127.0.0.1:1")  # a client's variable: not a setting
    settings = load_settings(tmp_path)
    assert settings.serve == ["a", "b", "c"]
    assert settings.cors_origins == ["https://a.example"]
    assert settings.replication is False


def test_secrets_and_url_passwords_are_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(
        tmp_path,
        'jwt_secret = "file-jwt-secret-of-at-least-32-bytes!!"\n'
        'database_url = "postgresql://icn:db-password-1@db:5432/icn"\n'
        'nats_url = "nats://icn-node:nats-pw-1@n1:4222,nats://icn-node:nats-pw-2@n2:4222"\n',
    )
    monkeypatch.setenv("ICN_PASSPHRASE", "env-passphrase-1")
    monkeypatch.setenv("ICN_NATS_PASSWORD", "nats-password-3")
    settings = load_settings(tmp_path)
    rows = {r["key"]: r for r in settings.rows()}
    shown = repr(rows) + repr(settings)
    for secret in (
        "file-jwt",
        "db-password-1",
        "nats-pw-1",
        "nats-pw-2",
        "env-passphrase-1",
        "nats-password-3",
    ):
        assert secret not in shown
    assert rows["jwt_secret"] == {
        "key": "jwt_secret",
        "env": "ICN_JWT_SECRET",
        "value": REDACTED,
        "source": "file",
    }
    assert rows["passphrase"]["value"] == REDACTED and rows["passphrase"]["source"] == "env"
    assert rows["database_url"]["value"] == "postgresql://icn:***@db:5432/icn"
    assert rows["nats_url"]["value"] == "nats://icn-node:***@n1:4222,nats://icn-node:***@n2:4222"
    assert rows["jwt_secret_file"]["value"] is None


def test_redact_url_leaves_urls_without_a_password_alone() -> None:
    assert redact_url("sqlite:////var/lib/icn/icn.db") == "sqlite:////var/lib/icn/icn.db"
    assert redact_url("postgresql://icn@db/icn") == "postgresql://icn@db/icn"
    assert redact_url("nats://a:b@h:1, nats://h2:2") == "nats://a:***@h:1, nats://h2:2"


def test_file_secrets_reach_the_code_that_reads_the_environment_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_file = tmp_path / "secrets" / "passphrase"
    secret_file.parent.mkdir(mode=0o700)
    secret_file.write_text("file passphrase\n")
    secret_file.chmod(0o600)
    _write(
        tmp_path,
        'passphrase_file = "secrets/passphrase"\n'  # relative to the file's folder
        'jwt_secret = "file-jwt-secret-of-at-least-32-bytes!!"\n'
        "stream_heartbeat_s = 0.5\n",
    )
    monkeypatch.setenv("ICN_JWT_SECRET", "env-jwt-secret-of-at-least-32-bytes!!!")
    settings = load_settings(tmp_path)
    assert settings.passphrase_file == secret_file
    settings.export_to_environ()
    assert os.environ["ICN_PASSPHRASE_FILE"] == str(secret_file)
    assert resolve_passphrase() == "file passphrase"
    assert os.environ["ICN_JWT_SECRET"] == "env-jwt-secret-of-at-least-32-bytes!!!"
    assert os.environ["ICN_STREAM_HEARTBEAT_S"] == "0.5"
    assert "ICN_HTTP_PORT" not in os.environ  # only what is read where used is handed over


def test_telemetry_variables_are_validated_as_the_telemetry_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ICN_TELEMETRY", " OFF ")
    monkeypatch.setenv("ICN_LOG_FORMAT", "")
    settings = load_settings(tmp_path)
    assert (settings.telemetry, settings.log_format) == ("off", None)
    monkeypatch.setenv("ICN_TELEMETRY", "")  # empty: on, as telemetry.enabled() reads it
    assert load_settings(tmp_path).telemetry == "on"
    monkeypatch.setenv("ICN_TRACE_SAMPLE", " ")
    assert load_settings(tmp_path).trace_sample is None  # blank: the default, as before
    monkeypatch.setenv("ICN_TRACE_SAMPLE", "0.25")
    assert load_settings(tmp_path).trace_sample == 0.25
    monkeypatch.setenv("ICN_METRICS_ADDR", "9100")
    with pytest.raises(ConfigError, match="ICN_METRICS_ADDR"):
        load_settings(tmp_path)
