//! `dynamoctl styles export` and `dynamoctl styles apply`: the styles as a
//! file (`styles.toml`), for GitOps and a Kubernetes ConfigMap. Writes go
//! through the store, whose trigger tells every consumer within seconds.

mod diff;
mod file;

use dynamo_runtime::{DatabaseSettings, Env};
use dynamo_store::{Store, Written};
use std::io::Read;

async fn store() -> anyhow::Result<Store> {
    let env = Env::from_process()?;
    let pool = dynamo_store::connect(&DatabaseSettings::from_env(&env)?).await?;
    Ok(Store::new(pool))
}

/// Prints every style as `styles.toml`, by id.
pub async fn export() -> anyhow::Result<()> {
    let styles = store().await?.styles().await?;
    let definitions: Vec<_> = styles.into_iter().map(|s| s.definition).collect();
    print!("{}", file::render(&definitions)?);
    Ok(())
}

/// Creates or updates each style of `path` (`-`: stdin) in one transaction,
/// printing what changes; with `dry_run` only prints it.
pub async fn apply(path: &str, dry_run: bool, prune: bool) -> anyhow::Result<()> {
    let text = read(path)?;
    let styles = file::parse(&text).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(|e| format!("{path}: {e}")).collect();
        anyhow::anyhow!(
            "{} (nothing was written)\n{}",
            if lines.len() == 1 {
                "1 problem".to_owned()
            } else {
                format!("{} problems", lines.len())
            },
            lines.join("\n")
        )
    })?;
    if prune && styles.is_empty() {
        anyhow::bail!(
            "{path} has no styles: --prune would disable every style (nothing was written)"
        );
    }
    let store = store().await?;
    let plan = diff::Plan::new(&styles, &store.styles().await?);
    for line in plan.lines(prune) {
        println!("{line}");
    }
    let prunable = plan.absent.iter().filter(|(_, enabled)| *enabled).count();
    if plan.is_noop() && (!prune || prunable == 0) {
        println!("nothing to change: the database already has every style of {path}");
        return Ok(());
    }
    if dry_run {
        println!("dry run: nothing was written");
        return Ok(());
    }
    let (written, pruned) = store.apply_styles(&styles, prune).await?;
    let count = |kind: Written| written.iter().filter(|w| **w == kind).count();
    println!(
        "applied: {} created, {} updated, {} unchanged{}",
        count(Written::Created),
        count(Written::Updated),
        count(Written::Unchanged),
        if prune {
            format!(", {} disabled", pruned.len())
        } else {
            String::new()
        }
    );
    Ok(())
}

fn read(path: &str) -> anyhow::Result<String> {
    if path == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        Ok(text)
    } else {
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{path}: {e}"))
    }
}
