//! `contra` under `mpirun`: sharded embedding files equal one process's, and a rank that
//! dies or hangs ends the job with an error and the last checkpoint intact, from which the
//! run resumes to the same final loss as an uninterrupted one.
#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn contra() -> Command {
    Command::new(env!("CARGO_BIN_EXE_contra"))
}

/// `contra ARGS` on `ranks` MPI processes, one thread each.
fn mpirun(ranks: usize, args: &[&str]) -> Command {
    let mut c = Command::new("mpirun");
    c.args(["-n", &ranks.to_string(), "--oversubscribe"])
        .arg(env!("CARGO_BIN_EXE_contra"))
        .args(args)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("RAYON_NUM_THREADS", "1");
    c
}

fn ok(out: Output, what: &str) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("contra-cli-mpi-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn embeddings_from_three_ranks_are_the_files_of_one_process() {
    let dir = tempdir("embed");
    let run = dir.join("run");
    ok(
        contra()
            .args([
                "--quiet",
                "pretrain",
                "--out",
                path(&run),
                "--epochs",
                "1",
                "--no-eval",
            ])
            .output()
            .unwrap(),
        "pretrain",
    );
    let model = run.join("model.safetensors");
    let (one, three) = (dir.join("one"), dir.join("three"));
    for split in ["test", "train"] {
        let embed = |out| {
            [
                "embed",
                "--model",
                path(&model),
                "--split",
                split,
                "--out",
                out,
            ]
        };
        ok(contra().args(embed(path(&one))).output().unwrap(), "embed");
        let text = ok(
            mpirun(3, &embed(path(&three))).output().unwrap(),
            "mpirun -n 3 embed",
        );
        assert_eq!(text.matches("wrote ").count(), 1, "rank 0 reports: {text}");
        for file in ["embeddings.npy", "labels.npy", "embeddings.safetensors"] {
            let a = std::fs::read(one.join(file)).unwrap();
            let b = std::fs::read(three.join(file)).unwrap();
            assert!(a == b, "{split}: {file} differs");
        }
        // No part files are left behind.
        let names: Vec<_> = std::fs::read_dir(&three)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The recipe's last logged step loss, at full precision.
fn last_loss(run: &Path) -> (u64, f64) {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("loss").is_some())
        .map(|v| (v["step"].as_u64().unwrap(), v["loss"].as_f64().unwrap()))
        .next()
        .unwrap()
}

fn steps_logged(run: &Path) -> usize {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .map(|t| t.lines().filter(|l| l.contains("\"loss\"")).count())
        .unwrap_or(0)
}

/// The pid of the contra process that is rank `rank` of a job tagged `tag`.
fn rank_pid(tag: &str, rank: usize) -> Option<u32> {
    let want = [
        format!("CONTRA_TEST_TAG={tag}"),
        format!("OMPI_COMM_WORLD_RANK={rank}"),
    ];
    std::fs::read_dir("/proc").ok()?.find_map(|e| {
        let e = e.ok()?;
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let env = std::fs::read(e.path().join("environ")).ok()?;
        let vars: Vec<&[u8]> = env.split(|&b| b == 0).collect();
        let exe = std::fs::read_link(e.path().join("exe")).ok()?;
        (exe.file_name()? == "contra" && want.iter().all(|w| vars.contains(&w.as_bytes())))
            .then_some(pid)
    })
}

/// The job's exit status, how long it took to end, and what it wrote to stderr.
fn wait_with_timeout(
    mut child: Child,
    limit: Duration,
) -> (std::process::ExitStatus, Duration, String) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                std::io::Read::read_to_string(&mut e, &mut err).ok();
            }
            return (status, started.elapsed(), err);
        }
        if started.elapsed() > limit {
            child.kill().ok();
            panic!("the job did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

const TRAIN: &[&str] = &[
    "--quiet",
    "pretrain",
    "--epochs",
    "30",
    "--checkpoint-every",
    "20",
    "--no-eval",
];

/// Start a two-rank run into `run` and stop rank 1 with `signal` once it has logged `steps`.
fn start_and_signal(run: &Path, tag: &str, signal: &str, steps: usize, timeout: &str) -> Child {
    let mut args = TRAIN.to_vec();
    args.extend(["--out", path(run)]);
    let child = mpirun(2, &args)
        .env("CONTRA_TEST_TAG", tag)
        .env("CONTRA_RANK_TIMEOUT", timeout)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while steps_logged(run) < steps || !run.join("checkpoint.safetensors").is_file() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the run did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = rank_pid(tag, 1).expect("rank 1's process");
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child
}

#[test]
fn a_killed_rank_ends_the_job_and_the_run_resumes_to_the_same_loss() {
    let dir = tempdir("kill");
    let (whole, killed) = (dir.join("whole"), dir.join("killed"));
    let mut args = TRAIN.to_vec();
    args.extend(["--out", path(&whole)]);
    ok(mpirun(2, &args).output().unwrap(), "the uninterrupted run");
    let (steps, loss) = last_loss(&whole);

    let tag = format!("kill-{}", std::process::id());
    let child = start_and_signal(&killed, &tag, "-KILL", 60, "300");
    let (status, _, _) = wait_with_timeout(child, Duration::from_secs(60));
    assert!(!status.success(), "a killed rank must fail the job");
    assert!(
        steps_logged(&killed) < steps as usize,
        "killed before the end"
    );
    // The checkpoint is whole: the run resumes from it.
    let mut args = TRAIN.to_vec();
    args.extend(["--out", path(&killed), "--resume"]);
    ok(mpirun(2, &args).output().unwrap(), "the resumed run");
    let (resumed_steps, resumed_loss) = last_loss(&killed);
    assert_eq!(resumed_steps, steps);
    assert!(
        (resumed_loss - loss).abs() <= 1e-6 * loss.abs(),
        "resumed to loss {resumed_loss}, uninterrupted {loss}"
    );
    // Resuming in another number of processes is refused, naming the count.
    let out = contra().args(&args).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("mpirun -n 2"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_hung_rank_ends_the_job_within_the_timeout() {
    let dir = tempdir("hang");
    let run = dir.join("run");
    let tag = format!("hang-{}", std::process::id());
    let child = start_and_signal(&run, &tag, "-STOP", 20, "3");
    let (status, waited, stderr) = wait_with_timeout(child, Duration::from_secs(60));
    assert!(!status.success(), "a hung rank must fail the job");
    assert!(waited < Duration::from_secs(30), "ended after {waited:?}");
    assert!(
        stderr.contains("rank 0: no answer from the other ranks for 3 s"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn commands_of_one_process_refuse_to_run_across_processes() {
    let out = mpirun(2, &["info"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("runs in one process"), "{err}");
}
