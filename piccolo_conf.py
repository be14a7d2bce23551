"""Piccolo's configuration: the engine (from the settings) and the app registry, nothing else."""

from __future__ import annotations

from piccolo.conf.apps import AppRegistry

from app.platform.database import engine_from_url
from app.platform.settings import load_settings

DB = engine_from_url(load_settings().database_url)

APP_REGISTRY = AppRegistry(apps=["models.piccolo_app"])
