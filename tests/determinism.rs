//! Deterministic mode of the learning stages, through the CLI on the `tiny`
//! cohorts (tests/pipelines/dl_tiny.yaml, `embed` -> `pca` -> `fuse`): every
//! file that the fit and apply nodes of `embed` and `fuse` write (weights,
//! curves, `fit.json`, features, scores, Grad-CAM PNGs; all of `results/embed`
//! and `results/fuse`, nothing excluded) is byte-identical whether the worker
//! gets 1, 2 or 4 cores (`taskset`) and whichever kernel level at or above
//! AVX2 the CPU has and the user's environment asks for. With deterministic
//! mode off the same runs give other weights, so the comparison can fail.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

const PIPELINE: &str = include_str!("pipelines/dl_tiny.yaml");

/// The training stages, whose outputs are compared.
const STAGES: [&str; 2] = ["embed", "fuse"];

/// The fitted weights, which differ without deterministic mode.
const WEIGHTS: [&str; 4] = ["embed/fit/t1.safetensors", "embed/fit/t2.safetensors", "embed/fit/ce_t1.safetensors", "fuse/fit/fusion.safetensors"];

/// Settings of this process's environment that would decide the thread
/// count or the kernels of the runs without deterministic mode, removed so
/// that only what each run sets counts.
const INHERITED: [&str; 3] = ["OMP_NUM_THREADS", "MKL_NUM_THREADS", "MKL_ENABLE_INSTRUCTIONS"];

/// A kernel level as a user's environment forces it: libtorch's, oneDNN's, MKL's names.
#[derive(Debug, Clone, Copy)]
struct Level {
    aten: &'static str,
    dnnl: &'static str,
    mkl: &'static str,
}

const AVX2: Level = Level { aten: "avx2", dnnl: "AVX2", mkl: "AVX2" };

/// The CPU's flags (/proc/cpuinfo).
fn cpu_flags() -> Vec<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines().find(|l| l.starts_with("flags")).map(|l| l.split_whitespace().map(str::to_string).collect()).unwrap_or_default()
}

/// The levels above AVX2 the CPU has, lowest first: AVX512 as ATen uses it
/// (F, BW, DQ, VL), with oneDNN's highest AVX512 ISA.
fn levels_above_avx2(flags: &[String]) -> Vec<Level> {
    let has = |f: &str| flags.iter().any(|g| g == f);
    if !["avx512f", "avx512bw", "avx512dq", "avx512vl"].iter().all(|f| has(f)) {
        return Vec::new();
    }
    let dnnl = if has("avx512_bf16") {
        "AVX512_CORE_BF16"
    } else if has("avx512_vnni") {
        "AVX512_CORE_VNNI"
    } else {
        "AVX512_CORE"
    };
    vec![Level { aten: "avx512", dnnl, mkl: "AVX512" }]
}

/// The CPUs this process may run on (`Cpus_allowed_list`), in order.
fn allowed_cpus() -> Vec<usize> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let list = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap_or("0").trim();
    list.split(',')
        .flat_map(|part| {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            a.parse::<usize>().unwrap()..=b.parse::<usize>().unwrap()
        })
        .collect()
}

/// `taskset -c` of the first `n` allowed CPUs.
fn first_cpus(cpus: &[usize], n: usize) -> String {
    cpus[..n].iter().map(usize::to_string).collect::<Vec<_>>().join(",")
}

fn worker() -> PathBuf {
    let w = radpipe_bin().parent().unwrap().join("radpipe-nn");
    assert!(w.is_file(), "{} is missing: run `make build` (or `make test`), which builds the worker with libtorch", w.display());
    w
}

/// How one run is made: the CPUs, the user's kernel level, the extra arguments.
struct Condition<'a> {
    cpus: String,
    level: Level,
    args: &'a [&'a str],
}

impl Condition<'_> {
    fn describe(&self) -> String {
        format!("taskset -c {}, {:?}, {:?}", self.cpus, self.level, self.args)
    }
}

/// `taskset -c CPUS radpipe run --json p.yaml --only fuse ARGS` with the
/// user's environment asking for `level`; the outputs of `embed` and `fuse`.
fn run(ws: &Workspace, c: &Condition<'_>) -> BTreeMap<String, Vec<u8>> {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", &c.cpus]).arg(radpipe_bin()).args(["run", "--json", "p.yaml", "--only", "fuse"]).args(c.args).current_dir(ws.path(""));
    for name in INHERITED {
        cmd.env_remove(name);
    }
    cmd.env("ATEN_CPU_CAPABILITY", c.level.aten).env("ONEDNN_MAX_CPU_ISA", c.level.dnnl).env("DNNL_MAX_CPU_ISA", c.level.dnnl).env("MKL_CBWR", c.level.mkl);
    let out = cmd.output().expect("taskset runs");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{}: no JSON ({e}): {}", c.describe(), stderr(&out)));
    assert_eq!(out.status.code(), Some(0), "{}: {}", c.describe(), json["errors"]);
    let executed = json["executed"].to_string();
    for node in ["embed.fit", "embed[I1-0001]", "embed[E-0001]", "fuse.fit", "fuse[I1-0001]", "fuse[E-0001]"] {
        assert!(executed.contains(&format!("\"{node}\"")), "{}: `{node}` did not run: {executed}", c.describe());
    }
    STAGES.iter().flat_map(|stage| ws.snapshot(&format!("results/{stage}")).into_iter().map(move |(path, bytes)| (format!("{stage}/{path}"), bytes))).collect()
}

/// The files that are not the same in `a` and `b` (or only in one).
fn differing(a: &BTreeMap<String, Vec<u8>>, b: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    a.keys().chain(b.keys()).filter(|k| a.get(*k) != b.get(*k)).cloned().collect::<std::collections::BTreeSet<_>>().into_iter().collect()
}

#[test]
fn training_is_byte_identical_across_core_counts_and_kernel_levels_only_in_deterministic_mode() {
    if Command::new("taskset").arg("--version").output().is_err() {
        eprintln!("skipped: `taskset` (util-linux) is missing");
        return;
    }
    worker();
    let ws = Workspace::new();
    let out = ws.radpipe(&["synth", "--preset", "tiny", "--out", "data"]);
    assert!(out.status.success(), "{}", stderr(&out));
    ws.write("p.yaml", PIPELINE);
    let cpus = allowed_cpus();
    let flags = cpu_flags();
    let above = levels_above_avx2(&flags);
    let top = above.last().copied().unwrap_or(AVX2);
    let two = first_cpus(&cpus, cpus.len().min(2));
    if cpus.len() < 2 {
        eprintln!("only one CPU is allowed: the core count does not vary");
    }
    if above.is_empty() {
        eprintln!("the CPU has no level above AVX2: the kernel level does not vary");
    }

    // Deterministic mode (the default): the first run computes everything,
    // the others force embed and fuse.
    let force = ["--force", "embed", "fuse"];
    let mut on = vec![Condition { cpus: two.clone(), level: AVX2, args: &[] }, Condition { cpus: first_cpus(&cpus, 1), level: AVX2, args: &force }];
    on.extend(above.iter().map(|&level| Condition { cpus: two.clone(), level, args: &force }));
    if cpus.len() >= 4 {
        on.push(Condition { cpus: first_cpus(&cpus, 4), level: top, args: &force });
    }
    let reference = run(&ws, &on[0]);
    assert!(reference.len() > 400, "embed and fuse wrote {} files", reference.len());
    let fit: serde_json::Value = serde_json::from_slice(&reference["embed/fit/fit.json"]).unwrap();
    assert_eq!(fit["environment"]["deterministic"], true, "{}", fit["environment"]);
    assert_eq!(fit["environment"]["threads"], 2, "{}", fit["environment"]);
    let capped = if flags.iter().any(|f| f == "avx2") { "avx2" } else { "default" };
    assert_eq!(fit["environment"]["cpu_capability"], capped, "{}", fit["environment"]);
    for c in &on[1..] {
        let changed = differing(&reference, &run(&ws, c));
        let weights: Vec<&str> = WEIGHTS.into_iter().filter(|w| changed.iter().any(|f| f == w)).collect();
        assert!(
            changed.is_empty(),
            "{} vs {}: {} of {} files differ, weights {weights:?}, first {:?}",
            on[0].describe(),
            c.describe(),
            changed.len(),
            reference.len(),
            &changed[..changed.len().min(5)]
        );
    }

    // Off, the machine decides: 1 core at AVX2 and 2 cores at the top level
    // give other weights (threads left to libtorch's default).
    if cpus.len() < 2 && above.is_empty() {
        eprintln!("one CPU without AVX512: no two runs of this machine differ without deterministic mode");
        return;
    }
    let off = [
        "--force",
        "embed",
        "fuse",
        "--set",
        "stages.embed.deterministic=false",
        "--set",
        "stages.fuse.deterministic=false",
        "--set",
        "stages.embed.threads=0",
    ];
    let a = run(&ws, &Condition { cpus: first_cpus(&cpus, 1), level: AVX2, args: &off });
    let b = run(&ws, &Condition { cpus: two, level: top, args: &off });
    let changed = differing(&a, &b);
    for w in WEIGHTS {
        assert!(changed.iter().any(|f| f == w), "{w} is the same without deterministic mode: the comparison could not fail");
    }
}
