-- The CRM import page (issue 13) shows when each file was last imported and what it did. One
-- row per imported file, by the command line or the API, committed or refused (strict mode).
CREATE TABLE crm_import_log (
    entity      TEXT NOT NULL,
    file        TEXT NOT NULL,
    imported_at BIGINT NOT NULL,
    rows_read   BIGINT NOT NULL,
    inserted    BIGINT NOT NULL,
    updated     BIGINT NOT NULL,
    unchanged   BIGINT NOT NULL,
    rejected    BIGINT NOT NULL,
    committed   INTEGER NOT NULL
);
CREATE INDEX crm_import_log_entity ON crm_import_log (entity, imported_at);
