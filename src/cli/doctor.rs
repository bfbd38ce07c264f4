use clap::Parser;
use serde_json::{json, Value};
use std::process::ExitCode;

use super::{print_json, Ctx, EXIT_FAILED};
use radpipe_engine::settings::DEFS;
use radpipe_engine::worker;

#[derive(Debug, Parser)]
pub struct Args {
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Prints every setting with its value and where it came from (command line,
/// `RADPIPE_*` environment, a radpipe.toml, or the default); checks the
/// remote cache when one is set (its kind, and that a probe object can be
/// written, read back and deleted); and checks the deep-learning worker:
/// where `radpipe-nn` is, the libtorch it was built against, whether CUDA
/// (and cuDNN) is usable and how many devices there are. `radpipe` itself
/// never loads libtorch; this starts the worker once. Exit 1 when the remote
/// or the worker fails.
pub fn run(ctx: &Ctx, args: Args) -> ExitCode {
    let settings: Vec<Value> =
        ctx.settings.entries().iter().map(|e| json!({"name": e.name, "value": e.value, "source": e.source.to_string(), "from": e.source})).collect();
    let remote = match super::open_remote(&ctx.settings) {
        Ok(None) => Value::Null,
        Ok(Some(r)) => match r.probe() {
            Ok(took) => json!({"url": r.url(), "kind": r.kind().to_string(), "ok": true, "probe_ms": took.as_secs_f64() * 1e3}),
            Err(e) => json!({"url": r.url(), "kind": r.kind().to_string(), "ok": false, "error": e.to_string()}),
        },
        Err(code) => return code,
    };
    let worker = worker::doctor();
    let failed = worker.is_err() || remote["ok"] == json!(false);
    if args.json {
        let mut report = json!({"settings": settings, "remote": remote});
        match worker {
            Ok(Value::Object(w)) => report.as_object_mut().expect("an object").extend(w),
            Ok(other) => report["worker_report"] = other,
            Err(e) => report["worker_error"] = json!(e),
        }
        print_json(&report);
    } else {
        println!("settings:");
        for (e, def) in ctx.settings.entries().iter().zip(DEFS) {
            println!("  {:<13} {:<40} ({}; {})", e.name, e.value.as_deref().unwrap_or("-"), e.source, def.env);
        }
        match remote.get("ok").and_then(Value::as_bool) {
            None => println!("remote:   none (a local store only)"),
            Some(true) => println!(
                "remote:   {} ({}): reachable and writable, probe {:.0} ms",
                remote["url"].as_str().unwrap_or("?"),
                remote["kind"].as_str().unwrap_or("?"),
                remote["probe_ms"].as_f64().unwrap_or(0.0)
            ),
            Some(false) => println!(
                "remote:   {} ({}): FAILED: {}",
                remote["url"].as_str().unwrap_or("?"),
                remote["kind"].as_str().unwrap_or("?"),
                remote["error"].as_str().unwrap_or("?")
            ),
        }
        match &worker {
            Ok(r) => print_worker(r),
            Err(e) => eprintln!("error: {e}"),
        }
    }
    if failed {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

fn print_worker(r: &Value) {
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
}
