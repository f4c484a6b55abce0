//! Migrations: the two folders, their pinned contents, and the repair of databases made by
//! migration files that were edited after they were applied (issue 14, item 18).
//!
//! sqlx stores each applied migration's SHA-384 and refuses to start when a file no longer
//! matches. Two files were edited after release: 0004 (a comment, both backends) and
//! PostgreSQL's 0005 (its rollup keys gained `INCLUDE` columns). A database made before those
//! edits is recognised by the old checksum, brought to the current schema by the same change
//! the edit made, and its stored checksum updated, in one transaction; any other mismatch still
//! stops the start, as sqlx intends. The test below pins every file's SHA-256, so no file can be
//! edited again without failing CI.

use sqlx::migrate::Migrator;
use sqlx::AnyPool;

use super::{Backend, StoreError};

pub(super) static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
pub(super) static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// A migration file as it was once applied: its version, its SHA-384 then, and the statements
/// that take a database made by it to what the current file makes.
struct Edited {
    backend: Backend,
    version: i64,
    old_sha384: &'static str,
    repair: &'static [&'static str],
}

const EDITED: &[Edited] = &[
    // 5928f39 -> 16e6fe8: the header comment named the contract's new place. No schema change.
    Edited {
        backend: Backend::Sqlite,
        version: 4,
        old_sha384: "e8eb55faac37b69928c513da4abeec0e1f308e76801f3f669a4809bb8969066a27d7ac39ffc1074c697917e59ba6364e",
        repair: &[],
    },
    Edited {
        backend: Backend::Postgres,
        version: 4,
        old_sha384: "abab3b78fa97e45cf30fdc56a862c218f3646ccf6fec83b23e6cf11b5d1eeab6369c9c6d0ff3f351836a85d61b9a85c2",
        repair: &[],
    },
    // 2b75b0f -> 9680cd7: the rollup keys carry their figures (index-only scans).
    Edited {
        backend: Backend::Postgres,
        version: 5,
        old_sha384: "3b2942a3829cddc9354d1bce8b7e3de86c52a1ab90ee52861f22499daa9cea3f6668c17bb267642f61b82c85dd845915",
        repair: &[
            "ALTER TABLE quality_daily DROP CONSTRAINT quality_daily_pkey, \
             ADD PRIMARY KEY (manager_id, day, criterion_id) INCLUDE (calls, rated, total, met)",
            "ALTER TABLE conversation_daily DROP CONSTRAINT conversation_daily_pkey, \
             ADD PRIMARY KEY (manager_id, day) \
             INCLUDE (calls, talk_n, talk_sum, questions_sum, mono_n, mono_sum)",
        ],
    },
];

fn migrator(backend: Backend) -> &'static Migrator {
    match backend {
        Backend::Sqlite => &SQLITE,
        Backend::Postgres => &POSTGRES,
    }
}

/// Repairs migrations applied from a since-edited file (see the module docs), then applies
/// the pending ones.
pub(super) async fn run(pool: &AnyPool, backend: Backend) -> Result<(), StoreError> {
    repair_edited(pool, backend).await?;
    migrator(backend).run(pool).await?;
    Ok(())
}

async fn repair_edited(pool: &AnyPool, backend: Backend) -> Result<(), StoreError> {
    let table = match backend {
        Backend::Sqlite => {
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
        }
        Backend::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
        }
    };
    let exists: i64 = sqlx::query_scalar(table).fetch_one(pool).await?;
    if exists == 0 {
        return Ok(());
    }
    for edit in EDITED.iter().filter(|e| e.backend == backend) {
        let stored: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT checksum FROM _sqlx_migrations WHERE version = $1")
                .bind(edit.version)
                .fetch_optional(pool)
                .await?;
        let Some(stored) = stored else { continue };
        if hex::encode(&stored) != edit.old_sha384 {
            continue;
        }
        let Some(current) = migrator(backend).iter().find(|m| m.version == edit.version) else {
            continue;
        };
        let mut tx = pool.begin().await?;
        for statement in edit.repair {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = $2")
            .bind(current.checksum.to_vec())
            .bind(edit.version)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(
            version = edit.version,
            "migration applied from an earlier edit of its file: brought up to date"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    /// Every migration file's SHA-256. A migration applied anywhere is never edited: add a new
    /// one. Only a new file may be added here.
    const PINNED: &[(&str, &str)] = &[
        (
            "postgres/0001_foundation.sql",
            "57d89c720c0ac9f34edc40a8703f8f76bfd1aa9fe3f2420b714225762266ea5c",
        ),
        (
            "postgres/0002_transcripts.sql",
            "9e4959e2e7e1677a5e57f37daaebfac978b334b4cdfc0d9ae035b8e480b8be48",
        ),
        (
            "postgres/0003_scores.sql",
            "9d02d9a971acd219aa06dc93fbc51bb2f18b90110dcc97c1540a0986138506e6",
        ),
        (
            "postgres/0004_crm.sql",
            "69ffa84216689e30259202b9cf2e8a7f8fe405b0f6cd4ca824f7dba852d1eed7",
        ),
        (
            "postgres/0005_rollups.sql",
            "1461dd617082e13c34a765aaea2e8a89ba60d1673a31c3af3f6e603588c5245e",
        ),
        (
            "postgres/0006_accounts.sql",
            "e158613dbcd412912bc475ef953e04c1451e56c82f70985130c1ec24788dea22",
        ),
        (
            "postgres/0007_search.sql",
            "f6f2b80bf8cd6e2d81c99690d06406a4edf5e5690d6619d1148f5b30cdae206e",
        ),
        (
            "postgres/0008_critical_calls.sql",
            "bc19593edc375f84645743e2abb6ef307722f09813fe05f13e67dd1fc80fdb2b",
        ),
        (
            "postgres/0009_crm_import_log.sql",
            "099ff8c77648db92ad243f19270ac0d941859d00f294fc016e3a0493994d5dbf",
        ),
        (
            "postgres/0010_dashboard_indexes.sql",
            "e5db22437257ad7f855fc493682c381ec265112d466a931be8e1acab95c3864b",
        ),
        (
            "postgres/0011_deal_quality.sql",
            "4c2f33f0bb4db91e3cac9e788a006d02e6967d91f739bf58148202a99263fc88",
        ),
        (
            "postgres/0012_rollup_stamp.sql",
            "454500488b163ec055eb9016481eacb73e2d2041ffa6d967503392b0f3e29439",
        ),
        (
            "postgres/0013_deal_quality_by_manager.sql",
            "3d4f54e58f3454930a0963dfd848f7f9e3879cef5fbf066feda094f7bbc9b4f0",
        ),
        (
            "postgres/0014_separated_voices.sql",
            "5847a7029348c4957f67be184ce699488d20d6d44eaed77bbe06edb14fe2bfdd",
        ),
        (
            "postgres/0015_first_speaker.sql",
            "b6bb6835e7e945de653e6255958a854edbd4d412b0c83aa225063b7226c18f8d",
        ),
        (
            "postgres/0016_dashboard_reads.sql",
            "52e22a0b156e76652c13f2977d1373a72edfa0afffca0345c6feb1c322930a2a",
        ),
        (
            "postgres/0017_crm_rollups.sql",
            "253876ea5c1b6489caf34ff1219613924c2b9df82a7a4f6d111b0bd5a7c86187",
        ),
        (
            "postgres/0018_attention_evidence.sql",
            "55f8dae2f47a9560549574cc6810a1d2c816f4a4b62ba3f588786e6dbd7a5f04",
        ),
        (
            "postgres/0019_deal_quality_total.sql",
            "e2d6578392677e2526fa90600c7a2c5c651ff3d94b9d1a704c4b67722eba91bb",
        ),
        (
            "postgres/0020_deals_by_manager_and_status.sql",
            "7f43b6b9563dc3bbc0fa3b9a91470fb63c98b7b95118856655b2bbfc24d83cd4",
        ),
        (
            "sqlite/0001_foundation.sql",
            "1629b48a4db730a01748b07ace3a94b2585722ae25fe5bd667f0ee818773bd88",
        ),
        (
            "sqlite/0002_transcripts.sql",
            "9e4959e2e7e1677a5e57f37daaebfac978b334b4cdfc0d9ae035b8e480b8be48",
        ),
        (
            "sqlite/0003_scores.sql",
            "5a697bbded3a3487567c83c9e90310262063e4d31644aa8e1612031fef794741",
        ),
        (
            "sqlite/0004_crm.sql",
            "0b49a40fb3bad513b6a292eda28567a0aa954bc7cd2bb0c8326a5dafc233c5a4",
        ),
        (
            "sqlite/0005_rollups.sql",
            "472ed9e0891e530051dd27e0907c195a5dc601c8bb60f50cf3870801d3022a38",
        ),
        (
            "sqlite/0006_accounts.sql",
            "e158613dbcd412912bc475ef953e04c1451e56c82f70985130c1ec24788dea22",
        ),
        (
            "sqlite/0007_search.sql",
            "4b4b844fb3235ad478a880077c1aee5bdc283890c25d53e8bd098084ad0b3697",
        ),
        (
            "sqlite/0008_critical_calls.sql",
            "bc19593edc375f84645743e2abb6ef307722f09813fe05f13e67dd1fc80fdb2b",
        ),
        (
            "sqlite/0009_crm_import_log.sql",
            "099ff8c77648db92ad243f19270ac0d941859d00f294fc016e3a0493994d5dbf",
        ),
        (
            "sqlite/0010_dashboard_indexes.sql",
            "e5db22437257ad7f855fc493682c381ec265112d466a931be8e1acab95c3864b",
        ),
        (
            "sqlite/0011_deal_quality.sql",
            "4c2f33f0bb4db91e3cac9e788a006d02e6967d91f739bf58148202a99263fc88",
        ),
        (
            "sqlite/0012_rollup_stamp.sql",
            "454500488b163ec055eb9016481eacb73e2d2041ffa6d967503392b0f3e29439",
        ),
        (
            "sqlite/0013_deal_quality_by_manager.sql",
            "3d4f54e58f3454930a0963dfd848f7f9e3879cef5fbf066feda094f7bbc9b4f0",
        ),
        (
            "sqlite/0014_separated_voices.sql",
            "c9d77ae8acf8e69ee9f36dab68e1583c36c091b62d250df84441f6eee2d5b826",
        ),
        (
            "sqlite/0015_first_speaker.sql",
            "b6bb6835e7e945de653e6255958a854edbd4d412b0c83aa225063b7226c18f8d",
        ),
        (
            "sqlite/0016_dashboard_reads.sql",
            "52e22a0b156e76652c13f2977d1373a72edfa0afffca0345c6feb1c322930a2a",
        ),
        (
            "sqlite/0017_crm_rollups.sql",
            "c6e3132529e3b1219ec57e0ee31e99b7b56d8cbf920d087d2074d9d68161cc75",
        ),
        (
            "sqlite/0018_attention_evidence.sql",
            "55f8dae2f47a9560549574cc6810a1d2c816f4a4b62ba3f588786e6dbd7a5f04",
        ),
        (
            "sqlite/0019_deal_quality_total.sql",
            "7d0b6c9dccc9887b55862534bead744a25b9272f8ae2fd8c87c134c6502d3ed9",
        ),
        (
            "sqlite/0020_deals_by_manager_and_status.sql",
            "6cfe0a122b74c21914550be087a037d155977657cfce014fd7e120fee5f17d65",
        ),
    ];

    #[test]
    fn no_applied_migration_file_is_ever_edited() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut found = Vec::new();
        for backend in ["postgres", "sqlite"] {
            for entry in std::fs::read_dir(root.join(backend)).expect("migrations folder") {
                let path = entry.expect("entry").path();
                if path.extension().is_some_and(|e| e == "sql") {
                    let name = format!(
                        "{backend}/{}",
                        path.file_name().expect("name").to_string_lossy()
                    );
                    let sha = hex::encode(Sha256::digest(std::fs::read(&path).expect("read")));
                    found.push((name, sha));
                }
            }
        }
        found.sort();
        for (name, sha) in &found {
            match PINNED.iter().find(|(n, _)| n == name) {
                Some((_, pinned)) => assert_eq!(
                    sha, pinned,
                    "{name} was edited after it was committed: add a new migration instead"
                ),
                None => panic!(
                    "{name} is new: pin its SHA-256 ({sha}) here in the same commit that adds it"
                ),
            }
        }
        assert_eq!(
            found.len(),
            PINNED.len(),
            "a pinned migration file is missing"
        );
    }
}
