//! `make test-slurm`: the shipped Slurm scripts driven through a real one-node Slurm (Debian's
//! slurm-wlm with munge, started by `scripts/slurm/local-cluster.sh` in a temporary directory and
//! stopped when the test ends, whatever its outcome). The scripts run unchanged; what this 2-core,
//! GPU-less node cannot give is overridden with sbatch options (`SBATCH_ARGS="--gres=none
//! --cpus-per-task=1 --mem=2G"`), the way the scripts document for a CPU-only cluster.
//!
//! 1. `prep-array.sbatch` builds a cache in three parts and merges it after `afterok`: the key
//!    and every shard's bytes equal a one-process build's.
//! 2. `submit-sweep.sh` on the demo sweep at tiny size; one task is cancelled: the report job never
//!    runs; submitting again trains only the missing task, and the report's table equals the one
//!    `train sweep` gives in one process.
//! 3. One long task under a one-minute limit: Slurm's TERM (`--signal=B:TERM@…`) stops it after a
//!    step, the script requeues it, it resumes from its checkpoint; then `scontrol requeue` while it
//!    runs; it ends with the fold result and epoch history of an undisturbed run.
//!
//! Slurm holds a requeued job back until the launch credential of its previous instance has
//! expired (`cred_expire`, 120 s by default); the test cluster sets 10 s. (Moving a requeued job's
//! start to now instead made its next launch fail at random, without a line of output.)
//!
//! Ignored in `make test` (it needs root and the Slurm packages; `make test-slurm` runs it).

use super::{fixture, repo, small_config};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// What this node can give each job, in place of the scripts' GPU and large requests.
const SBATCH_ARGS: &str = "--gres=none --cpus-per-task=1 --mem=2G";

fn bin_dir() -> PathBuf {
    // target/release/deps/e2e-… → target/release, where `cargo test --workspace` put the binaries.
    std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .to_path_buf()
}

/// A one-node Slurm under a temporary directory, stopped (daemons gone, directory removed) on drop.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
    /// Where jobs are submitted from (their `logs/`).
    work: PathBuf,
}

impl Cluster {
    fn start(dir: &Path, work: &Path) -> Cluster {
        let script = repo().join("scripts/slurm/local-cluster.sh");
        let o = Command::new("bash")
            .arg(&script)
            .arg("start")
            .arg(dir)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "local-cluster.sh start: {err}");
        eprint!("{err}");
        let out = String::from_utf8_lossy(&o.stdout);
        let conf = out
            .trim()
            .strip_prefix("export SLURM_CONF=")
            .unwrap_or_else(|| panic!("no SLURM_CONF in {out:?}"));
        std::fs::create_dir_all(work.join("logs")).unwrap();
        Cluster {
            dir: dir.to_path_buf(),
            conf: PathBuf::from(conf),
            work: work.to_path_buf(),
        }
    }

    fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        let bin = bin_dir();
        c.env("SLURM_CONF", &self.conf)
            .env("TRAIN", bin.join("train"))
            .env("PREP", bin.join("prep"))
            .env("SBATCH_ARGS", SBATCH_ARGS)
            .current_dir(&self.work);
        c
    }

    /// Runs `c` and returns its stdout; a failure shows its output and the job logs.
    fn ok(&self, c: &mut Command) -> String {
        let o: Output = c.output().unwrap();
        assert!(
            o.status.success(),
            "{c:?}: {}\n{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            self.logs()
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn scontrol(&self, args: &[&str]) -> String {
        self.ok(self.cmd("scontrol").args(args))
    }

    /// A job's (or array task's, `123_4`) state and restart count.
    fn state(&self, job: &str) -> (String, u32) {
        let line = self.scontrol(&["show", "job", "-o", job]);
        let field = |k: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .unwrap_or_default()
                .to_string()
        };
        (field("JobState="), field("Restarts=").parse().unwrap_or(0))
    }

    /// Polls `done` every 200 ms for at most `secs`, naming `what` and the logs when it times out.
    fn wait(&self, what: &str, secs: u64, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !done() {
            assert!(
                Instant::now() < deadline,
                "timed out after {secs} s waiting for {what}\n{}\n{}",
                self.ok(self.cmd("squeue").args(["-o", "%i %T %r"])),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until no job is queued or running.
    fn wait_idle(&self, what: &str, secs: u64) {
        self.wait(what, secs, || {
            self.ok(self.cmd("squeue").arg("-h")).trim().is_empty()
        });
    }

    /// Every job log's last lines, for failure messages.
    fn logs(&self) -> String {
        let mut out = String::new();
        let mut files: Vec<_> = std::fs::read_dir(self.work.join("logs"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(8).collect();
            out.push_str(&format!("--- {}\n", f.display()));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("scripts/slurm/local-cluster.sh"))
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

/// The job id in `sbatch --parsable`'s answer or a submit script's line (`… array 12 (…`).
fn job_id_after(text: &str, word: &str) -> String {
    let rest = &text[text
        .find(word)
        .unwrap_or_else(|| panic!("{word:?} in {text:?}"))
        + word.len()..];
    rest.trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .to_string()
}

/// A copy of the demo sweep's `[sweep]` table over `small_config` on `cache`, `epochs` long.
fn sweep_file(
    dir: &Path,
    stem: &str,
    cache: &Path,
    folds: &str,
    epochs: usize,
    sweep: toml::Value,
) -> PathBuf {
    let mut cfg = small_config(cache, &dir.join(format!("runs-{stem}")), folds, epochs);
    cfg.train.threads = Some(1);
    let mut t: toml::Table = toml::from_str(&cfg.to_toml().unwrap()).unwrap();
    t.insert("sweep".into(), sweep);
    let path = dir.join(format!("{stem}.toml"));
    std::fs::write(&path, toml::to_string(&t).unwrap()).unwrap();
    path
}

fn sweep_dir(config: &Path) -> PathBuf {
    train::sweep::Sweep::load(config).unwrap().dir()
}

/// Every (cell, fold) result of a sweep directory, and every cell's epoch history without timings.
fn outcomes(dir: &Path) -> Vec<(String, String)> {
    let plan = train::sweep::read_plan(dir).unwrap();
    let mut out = Vec::new();
    for c in &plan.cells {
        for f in &plan.folds {
            let p = dir.join(&c.name).join(format!("fold-{f}/result.json"));
            let r: train::outputs::FoldResult =
                serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            out.push((format!("{}/{f}", c.name), format!("{r:?}")));
        }
        let m: Vec<_> = train::outputs::read_metrics(&dir.join(&c.name))
            .unwrap()
            .into_iter()
            .map(|r| r.without_timing())
            .collect();
        out.push((format!("{} metrics", c.name), format!("{m:?}")));
    }
    out
}

/// The ablation table's CSV with the sweep directory's own path taken out.
fn ablation_csv(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("ablation.csv"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join("ablation.csv").display()))
        .replace(&dir.display().to_string(), "<sweep>")
}

#[test]
#[ignore = "starts a one-node Slurm (root, slurm-wlm, munge): make test-slurm"]
fn slurm_runs_the_shipped_scripts_requeues_and_resubmits() {
    let have = Command::new("bash")
        .args(["-c", "command -v sbatch slurmctld slurmd munged"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !have {
        assert!(
            std::env::var_os("FER_REQUIRE_SLURM").is_none(),
            "slurm-wlm and munge are not installed (make setup installs them)"
        );
        println!("skipped: slurm_runs_the_shipped_scripts_requeues_and_resubmits: no sbatch/slurmctld/slurmd/munged");
        return;
    }
    let Some(fx) = fixture() else { return };
    let t0 = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    let cluster = Cluster::start(&tmp.path().join("cluster"), &work);
    let scripts = repo().join("scripts/slurm");
    let step = |what: &str| println!("[{:>4.0} s] {what}", t0.elapsed().as_secs_f64());

    // 1. The prep array and its merge, against a one-process build.
    step("1. prep-array.sbatch: 3 parts then the merge (scripts/slurm/submit.sh 3)");
    let source = fx.raw.join("fer2013/fer2013.csv");
    let submitted = cluster.ok(cluster
        .cmd(scripts.join("submit.sh"))
        .arg("3")
        .env("DATASET", "fer2013")
        .env("SOURCE", &source)
        .env("NAME", "slurm-fer")
        .env("CACHE_DIR", work.join("cache"))
        .env("PREP_ARGS", "--qa-samples 0"));
    print!("   {submitted}");
    let (array, merge) = (
        job_id_after(&submitted, "prep array"),
        job_id_after(&submitted, "merge"),
    );
    cluster.wait_idle("the prep array and its merge", 300);
    for t in 1..=3 {
        assert_eq!(
            cluster.state(&format!("{array}_{t}")).0,
            "COMPLETED",
            "part {t}"
        );
    }
    assert_eq!(cluster.state(&merge).0, "COMPLETED", "{}", cluster.logs());
    let single = work.join("single");
    cluster.ok(Command::new(bin_dir().join("prep"))
        .args([
            "build",
            "--dataset",
            "fer2013",
            "--name",
            "slurm-fer",
            "--qa-samples",
            "0",
        ])
        .arg("--source")
        .arg(&source)
        .arg("--cache-dir")
        .arg(&single));
    let one = shard::Cache::open(
        &std::fs::read_dir(&single)
            .unwrap()
            .flatten()
            .find(|e| e.path().join("manifest.json").exists())
            .unwrap()
            .path(),
    )
    .unwrap();
    let merged =
        shard::Cache::open(&work.join("cache").join(one.dir().file_name().unwrap())).unwrap();
    assert_eq!(merged.manifest().key, one.manifest().key);
    assert_eq!(merged.manifest().shards.len(), one.manifest().shards.len());
    for s in &one.manifest().shards {
        let a = std::fs::read(one.dir().join(&s.file)).unwrap();
        let b = std::fs::read(merged.dir().join(&s.file)).unwrap();
        assert!(
            a == b,
            "shard {} differs between the array build and one process",
            s.file
        );
    }
    println!(
        "   merged cache = one-process build: key {}, {} shards byte for byte, {} records",
        shard::short_key(&one.manifest().key),
        one.manifest().shards.len(),
        one.len()
    );

    // 2. The demo sweep at tiny size, one task cancelled, then submitted again.
    let demo: toml::Table = toml::from_str(
        &std::fs::read_to_string(repo().join("manifests/experiments/demo-ablation.toml")).unwrap(),
    )
    .unwrap();
    let ck = &fx.ck.dir;
    let reference = sweep_file(&work, "sweep-one", ck, "[0, 1]", 2, demo["sweep"].clone());
    let arrayed = sweep_file(&work, "sweep-array", ck, "[0, 1]", 2, demo["sweep"].clone());
    step("2. the demo sweep at tiny size in one process (train sweep), for reference");
    cluster.ok(Command::new(bin_dir().join("train"))
        .args(["sweep", "--config"])
        .arg(&reference));
    step("   scripts/slurm/submit-sweep.sh: every (cell, fold) as an array task, the report after them");
    let submitted = cluster.ok(cluster.cmd(scripts.join("submit-sweep.sh")).arg(&arrayed));
    print!("   {submitted}");
    let report = job_id_after(&submitted, "report");
    let n: usize = cluster
        .ok(cluster
            .cmd(bin_dir().join("train"))
            .args(["sweep", "--count", "--config"])
            .arg(&arrayed))
        .trim()
        .parse()
        .unwrap();
    assert_eq!(n, 12, "6 cells × 2 folds");
    // A task that is running (not the first: some folds finish before the cancel) is cancelled.
    let mut victim = String::new();
    cluster.wait("a running task after the first", 300, || {
        let running = cluster.ok(cluster.cmd("squeue").args(["-h", "-t", "R", "-o", "%i"]));
        match running.lines().find(|j| !j.ends_with("_0")) {
            Some(j) => {
                victim = j.trim().to_string();
                true
            }
            None => false,
        }
    });
    let index: usize = victim.rsplit('_').next().unwrap().parse().unwrap();
    cluster.ok(cluster.cmd("scancel").arg(&victim));
    step(&format!(
        "   scancel {victim} while it runs: the report job must not run"
    ));
    cluster.wait_idle("the rest of the array", 600);
    assert_eq!(
        cluster.state(&victim),
        ("CANCELLED".to_string(), 0),
        "cancelled, not requeued"
    );
    let (report_state, _) = cluster.state(&report);
    assert_eq!(
        report_state, "CANCELLED",
        "afterok on a cancelled task: the report never runs"
    );
    let sweep_b = sweep_dir(&arrayed);
    assert!(
        !sweep_b.join("ablation.csv").exists(),
        "no table without every fold"
    );
    let missing = cluster.ok(cluster
        .cmd(bin_dir().join("train"))
        .args(["sweep", "--missing", "--config"])
        .arg(&arrayed));
    assert_eq!(missing.trim(), index.to_string());
    println!(
        "   report job {report}: {report_state}; train sweep --missing: {}",
        missing.trim()
    );
    let submitted = cluster.ok(cluster.cmd(scripts.join("submit-sweep.sh")).arg(&arrayed));
    print!("   again: {submitted}");
    let again = job_id_after(&submitted, "sweep array");
    let report = job_id_after(&submitted, "report");
    cluster.wait_idle("the missing task and the report", 300);
    assert_eq!(cluster.state(&report).0, "COMPLETED", "{}", cluster.logs());
    let trained: Vec<String> = std::fs::read_dir(work.join("logs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| f.starts_with(&format!("sweep-{again}_")))
        .collect();
    assert_eq!(
        trained,
        [format!("sweep-{again}_{index}.out")],
        "only the missing task ran"
    );
    let sweep_a = sweep_dir(&reference);
    assert_eq!(
        outcomes(&sweep_a),
        outcomes(&sweep_b),
        "fold results and histories"
    );
    assert_eq!(
        ablation_csv(&sweep_a),
        ablation_csv(&sweep_b),
        "the ablation table"
    );
    println!("   only task {index} trained again; the table equals the one-process sweep's");

    // 3. Time limit, then requeue, against an undisturbed run.
    let one_cell = toml::Value::Table(toml::from_str("seeds = [1]").unwrap());
    let epochs = 48;
    let undisturbed = sweep_file(&work, "long-one", ck, "[0]", epochs, one_cell.clone());
    let disturbed = sweep_file(&work, "long-array", ck, "[0]", epochs, one_cell);
    step("3. one long task with a 1-minute limit and TERM 59 s before it (an undisturbed copy beside it)");
    let reference_run = Command::new(bin_dir().join("train"))
        .args(["sweep", "--config"])
        .arg(&undisturbed)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let submitted = cluster.ok(cluster
        .cmd("sbatch")
        .args(["--parsable", "--array=0", "--time=1", "--signal=B:TERM@59"])
        .args(SBATCH_ARGS.split(' '))
        .arg(format!("--export=ALL,CONFIG={}", disturbed.display()))
        .arg(scripts.join("train-array.sbatch")));
    let job = format!("{}_0", submitted.trim());
    let fold_dir = sweep_dir(&disturbed).join("base.seed-1/fold-fold0");
    let epoch_on_disk = || -> Option<u64> {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(fold_dir.join("checkpoint.json")).ok()?).ok()?;
        v["epoch"].as_u64()
    };
    cluster.wait(
        "TERM before the limit and the task's own requeue",
        240,
        || {
            let (s, restarts) = cluster.state(&job);
            restarts >= 1 && s == "PENDING"
        },
    );
    let log = std::fs::read_to_string(work.join(format!("logs/sweep-{}_0.out", submitted.trim())))
        .unwrap_or_default();
    assert!(log.contains("stopping after the current step"), "{log}");
    assert!(log.contains("requeued to resume"), "{log}");
    let saved = epoch_on_disk().expect("a checkpoint before the TERM");
    step(&format!(
        "   TERM received, checkpoint after epoch {}, requeued by the script",
        saved + 1
    ));
    // Lift the limit so that it can finish.
    cluster.scontrol(&["update", &format!("JobId={job}"), "TimeLimit=10"]);
    cluster.wait("the resumed task to pass its checkpoint", 240, || {
        epoch_on_disk().is_some_and(|e| e > saved)
    });
    cluster.scontrol(&["requeue", &job]);
    step(&format!(
        "   scontrol requeue {job} while it runs (checkpoint after epoch {})",
        epoch_on_disk().unwrap() + 1
    ));
    cluster.wait_idle("the task to finish", 300);
    let (state, restarts) = cluster.state(&job);
    assert_eq!(
        (state.as_str(), restarts),
        ("COMPLETED", 2),
        "{}",
        cluster.logs()
    );
    let o = reference_run.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The undisturbed run trained the same fold into its own cell; compare the fold: its result,
    // its epoch history (without timings) and the final weights' hash.
    let fold = |cfg: &Path| {
        let d = sweep_dir(cfg).join("base.seed-1/fold-fold0");
        let r: train::outputs::FoldResult =
            serde_json::from_slice(&std::fs::read(d.join("result.json")).unwrap()).unwrap();
        let c: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join("checkpoint.json")).unwrap()).unwrap();
        let h: Vec<train::outputs::EpochRecord> =
            serde_json::from_value(c["history"].clone()).unwrap();
        let h: Vec<_> = h.into_iter().map(|r| r.without_timing()).collect();
        (r, h, c["tensors_blake3"].to_string())
    };
    let (a, b) = (fold(&undisturbed), fold(&disturbed));
    assert_eq!(a, b, "a twice-interrupted task ends as the undisturbed one");
    step(&format!(
        "   finished after 2 restarts: accuracy {:.4}, {} epochs, equal to the undisturbed run",
        b.0.accuracy,
        b.1.len()
    ));
    drop(cluster);
    assert!(
        !tmp.path().join("cluster").exists(),
        "the cluster's state is removed"
    );
    step("cluster stopped, its directory removed");
}
