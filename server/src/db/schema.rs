//! Migrations, applied in order and recorded in `PRAGMA user_version`.

use rusqlite::Connection;

use super::error::DbResult;

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);
CREATE TABLE tokens (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    hash        BLOB NOT NULL UNIQUE,
    label       TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE TABLE projects (
    id                      INTEGER PRIMARY KEY,
    name                    TEXT NOT NULL UNIQUE,
    owner_id                INTEGER NOT NULL REFERENCES users(id),
    git_url                 TEXT,
    git_ref                 TEXT,
    build                   TEXT NOT NULL DEFAULT '{}',
    env                     TEXT NOT NULL DEFAULT '{}',
    production_deployment   TEXT,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL
);
CREATE TABLE deployments (
    id              TEXT PRIMARY KEY,
    project_id      INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    status          TEXT NOT NULL,
    phase           TEXT NOT NULL,
    progress_done   INTEGER,
    progress_total  INTEGER,
    reason          TEXT,
    source_kind     TEXT NOT NULL,
    git_url         TEXT,
    git_ref         TEXT,
    promote         INTEGER NOT NULL,
    job_token_hash  BLOB,
    builder_lines   INTEGER NOT NULL DEFAULT 0,
    next_seq        INTEGER NOT NULL DEFAULT 1,
    created_at      INTEGER NOT NULL,
    building_at     INTEGER,
    uploading_at    INTEGER,
    finished_at     INTEGER
);
CREATE INDEX deployments_by_project ON deployments(project_id, created_at);
CREATE INDEX deployments_unfinished ON deployments(status) WHERE status IN ('queued', 'building', 'uploading');
CREATE TABLE log_lines (
    deployment_id   TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    ts              INTEGER NOT NULL,
    stream          TEXT NOT NULL,
    text            TEXT NOT NULL,
    PRIMARY KEY (deployment_id, seq)
) WITHOUT ROWID;
"#,
    r#"
ALTER TABLE deployments ADD COLUMN log_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deployments ADD COLUMN log_cut INTEGER NOT NULL DEFAULT 0;
"#,
    r#"
ALTER TABLE deployments ADD COLUMN runner_ref TEXT;
"#,
    r#"
ALTER TABLE projects ADD COLUMN auto_promote INTEGER NOT NULL DEFAULT 1;
CREATE TABLE alias_events (
    id              INTEGER PRIMARY KEY,
    project_id      INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    deployment_id   TEXT NOT NULL,
    previous        TEXT,
    action          TEXT NOT NULL,
    actor           TEXT NOT NULL,
    at              INTEGER NOT NULL
);
CREATE INDEX alias_events_by_project ON alias_events(project_id, id);
INSERT INTO alias_events (project_id, deployment_id, previous, action, actor, at)
    SELECT id, production_deployment, NULL, 'deploy', 'migration', updated_at
    FROM projects WHERE production_deployment IS NOT NULL;
CREATE TABLE domains (
    host        TEXT PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL
);
"#,
    // Teams: admins, project members with roles, tokens that expire, are revoked and are
    // narrowed to projects and a role; variables per target, sealed (moved out of
    // `projects.env` by `SqliteStore::seal_plain_env`, which needs the key); names held after
    // a project is deleted; idempotency keys of deploys.
    r#"
ALTER TABLE users ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;
UPDATE users SET admin = 1 WHERE name = 'admin';
ALTER TABLE tokens ADD COLUMN prefix TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'full';
ALTER TABLE tokens ADD COLUMN scoped INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN expires_at INTEGER;
ALTER TABLE tokens ADD COLUMN last_used_at INTEGER;
ALTER TABLE tokens ADD COLUMN revoked_at INTEGER;
UPDATE tokens SET prefix = 'smk_';
CREATE TABLE token_projects (
    token_id    INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    PRIMARY KEY (token_id, project_id)
) WITHOUT ROWID;
CREATE TABLE members (
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (project_id, user_id)
) WITHOUT ROWID;
CREATE INDEX members_by_user ON members(user_id);
INSERT INTO members (project_id, user_id, role, created_at)
    SELECT id, owner_id, 'owner', created_at FROM projects;
CREATE TABLE env_vars (
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    target      TEXT NOT NULL,
    sealed      BLOB NOT NULL,
    sensitive   INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    updated_by  INTEGER REFERENCES users(id) ON DELETE SET NULL,
    PRIMARY KEY (project_id, key, target)
) WITHOUT ROWID;
CREATE TABLE name_holds (
    name        TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    user_id     INTEGER REFERENCES users(id) ON DELETE SET NULL,
    until       INTEGER NOT NULL
);
CREATE TABLE idempotency_keys (
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    key             TEXT NOT NULL,
    request_hash    BLOB NOT NULL,
    deployment_id   TEXT,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
) WITHOUT ROWID;
"#,
    // Who started a deployment: builds take turns by it, and queues are capped by it.
    r#"
ALTER TABLE deployments ADD COLUMN created_by INTEGER REFERENCES users(id) ON DELETE SET NULL;
CREATE INDEX deployments_queued_by ON deployments(created_by) WHERE status = 'queued';
"#,
    // A deployment asked to build without restoring the build cache.
    r#"
ALTER TABLE deployments ADD COLUMN no_cache INTEGER NOT NULL DEFAULT 0;
"#,
    // Files stored by content: the blobs each project holds, the ones each deployment names,
    // and how long a project keeps its deployments.
    r#"
CREATE TABLE blobs (
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    sha256      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    br          INTEGER,
    gzip        INTEGER,
    pack        TEXT,
    pack_offset INTEGER,
    stored_at   INTEGER NOT NULL,
    PRIMARY KEY (project_id, sha256)
) WITHOUT ROWID;
CREATE TABLE deployment_blobs (
    deployment_id   TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    sha256          TEXT NOT NULL,
    PRIMARY KEY (deployment_id, sha256)
) WITHOUT ROWID;
CREATE INDEX deployment_blobs_by_sha ON deployment_blobs(sha256);
ALTER TABLE projects ADD COLUMN retention TEXT;
"#,
    // Claims are read by deployment only: an index by digest made every handshake rewrite
    // pages all over it (its digests are random), and only sweeps, which read a project's
    // claims whole, looked digests up that way.
    r#"
DROP INDEX IF EXISTS deployment_blobs_by_sha;
"#,
    // The commit a deployment was built from, as its builder found it.
    r#"
ALTER TABLE deployments ADD COLUMN commit_sha TEXT;
ALTER TABLE deployments ADD COLUMN commit_branch TEXT;
ALTER TABLE deployments ADD COLUMN commit_message TEXT;
ALTER TABLE deployments ADD COLUMN commit_author TEXT;
"#,
    // The exact commit a deployment was asked to build.
    r#"
ALTER TABLE deployments ADD COLUMN git_commit TEXT;
"#,
    // Projects connected to their repository: the webhook's sealed secret, the deliveries it
    // received (a retry of one is found here), and the stable preview hosts of branches and
    // pull requests, with the deployment each serves.
    r#"
CREATE TABLE git_connections (
    project_id          INTEGER PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
    provider            TEXT NOT NULL,
    production_branch   TEXT NOT NULL,
    secret              BLOB NOT NULL,
    connected_by        INTEGER REFERENCES users(id) ON DELETE SET NULL,
    connected_at        INTEGER NOT NULL
);
CREATE TABLE git_deliveries (
    project_id      INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    delivery_id     TEXT NOT NULL,
    event           TEXT NOT NULL,
    outcome         TEXT NOT NULL,
    deployment_id   TEXT,
    received_at     INTEGER NOT NULL,
    PRIMARY KEY (project_id, delivery_id)
);
CREATE TABLE preview_labels (
    project_id      INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    label           TEXT NOT NULL,
    kind            TEXT NOT NULL,
    name            TEXT NOT NULL,
    deployment_id   TEXT,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (project_id, label),
    UNIQUE (project_id, kind, name)
);
ALTER TABLE deployments ADD COLUMN preview_label TEXT;
"#,
    // Deploy hooks: secret URLs that build a branch of a project when POSTed. Only the
    // SHA-256 of each secret is kept.
    r#"
CREATE TABLE deploy_hooks (
    id              INTEGER PRIMARY KEY,
    project_id      INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    branch          TEXT,
    secret_hash     BLOB NOT NULL UNIQUE,
    created_by      INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER
);
"#,
    // Outgoing notifications: who subscribed to which events of a project (the signing secret
    // sealed), and every delivery, kept until it succeeded or ran out of attempts.
    r#"
CREATE TABLE notify_subscriptions (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    url         TEXT NOT NULL,
    events      TEXT NOT NULL,
    secret      BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE TABLE notify_deliveries (
    id              INTEGER PRIMARY KEY,
    subscription_id INTEGER NOT NULL REFERENCES notify_subscriptions(id) ON DELETE CASCADE,
    event           TEXT NOT NULL,
    deployment_id   TEXT,
    body            TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_at         INTEGER NOT NULL,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL
);
CREATE INDEX notify_deliveries_due ON notify_deliveries(state, next_at);
"#,
    // Commit statuses: the forge token (sealed) and API of a connected project, and each
    // status to set on the forge, kept until it was set or ran out of attempts.
    r#"
ALTER TABLE git_connections ADD COLUMN status_token BLOB;
ALTER TABLE git_connections ADD COLUMN api_url TEXT;
CREATE TABLE commit_statuses (
    id              INTEGER PRIMARY KEY,
    project_id      INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    deployment_id   TEXT NOT NULL,
    sha             TEXT NOT NULL,
    state           TEXT NOT NULL,
    target_url      TEXT NOT NULL,
    description     TEXT NOT NULL,
    done            INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_at         INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL
);
CREATE INDEX commit_statuses_due ON commit_statuses(done, next_at);
"#,
    // Polling, for servers a forge cannot reach: how often a connected project's branches are
    // listed, when they last were, and the head each branch had then.
    r#"
ALTER TABLE git_connections ADD COLUMN poll_ms INTEGER;
ALTER TABLE git_connections ADD COLUMN polled_at INTEGER;
CREATE TABLE polled_heads (
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    branch      TEXT NOT NULL,
    sha         TEXT NOT NULL,
    PRIMARY KEY (project_id, branch)
) WITHOUT ROWID;
"#,
    // A private repository's deploy credential, sealed.
    r#"
ALTER TABLE git_connections ADD COLUMN deploy_token BLOB;
"#,
];

pub fn migrate(conn: &mut Connection) -> DbResult<()> {
    let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}
