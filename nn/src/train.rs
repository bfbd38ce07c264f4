//! The training loop shared by `embed` (a ResNet per sequence) and `fuse`:
//! focal loss, SGD with momentum and weight decay, mini-batches, random
//! horizontal flip, quarter-turn rotation and random crop (images), dropout in the model, early
//! stopping on a stratified validation split carved from the training rows only,
//! best checkpoint kept. Every random choice (validation split, shuffling,
//! augmentation, dropout, initialisation) derives from one seed, so a CPU run is
//! deterministic: same seed, same weights.

use std::time::{Duration, Instant};

use radpipe_protocol::{Monitor, TrainSpec};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tch::nn::{ModuleT, OptimizerConfig, VarStore};
use tch::{Device, Kind, Tensor};

use crate::loss::focal_loss;
use crate::{weights, Error};

/// One line of the training curves. No wall-clock time: the curves are
/// content-addressed outputs, and two identical trainings give identical bytes
/// (the time each epoch took goes to the node's log).
#[derive(Debug, Clone, Serialize)]
pub struct Epoch {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    pub val_auc: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub curves: Vec<Epoch>,
    pub best_epoch: usize,
    pub stopped_early: bool,
    pub train_rows: usize,
    pub val_rows: usize,
}

/// Stratified hold-out: per class, a seeded shuffle and the first
/// `round(fraction * n_class)` rows (at least one). Errors when a class is
/// absent or has fewer than two rows.
pub fn stratified_split(labels: &[i64], fraction: f64, seed: u64) -> Result<(Vec<usize>, Vec<usize>), Error> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for class in [0i64, 1] {
        let mut idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        if idx.len() < 2 {
            return Err(Error::new(format!(
                "the training rows hold {} of class {class}: training needs both classes, at least 2 of each, to carve a validation split",
                idx.len()
            )));
        }
        idx.shuffle(&mut rng);
        let k = ((fraction * idx.len() as f64).round() as usize).clamp(1, idx.len() - 1);
        val.extend_from_slice(&idx[..k]);
        train.extend_from_slice(&idx[k..]);
    }
    train.sort();
    val.sort();
    Ok((train, val))
}

/// Area under the ROC curve of `scores` for `labels` (Mann-Whitney, ties 1/2).
pub fn auc(scores: &[f64], labels: &[i64]) -> f64 {
    let (mut num, mut pairs) = (0.0, 0.0);
    for (si, _) in scores.iter().zip(labels).filter(|(_, &l)| l == 1) {
        for (sj, _) in scores.iter().zip(labels).filter(|(_, &l)| l == 0) {
            num += if si > sj {
                1.0
            } else if si == sj {
                0.5
            } else {
                0.0
            };
            pairs += 1.0;
        }
    }
    if pairs > 0.0 {
        num / pairs
    } else {
        f64::NAN
    }
}

/// Random crop, flip and quarter-turn rotation of a batch of images `[B, C, H, W]`.
fn augment(x: &Tensor, config: &TrainSpec, rng: &mut ChaCha8Rng) -> Tensor {
    let (b, _, h, w) = x.size4().expect("images are [B, C, H, W]");
    let pad = config.crop_pad;
    let padded = if pad > 0 { x.constant_pad_nd([pad, pad, pad, pad]) } else { x.shallow_clone() };
    let rows: Vec<Tensor> = (0..b)
        .map(|i| {
            let mut img = padded.get(i);
            if pad > 0 {
                let (dy, dx) = (rng.random_range(0..=2 * pad), rng.random_range(0..=2 * pad));
                img = img.narrow(1, dy, h).narrow(2, dx, w);
            }
            if config.flip && rng.random_bool(0.5) {
                img = img.flip([2]);
            }
            if config.rotate && h == w {
                let k = rng.random_range(0..4i64);
                if k > 0 {
                    img = img.rot90(k, [1, 2]);
                }
            }
            img
        })
        .collect();
    Tensor::stack(&rows, 0)
}

/// Probabilities of class 1 for `x`, in evaluation mode, in batches.
pub fn predict(model: &dyn ModuleT, x: &Tensor, batch: usize, device: Device) -> Vec<f64> {
    let n = x.size()[0];
    let mut out = Vec::with_capacity(n as usize);
    tch::no_grad(|| {
        let mut start = 0;
        while start < n {
            let len = (batch as i64).min(n - start);
            let xb = x.narrow(0, start, len).to_device(device);
            let p = model.forward_t(&xb, false).softmax(-1, Kind::Float).select(1, 1).to_device(Device::Cpu);
            out.extend(Vec::<f32>::try_from(&p).expect("f32 probabilities").into_iter().map(f64::from));
            start += len;
        }
    });
    out
}

fn mean_loss(model: &dyn ModuleT, x: &Tensor, y: &Tensor, config: &TrainSpec, device: Device) -> f64 {
    tch::no_grad(|| {
        let logits = model.forward_t(&x.to_device(device), false);
        focal_loss(&logits, &y.to_device(device), config.focal_alpha, config.focal_gamma).double_value(&[])
    })
}

/// Train `model` (whose variables are in `vs`) on rows `x` with labels `y`
/// (0/1). `progress` receives each epoch's line and how long it took. Leaves
/// the best checkpoint (by `config.monitor`) in `vs`.
pub fn train(
    model: &dyn ModuleT,
    vs: &VarStore,
    x: &Tensor,
    y: &[i64],
    config: &TrainSpec,
    progress: &mut dyn FnMut(&Epoch, Duration),
) -> Result<TrainReport, Error> {
    let device = vs.device();
    let (train_idx, val_idx) = stratified_split(y, config.val_fraction, config.seed)?;
    let index = |idx: &[usize]| Tensor::from_slice(&idx.iter().map(|&i| i as i64).collect::<Vec<_>>());
    let labels = Tensor::from_slice(y);
    let (xv, yv) = (x.index_select(0, &index(&val_idx)), labels.index_select(0, &index(&val_idx)));
    let yv_vec: Vec<i64> = val_idx.iter().map(|&i| y[i]).collect();
    let images = x.dim() == 4;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x9e37_79b9_7f4a_7c15);
    tch::manual_seed(config.seed as i64);
    let mut opt = tch::nn::Sgd { momentum: config.momentum, dampening: 0.0, wd: config.weight_decay, nesterov: false }
        .build(vs, config.lr)
        .map_err(|e| Error::new(format!("cannot build the optimiser: {e}")))?;
    // (criterion to minimise, tie-break, epoch, weights)
    let mut best = ((f64::INFINITY, f64::INFINITY), 0usize, weights::snapshot(vs));
    let mut curves = Vec::new();
    let mut stopped_early = false;
    for epoch in 1..=config.epochs {
        let started = Instant::now();
        let mut order = train_idx.clone();
        order.shuffle(&mut rng);
        let (mut total, mut count) = (0.0, 0usize);
        for (b, chunk) in order.chunks(config.batch_size).enumerate() {
            // Batch norm cannot train on one row.
            if chunk.len() < 2 {
                continue;
            }
            let idx = index(chunk);
            let mut xb = x.index_select(0, &idx);
            if images {
                xb = augment(&xb, config, &mut rng);
            }
            let yb = labels.index_select(0, &idx).to_device(device);
            let logits = model.forward_t(&xb.to_device(device), true);
            let loss = focal_loss(&logits, &yb, config.focal_alpha, config.focal_gamma);
            let value = loss.double_value(&[]);
            if !value.is_finite() {
                return Err(Error::new(format!(
                    "the loss is not finite ({value}) at epoch {epoch}, batch {}: lower the learning rate or check the inputs",
                    b + 1
                )));
            }
            opt.backward_step(&loss);
            total += value * chunk.len() as f64;
            count += chunk.len();
        }
        let val_loss = mean_loss(model, &xv, &yv, config, device);
        let val_auc = auc(&predict(model, &xv, config.batch_size.max(1), device), &yv_vec);
        let e = Epoch { epoch, train_loss: total / count.max(1) as f64, val_loss, val_auc };
        progress(&e, started.elapsed());
        curves.push(e);
        if !val_loss.is_finite() {
            return Err(Error::new(format!("the validation loss is not finite at epoch {epoch}")));
        }
        let score = match config.monitor {
            Monitor::Loss => (val_loss, 0.0),
            Monitor::Auc => (-(if val_auc.is_nan() { 0.0 } else { val_auc }), val_loss),
        };
        if score < best.0 {
            best = (score, epoch, weights::snapshot(vs));
        } else if epoch - best.1 >= config.patience {
            stopped_early = epoch < config.epochs;
            break;
        }
    }
    weights::restore(vs, &best.2);
    Ok(TrainReport { curves, best_epoch: best.1, stopped_early, train_rows: train_idx.len(), val_rows: val_idx.len() })
}

/// Curves as CSV: `epoch,train_loss,val_loss,val_auc`.
pub fn curves_csv(curves: &[Epoch]) -> String {
    let mut s = String::from("epoch,train_loss,val_loss,val_auc\n");
    for e in curves {
        s.push_str(&format!("{},{},{},{}\n", e.epoch, e.train_loss, e.val_loss, e.val_auc));
    }
    s
}
