//! `notes`: a small application that upgrades its own SQLite database at start-up
//! through the Retort library, with its revision components inside the binary.
//!
//! `notes [DB_PATH]` (default `notes.db`): brings the database to head, then says what
//! it applied. A database that a newer build has taken further is refused, untouched.

use std::process::ExitCode;

include!(concat!(env!("OUT_DIR"), "/components.rs"));

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let path = std::env::args().nth(1).unwrap_or_else(|| "notes.db".into());
    match start(&path).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("notes: cannot start: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What the application does before serving anything: migrate its database.
async fn start(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    if COMPONENTS.is_empty() {
        return Err("this binary was built without its revisions: run `retort build` in examples/embedded, then build it again".into());
    }
    let project = retort::Project::from_components(COMPONENTS.iter().copied())?;
    let db = project.connect(&format!("sqlite:{path}")).await?;
    let result = db.upgrade("head", &retort::RunOptions::default()).await;
    let current = db.current().await;
    db.close().await;
    let applied = result?;
    for step in &applied {
        println!(
            "applied {} ({}) in {} ms",
            step.revision, step.message, step.millis
        );
    }
    if applied.is_empty() {
        println!("database up to date at {}", current?.join(", "));
    }
    Ok(())
}
