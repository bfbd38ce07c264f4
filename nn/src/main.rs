//! The `radpipe-nn` binary: `job` (what the engine runs), `init` (seeded
//! weights for tests and fixtures), `doctor`.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use radpipe_nn::fusion::FusionConfig;
use radpipe_nn::job::{self, Progress};
use radpipe_nn::resnet::Arch;
use radpipe_nn::{determinism, weights, LIBTORCH_VERSION};
use radpipe_protocol::Job;

/// The radpipe deep-learning worker (libtorch). The engine starts it; you
/// rarely need to.
#[derive(Parser)]
#[command(name = "radpipe-nn", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one job: JSON on stdin, JSON lines on stdout (see the `job` module).
    Job,
    /// Write seeded random weights (batch-norm statistics randomised too) as safetensors.
    Init {
        /// resnet18|resnet34|resnet50|resnet101, or `fusion` (with --fusion).
        #[arg(long)]
        arch: String,
        #[arg(long, default_value_t = 0)]
        seed: i64,
        #[arg(long, default_value_t = 2)]
        classes: i64,
        /// The fusion model's shape, as JSON (`fusion.json`).
        #[arg(long)]
        fusion: Option<String>,
        #[arg(long)]
        out: PathBuf,
    },
    /// libtorch's version, whether CUDA works, the threads and the level of
    /// the CPU kernels (`ATEN_CPU_CAPABILITY` lowers it), as JSON.
    Doctor,
    /// Throughput of a backbone (images/s), as JSON: inference (features and
    /// logits, no gradients) or training (forward, focal loss, backward, SGD step).
    Bench {
        #[arg(long, default_value = "resnet101")]
        arch: String,
        #[arg(long, default_value_t = 224)]
        size: i64,
        #[arg(long, default_value_t = 16)]
        batch: i64,
        /// Timed batches (after 2 warm-up batches).
        #[arg(long, default_value_t = 5)]
        iters: usize,
        #[arg(long, default_value = "cpu")]
        device: String,
        /// libtorch threads (0: default; 2 with --deterministic).
        #[arg(long, default_value_t = 0)]
        threads: i32,
        /// Deterministic mode, as a deterministic job runs (threads pinned,
        /// CPU kernels capped at AVX2, deterministic algorithms).
        #[arg(long)]
        deterministic: bool,
        #[arg(long)]
        train: bool,
        /// Half-precision autocast (CUDA only), or `bf16` weights and inputs.
        #[arg(long, value_parser = ["fp32", "fp16-autocast", "bf16"], default_value = "fp32")]
        precision: String,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Job => {
            let mut text = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut text) {
                eprintln!("radpipe-nn: cannot read the job: {e}");
                return ExitCode::from(2);
            }
            let job: Job = match serde_json::from_str(&text) {
                Ok(j) => j,
                Err(e) => {
                    eprintln!("radpipe-nn: the job is not valid: {e}");
                    return ExitCode::from(2);
                }
            };
            job::run(&job, &mut Progress::new(std::io::stdout().lock()));
            ExitCode::SUCCESS
        }
        Command::Init { arch, seed, classes, fusion, out } => {
            let built = if arch == "fusion" {
                let text = fusion.unwrap_or_default();
                serde_json::from_str::<FusionConfig>(&text)
                    .map_err(|e| format!("--fusion: {e}"))
                    .and_then(|c| c.check().map(|_| c))
                    .map(|c| weights::seeded_fusion(c, seed).0)
            } else {
                Arch::parse(&arch).map(|a| weights::seeded_resnet(a, seed, classes).0)
            };
            let vs = match built {
                Ok(vs) => vs,
                Err(e) => {
                    eprintln!("radpipe-nn: {e}");
                    return ExitCode::from(2);
                }
            };
            match weights::save(&vs, &out) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("radpipe-nn: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Bench { arch, size, batch, iters, device, threads, deterministic, train, precision } => {
            let run = determinism::settle(threads, deterministic).and_then(|pinned| {
                let mut report = radpipe_nn::bench::throughput(&arch, size, batch, iters, &device, train, &precision)?;
                report["deterministic"] = pinned.deterministic.into();
                report["cpu_capability"] = pinned.cpu_capability.into();
                Ok(report)
            });
            match run {
                Ok(report) => {
                    println!("{report}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("radpipe-nn: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Doctor => {
            let cuda = tch::Cuda::is_available();
            let report = serde_json::json!({
                "libtorch": LIBTORCH_VERSION,
                "cuda": cuda,
                "cuda_devices": if cuda { tch::Cuda::device_count() } else { 0 },
                "cudnn": tch::Cuda::cudnn_is_available(),
                "threads": tch::get_num_threads(),
                "cpu_capability": determinism::cpu_capability(),
            });
            println!("{report}");
            ExitCode::SUCCESS
        }
    }
}
