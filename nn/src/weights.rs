//! Weights as safetensors, by name. Loading is strict: every variable of the
//! model must be in the file with the same shape, and the file may hold nothing
//! else (torchvision's `num_batches_tracked` counters excepted), so a file of
//! another architecture fails naming the first tensor that differs. A
//! pretrained backbone may skip the head (`skip` prefixes), since ImageNet's
//! `fc` has 1000 classes.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use tch::nn::VarStore;
use tch::{Kind, Tensor};

use crate::Error;

/// Copy the tensors of `path` into the variables of `vs`.
pub fn load(vs: &mut VarStore, path: &Path, skip: &[&str]) -> Result<(), Error> {
    let tensors: HashMap<String, Tensor> =
        Tensor::read_safetensors(path).map_err(|e| Error::new(format!("{}: cannot read safetensors: {e}", path.display())))?.into_iter().collect();
    let skipped = |name: &str| skip.iter().any(|s| name.starts_with(s));
    let vars: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    for (name, var) in &vars {
        if skipped(name) {
            continue;
        }
        let Some(t) = tensors.get(name) else {
            return Err(Error::new(format!("{}: tensor `{name}` (shape {:?}) is missing: the file holds another architecture", path.display(), var.size())));
        };
        if t.size() != var.size() {
            return Err(Error::new(format!(
                "{}: tensor `{name}` has shape {:?}, the model expects {:?}: the file holds another architecture",
                path.display(),
                t.size(),
                var.size()
            )));
        }
    }
    let mut extra: Vec<&String> = tensors.keys().filter(|n| !vars.contains_key(*n) && !n.ends_with("num_batches_tracked") && !skipped(n)).collect();
    extra.sort();
    if let Some(name) = extra.first() {
        return Err(Error::new(format!("{}: tensor `{name}` is not part of this model: the file holds another architecture", path.display())));
    }
    tch::no_grad(|| {
        for (name, mut var) in vars {
            if let Some(t) = tensors.get(&name) {
                var.copy_(&t.to_kind(var.kind()).to_device(var.device()));
            }
        }
    });
    Ok(())
}

/// Write every variable of `vs` (float32, CPU) to `path`.
pub fn save(vs: &VarStore, path: &Path) -> Result<(), Error> {
    let vars: BTreeMap<String, Tensor> = vs.variables().into_iter().map(|(n, t)| (n, t.to_kind(Kind::Float).to_device(tch::Device::Cpu))).collect();
    let list: Vec<(&str, &Tensor)> = vars.iter().map(|(n, t)| (n.as_str(), t)).collect();
    Tensor::write_safetensors(&list, path).map_err(|e| Error::new(format!("{}: cannot write: {e}", path.display())))
}

/// Deep copies of every variable (a checkpoint in memory).
pub fn snapshot(vs: &VarStore) -> BTreeMap<String, Tensor> {
    tch::no_grad(|| vs.variables().into_iter().map(|(n, t)| (n, t.detach().copy())).collect())
}

/// Put a snapshot back.
pub fn restore(vs: &VarStore, snap: &BTreeMap<String, Tensor>) {
    tch::no_grad(|| {
        for (name, mut var) in vs.variables() {
            if let Some(t) = snap.get(&name) {
                var.copy_(t);
            }
        }
    });
}

/// Seeded random values for the batch-norm statistics and affine parameters
/// (left at 1/0 by construction), so that a forward-parity test exercises them.
pub fn randomise_norms(vs: &VarStore, seed: i64) {
    tch::manual_seed(seed);
    tch::no_grad(|| {
        let vars: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
        for (name, mut var) in vars {
            let size = var.size();
            let is_norm = name.contains(".bn") || name.starts_with("bn") || name.contains("downsample.1") || name.contains("norm");
            if !is_norm {
                continue;
            }
            let value = if name.ends_with("running_var") || name.ends_with("weight") {
                Tensor::rand(size.as_slice(), (Kind::Float, tch::Device::Cpu)) + 0.5
            } else {
                Tensor::randn(size.as_slice(), (Kind::Float, tch::Device::Cpu)) * 0.1
            };
            var.copy_(&value.to_device(var.device()));
        }
    });
}

/// A ResNet with seeded random weights (what `radpipe-nn init` writes).
pub fn seeded_resnet(arch: crate::resnet::Arch, seed: i64, classes: i64) -> (VarStore, crate::resnet::ResNet) {
    tch::manual_seed(seed);
    let vs = VarStore::new(tch::Device::Cpu);
    let model = crate::resnet::ResNet::new(&vs.root(), arch, classes, 0.0);
    randomise_norms(&vs, seed + 1);
    (vs, model)
}

/// A fusion transformer with seeded random weights.
pub fn seeded_fusion(config: crate::fusion::FusionConfig, seed: i64) -> (VarStore, crate::fusion::Fusion) {
    tch::manual_seed(seed);
    let vs = VarStore::new(tch::Device::Cpu);
    let model = crate::fusion::Fusion::new(&vs.root(), config);
    randomise_norms(&vs, seed + 1);
    (vs, model)
}
