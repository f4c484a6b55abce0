// sqlx::migrate! embeds the migration files at compile time, but cargo only knows to rebuild
// when a Rust source changes: a new migration file would otherwise be missing from the binary
// until something else is edited (a local build then fails on the old schema's checks).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
