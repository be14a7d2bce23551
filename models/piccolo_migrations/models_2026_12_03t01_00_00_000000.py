"""Token revocations: ``POST /realtime/disconnect`` with ``revokeTokensIssuedBefore`` keeps its cut-off here,
so it survives restarts and holds on every host. One row per user; every process loads the table at
start-up (it holds only revoked users) and learns later changes through the control channel.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-03T01:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "token_revocations"

STATEMENTS = [
    """CREATE TABLE token_revocations (
        user_id VARCHAR(64) PRIMARY KEY,
        revoked_before TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL)""",
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="models", description=DESCRIPTION)

    async def apply() -> None:
        engine = engine_finder()
        assert engine is not None  # piccolo_conf always defines DB
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    manager.add_raw(apply)
    return manager
