from __future__ import annotations

import pytest

from backend.settings import SettingsError, load_settings


def test_defaults_need_nothing():
    settings = load_settings({})
    assert settings.database_url is None  # `celltrail up` then embeds PostgreSQL
    assert settings.mqtt_url is None
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.base_url == "http://127.0.0.1:8000"


def test_values_come_from_celltrail_variables():
    settings = load_settings(
        {
            "CELLTRAIL_PORT": "9000",
            "CELLTRAIL_DATABASE_URL": "postgresql://db/x",
            "CELLTRAIL_LOG_FORMAT": "json",
            "OTHER_PORT": "1",
        }
    )
    assert settings.port == 9000
    assert settings.database_url == "postgresql://db/x"
    assert settings.log_format == "json"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CELLTRAIL_PORT": "eighty"}, "CELLTRAIL_PORT"),
        ({"CELLTRAIL_PORT": "70000"}, "CELLTRAIL_PORT"),
        ({"CELLTRAIL_LOG_FORMAT": "xml"}, "CELLTRAIL_LOG_FORMAT"),
        ({"CELLTRAIL_DATABASE_URL": "mysql://x"}, "CELLTRAIL_DATABASE_URL must start with postgresql://"),
        ({"CELLTRAIL_MQTT_URL": "http://x"}, "CELLTRAIL_MQTT_URL"),
        (
            {"CELLTRAIL_DATABASE_URL": "postgresql://a@db/x", "CELLTRAIL_MIGRATION_DATABASE_URL": "x://y"},
            "CELLTRAIL_MIGRATION_DATABASE_URL must start with postgresql://",
        ),
        ({"CELLTRAIL_MIGRATION_DATABASE_URL": "postgresql://o@db/x"}, "without CELLTRAIL_DATABASE_URL"),
        ({"CELLTRAIL_DB_POOL_MIN": "20", "CELLTRAIL_DB_POOL_MAX": "5"}, "must not exceed"),
    ],
)
def test_wrong_values_name_the_variable(env, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(env)


def test_migrations_run_as_the_owner_url_when_one_is_given():
    alone = load_settings({"CELLTRAIL_DATABASE_URL": "postgresql://app@db/x"})
    assert alone.owner_database_url == "postgresql://app@db/x"  # one URL: today's behaviour
    both = load_settings(
        {
            "CELLTRAIL_DATABASE_URL": "postgresql://app@db/x",
            "CELLTRAIL_MIGRATION_DATABASE_URL": "postgresql://o@db/x",
        }
    )
    assert (both.database_url, both.owner_database_url) == ("postgresql://app@db/x", "postgresql://o@db/x")


def test_empty_values_mean_unset():
    assert load_settings({"CELLTRAIL_DATABASE_URL": ""}).database_url is None
