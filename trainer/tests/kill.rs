//! A real `catgan train` process killed with SIGKILL at arbitrary moments, including during
//! checkpoint writes, always leaves a run that resumes and finishes.

#![cfg(unix)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const CATGAN: &str = env!("CARGO_BIN_EXE_catgan");

fn write_cats(folder: &Path, count: usize) {
    std::fs::create_dir_all(folder).unwrap();
    for i in 0..count {
        let image = image::RgbImage::from_fn(8, 8, |x, y| {
            image::Rgb([(i * 20) as u8, (x * 30) as u8, (y * 30) as u8])
        });
        image.save(folder.join(format!("{i}.png"))).unwrap();
    }
}

fn train(args: &[&str]) -> Command {
    let mut command = Command::new(CATGAN);
    command
        .arg("train")
        .args(args)
        .args(["--no-progress", "--device", "cpu"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

#[test]
fn a_run_killed_repeatedly_resumes_and_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cats");
    write_cats(&data, 12);
    let run = dir.path().join("run");
    let (data, run_arg) = (data.to_str().unwrap(), run.to_str().unwrap());
    // A tiny model that checkpoints every two steps, so kills often land in a write.
    let fresh = [
        "--data",
        data,
        "--out",
        run_arg,
        "--resolution",
        "8",
        "--latent-size",
        "8",
        "--generator-width",
        "4",
        "--discriminator-width",
        "4",
        "--batch-size",
        "4",
        "--kimg",
        "2.0",
        "--tick-kimg",
        "0.008",
        "--swd-kimg",
        "0",
        "--held-out-percent",
        "0",
    ];

    let has_checkpoint = || {
        std::fs::read_dir(run.join("checkpoints")).is_ok_and(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().starts_with("step-"))
        })
    };
    let mut killed = 0;
    let mut delay_ms = 40;
    for _ in 0..12 {
        // Before the first checkpoint exists there is nothing to resume: start over.
        let args: Vec<&str> = if has_checkpoint() {
            vec!["--resume", run_arg]
        } else {
            [&fresh[..], &["--force"]].concat()
        };
        let mut child = train(&args).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        delay_ms = delay_ms * 7 / 5 % 400 + 30;
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "catgan train failed on its own");
            break; // finished before the kill
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        killed += 1;
        // Whatever moment the kill hit, every checkpoint in place is complete; a write that
        // was cut short is only ever a hidden temporary folder.
        if let Ok(entries) = std::fs::read_dir(run.join("checkpoints")) {
            for path in entries.map(|e| e.unwrap().path()) {
                if path
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("step-")
                {
                    assert!(
                        path.join("state.json").exists(),
                        "{} is incomplete",
                        path.display()
                    );
                }
            }
        }
    }
    assert!(
        killed >= 3,
        "the run finished before it could be killed often ({killed})"
    );

    // Finish: resume and run to the end.
    let args: Vec<&str> = if has_checkpoint() {
        vec!["--resume", run_arg]
    } else {
        [&fresh[..], &["--force"]].concat()
    };
    assert!(
        train(&args).status().unwrap().success(),
        "the final resume failed"
    );
    let stats = std::fs::read_to_string(run.join("stats.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(stats.lines().last().unwrap()).unwrap();
    assert_eq!(last["step"], 500, "{last}");
    // Each tick is logged once, in order, however often the run was interrupted.
    let steps: Vec<u64> = stats
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(steps, (1..=250).map(|t| t * 2).collect::<Vec<_>>());
}
