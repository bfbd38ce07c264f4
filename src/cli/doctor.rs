use clap::Parser;
use std::process::ExitCode;

use super::{print_json, EXIT_FAILED};
use radpipe_engine::worker;

#[derive(Debug, Parser)]
pub struct Args {
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Checks the deep-learning worker: where `radpipe-nn` is, the libtorch it
/// was built against, whether CUDA (and cuDNN) is usable and how many
/// devices there are. `radpipe` itself never loads libtorch; this starts the
/// worker once. Exit 1 when the worker is missing or fails to start.
pub fn run(args: Args) -> ExitCode {
    match worker::doctor() {
        Ok(report) if args.json => {
            print_json(&report);
            ExitCode::SUCCESS
        }
        Ok(r) => {
            println!("worker:   {}", r["worker"].as_str().unwrap_or("?"));
            println!("libtorch: {}", r["libtorch"].as_str().unwrap_or("?"));
            let cuda = r["cuda"].as_bool() == Some(true);
            println!(
                "cuda:     {}",
                if cuda {
                    format!("yes, {} device(s), cuDNN {}", r["cuda_devices"], if r["cudnn"].as_bool() == Some(true) { "yes" } else { "no" })
                } else {
                    "no (device: auto runs on the CPU; device: cuda fails)".into()
                }
            );
            println!("threads:  {}", r["threads"]);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}
