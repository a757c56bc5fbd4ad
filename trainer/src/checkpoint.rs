//! The run folder and its checkpoints.
//!
//! A run folder holds `config.json`, `stats.jsonl`, `samples/` and `checkpoints/step-NNNNNNNNN/`.
//! A checkpoint is written into a hidden temporary folder, every file flushed to disk, and then
//! renamed into place in one step, so a kill at any moment leaves the previous checkpoint as the
//! newest complete one. Only complete checkpoints have a `step-` name.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

/// Files of one checkpoint.
pub const GENERATOR: &str = "generator.bpk";
/// EMA generator weights.
pub const GENERATOR_EMA: &str = "generator_ema.bpk";
/// Discriminator weights.
pub const DISCRIMINATOR: &str = "discriminator.bpk";
/// Generator optimiser state.
pub const OPTIMIZER_GENERATOR: &str = "optimizer_generator.bpk";
/// Discriminator optimiser state.
pub const OPTIMIZER_DISCRIMINATOR: &str = "optimizer_discriminator.bpk";
/// Counters.
pub const STATE: &str = "state.json";

/// Counters saved with each checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Training steps done (one discriminator and one generator update each).
    pub step: u64,
    /// Real images shown to the discriminator.
    pub images: u64,
    /// Wall-clock seconds spent training, summed over sessions.
    pub training_seconds: f64,
    /// The run's seed. All randomness of step `k` is drawn from streams derived from
    /// `(seed, k)`, so `(seed, step)` is the whole random-number state.
    pub seed: u64,
    /// Where the last session ran.
    pub device: String,
}

/// The checkpoints folder of a run.
pub fn folder(run: &Path) -> PathBuf {
    run.join("checkpoints")
}

/// Complete checkpoints of a run, oldest first.
pub fn list(run: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let dir = folder(run);
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(step) = name.strip_prefix("step-").and_then(|s| s.parse().ok()) {
            found.push((step, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// The newest complete checkpoint.
pub fn latest(run: &Path) -> Result<Option<(u64, PathBuf)>> {
    Ok(list(run)?.pop())
}

/// Writes a checkpoint: `write_files` fills the given temporary folder, which is then made
/// durable and renamed to `step-NNNNNNNNN`. Keeps the newest `keep` checkpoints.
pub fn write(
    run: &Path,
    state: &State,
    keep: usize,
    write_files: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    let dir = folder(run);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = format!("step-{:09}", state.step);
    let temporary = dir.join(format!(".tmp-{name}"));
    if temporary.exists() {
        fs::remove_dir_all(&temporary)
            .with_context(|| format!("cannot clear {}", temporary.display()))?;
    }
    fs::create_dir(&temporary).with_context(|| format!("cannot create {}", temporary.display()))?;

    let result = write_files(&temporary).and_then(|()| {
        let json = serde_json::to_string_pretty(state)?;
        fs::write(temporary.join(STATE), json)
            .with_context(|| format!("cannot write {}", temporary.join(STATE).display()))?;
        sync_folder_files(&temporary)
    });
    if let Err(e) = result {
        // Leave no half-written checkpoint behind; the previous one stays the newest.
        let _ = fs::remove_dir_all(&temporary);
        return Err(e.context(format!("checkpoint at step {} not written", state.step)));
    }

    let target = dir.join(&name);
    if target.exists() {
        fs::remove_dir_all(&target)?;
    }
    fs::rename(&temporary, &target)
        .with_context(|| format!("cannot move checkpoint into {}", target.display()))?;
    sync(&dir)?;

    // Old checkpoints are renamed out of the way before they are deleted, so a kill during the
    // deletion leaves only a hidden folder, never a half-deleted `step-` one.
    let all = list(run)?;
    for (_, old) in all.iter().take(all.len().saturating_sub(keep.max(1))) {
        let name = old.file_name().map(|n| n.to_string_lossy().into_owned());
        let doomed = dir.join(format!(".old-{}", name.unwrap_or_default()));
        fs::rename(old, &doomed).with_context(|| format!("cannot retire {}", old.display()))?;
        fs::remove_dir_all(&doomed)
            .with_context(|| format!("cannot remove {}", doomed.display()))?;
    }
    remove_leftovers(&dir)?;
    Ok(target)
}

/// Deletes retired checkpoints that a killed run did not finish deleting.
fn remove_leftovers(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(".old-"))
        {
            fs::remove_dir_all(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
}

/// Reads a checkpoint's counters.
pub fn read_state(checkpoint: &Path) -> Result<State> {
    let path = checkpoint.join(STATE);
    let text =
        fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
}

fn sync_folder_files(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        sync(&entry?.path())?;
    }
    sync(dir)
}

fn sync(path: &Path) -> Result<()> {
    let file = fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("cannot flush {} to disk", path.display()))
}

/// The file in a run folder that the training process holds locked.
pub const LOCK: &str = "lock";

/// Locks `run` for one training process: a second `catgan train` on the same folder (a resume,
/// or a fresh run with `--force`) would otherwise write checkpoints and stats over the first
/// one's. The operating system releases the lock when the returned file is dropped or the
/// process ends, however it ends, so a killed run never leaves a stale lock behind.
pub fn lock(run: &Path) -> Result<fs::File> {
    use std::io::{Read, Seek, Write};
    let path = run.join(LOCK);
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => String::new(),
                pid => format!(" (process {pid})"),
            };
            bail!(
                "{} is being trained by another catgan process{holder}; stop that one first, \
                 or train in another folder",
                run.display()
            );
        }
        Err(fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(file)
}

/// Refuses to start a fresh run in a folder that already holds one, unless `force`, which
/// clears the run's own files (and nothing else). Returns the folder's lock (see [`lock`]),
/// taken before anything is cleared.
pub fn prepare_fresh(run: &Path, force: bool) -> Result<fs::File> {
    if run.exists() {
        let used = fs::read_dir(run)
            .with_context(|| format!("cannot read {}", run.display()))?
            .next()
            .is_some();
        if used && !force {
            bail!(
                "{} is not empty; continue it with --resume {0}, or pass --force to start over \
                 there",
                run.display()
            );
        }
    }
    fs::create_dir_all(run)
        .with_context(|| format!("cannot create run folder {}", run.display()))?;
    let locked = lock(run)?;
    for name in ["config.json", "stats.jsonl"] {
        let _ = fs::remove_file(run.join(name));
    }
    for name in ["samples", "checkpoints"] {
        let path = run.join(name);
        if path.exists() {
            fs::remove_dir_all(&path)
                .with_context(|| format!("cannot clear {}", path.display()))?;
        }
    }
    fs::create_dir_all(run.join("samples"))
        .with_context(|| format!("cannot create run folder {}", run.display()))?;
    Ok(locked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(step: u64) -> State {
        State {
            step,
            images: step * 4,
            training_seconds: 1.0,
            seed: 0,
            device: "cpu".into(),
        }
    }

    #[test]
    fn newest_complete_checkpoint_wins_and_old_ones_are_pruned() {
        let run = tempfile::tempdir().unwrap();
        for step in [1, 2, 3] {
            write(run.path(), &state(step), 2, |dir| {
                fs::write(dir.join("w"), [step as u8])?;
                Ok(())
            })
            .unwrap();
        }
        let all = list(run.path()).unwrap();
        assert_eq!(all.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![2, 3]);
        let (step, path) = latest(run.path()).unwrap().unwrap();
        assert_eq!(step, 3);
        assert_eq!(read_state(&path).unwrap(), state(3));
    }

    #[test]
    fn a_failed_write_leaves_the_previous_checkpoint_newest() {
        let run = tempfile::tempdir().unwrap();
        write(run.path(), &state(1), 2, |_| Ok(())).unwrap();
        let err = write(run.path(), &state(2), 2, |_| bail!("disk full")).unwrap_err();
        assert!(format!("{err:#}").contains("disk full"));
        assert_eq!(latest(run.path()).unwrap().unwrap().0, 1);
        // No temporary folder is left behind.
        assert_eq!(fs::read_dir(folder(run.path())).unwrap().count(), 1);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_disk_fails_the_write_with_the_system_reason_and_keeps_the_previous_checkpoint() {
        let run = tempfile::tempdir().unwrap();
        write(run.path(), &state(1), 2, |dir| {
            Ok(fs::write(dir.join("w"), [1])?)
        })
        .unwrap();
        // /dev/full answers every write with ENOSPC, as a full disk does.
        let err = write(run.path(), &state(2), 2, |dir| {
            std::os::unix::fs::symlink("/dev/full", dir.join("w"))?;
            fs::write(dir.join("w"), vec![0u8; 1 << 16])
                .with_context(|| format!("cannot write {}", dir.join("w").display()))
        })
        .unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.contains("checkpoint at step 2 not written"),
            "{message}"
        );
        assert!(message.contains("No space left on device"), "{message}");
        assert_eq!(latest(run.path()).unwrap().unwrap().0, 1);
        assert_eq!(fs::read_dir(folder(run.path())).unwrap().count(), 1);
    }

    #[test]
    fn a_run_folder_that_cannot_be_created_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("notes.txt");
        fs::write(&file, "a file, not a folder").unwrap();
        let err = prepare_fresh(&file.join("run"), false).unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("cannot create run folder"), "{message}");
        assert!(message.contains("notes.txt/run"), "{message}");
        assert!(message.contains("Not a directory"), "{message}");
    }

    #[test]
    fn fresh_runs_refuse_used_folders_without_force() {
        let run = tempfile::tempdir().unwrap();
        fs::write(run.path().join("config.json"), "{}").unwrap();
        let err = prepare_fresh(run.path(), false).unwrap_err().to_string();
        assert!(err.contains("--resume"), "{err}");
        prepare_fresh(run.path(), true).unwrap();
        assert!(!run.path().join("config.json").exists());
    }

    #[test]
    fn a_folder_being_trained_is_refused_to_a_second_trainer_until_the_first_stops() {
        let run = tempfile::tempdir().unwrap();
        let first = prepare_fresh(run.path(), false).unwrap();
        write(run.path(), &state(1), 2, |_| Ok(())).unwrap();
        // A resume, and a fresh run with --force, while the first still trains there.
        for err in [
            lock(run.path()).unwrap_err(),
            prepare_fresh(run.path(), true).unwrap_err(),
        ] {
            let message = format!("{err:#}");
            assert!(message.contains("another catgan process"), "{message}");
            let pid = std::process::id().to_string();
            assert!(message.contains(&pid), "{message}");
        }
        // Nothing of the first run was cleared.
        assert_eq!(latest(run.path()).unwrap().unwrap().0, 1);
        drop(first); // the first trainer ends
        let _second = lock(run.path()).unwrap();
    }
}
