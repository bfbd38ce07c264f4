//! Throughput of the backbones, for `benches/nn_bench.py` (which times
//! PyTorch eager on the same libtorch, threads, shapes and precision).

use std::time::Instant;

use serde_json::{json, Value};
use tch::nn::{ModuleT, OptimizerConfig, VarStore};
use tch::{Kind, Tensor};

use crate::loss::focal_loss;
use crate::resnet::{Arch, ResNet};
use crate::{device, Error};

pub fn throughput(arch: &str, size: i64, batch: i64, iters: usize, device: &str, train: bool, precision: &str) -> Result<Value, Error> {
    let dev = device::parse(device)?;
    let arch_v = Arch::parse(arch).map_err(Error::new)?;
    tch::manual_seed(0);
    let mut vs = VarStore::new(dev);
    let model = ResNet::new(&vs.root(), arch_v, 2, 0.0);
    let kind = if precision == "bf16" { Kind::BFloat16 } else { Kind::Float };
    if precision == "bf16" {
        vs.bfloat16();
    }
    let autocast = precision == "fp16-autocast" && dev.is_cuda();
    let x = Tensor::randn([batch, 3, size, size], (kind, dev));
    let y = Tensor::from_slice(&(0..batch).map(|i| i % 2).collect::<Vec<i64>>()).to_device(dev);
    let mut opt = tch::nn::Sgd { momentum: 0.9, dampening: 0.0, wd: 1e-4, nesterov: false }.build(&vs, 0.01).map_err(|e| Error::new(e.to_string()))?;
    let mut step = || {
        if train {
            let logits = tch::autocast(autocast, || model.forward_t(&x, true));
            let loss = focal_loss(&logits.to_kind(Kind::Float), &y, 0.5, 2.0);
            opt.backward_step(&loss);
        } else {
            let out = tch::no_grad(|| tch::autocast(autocast, || model.forward_parts(&x, false)));
            let _ = out.pooled.sum(Kind::Float).double_value(&[]);
        }
    };
    for _ in 0..2 {
        step();
    }
    if let tch::Device::Cuda(i) = dev {
        tch::Cuda::synchronize(i as i64);
    }
    let started = Instant::now();
    for _ in 0..iters {
        step();
    }
    if let tch::Device::Cuda(i) = dev {
        tch::Cuda::synchronize(i as i64);
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(json!({
        "tool": "radpipe-nn", "arch": arch, "size": size, "batch": batch, "iters": iters, "device": format!("{dev:?}"),
        "threads": tch::get_num_threads(), "mode": if train { "train" } else { "infer" }, "precision": precision,
        "seconds": seconds, "images_per_s": (batch as f64 * iters as f64) / seconds,
    }))
}
