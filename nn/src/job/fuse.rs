//! The fuse tasks: `fuse_fit` trains the fusion model on a node's
//! concatenated per-sequence features (standardised on the training rows)
//! and writes `fusion.safetensors`, its shape as `fusion.json`,
//! `curves.csv` and `fit.json`; `fuse_apply` loads the fitted fusion model
//! once for the batch and writes each node's deep-learning score
//! (`scores.json`, `dls`), checking that the node has as many features as
//! the model was trained on.

use std::io::Write;

use radpipe_protocol::{FuseParams, Job, JobNode};
use serde_json::{json, Value};
use tch::nn::VarStore;
use tch::Device;

use super::files::{model_file, write};
use super::inputs::{labels, Inputs};
use super::progress::{class_balance, epoch_line, Progress};
use crate::fusion::{Fusion, FusionConfig};
use crate::train;
use crate::{weights, Error};

fn fusion_config(p: &FuseParams, features: i64) -> Result<FusionConfig, Error> {
    let c = FusionConfig {
        features,
        patch: p.model.patch,
        d_model: p.model.d_model,
        heads: p.model.heads,
        layers: p.model.layers,
        ff: p.model.ff,
        hidden: p.model.hidden,
        classes: 2,
        dropout: p.model.dropout,
        pool: p.model.pool.clone(),
        norm: p.model.norm.clone(),
    };
    c.check().map_err(Error::new)?;
    Ok(c)
}

pub(super) fn fuse_fit<W: Write>(p: &FuseParams, dev: Device, env: &Value, node: &JobNode, progress: &mut Progress<W>) -> Result<(), Error> {
    let y = labels(&node.samples)?;
    let x = Inputs::read(&node.samples)?.concat(&node.samples, &p.model.sequences)?;
    let config = fusion_config(p, x.size()[1])?;
    progress.message(&node.id, format!("fusion: {} tokens of {} from {}; {}", config.tokens(), config.patch, p.model.sequences.join("+"), class_balance(&y)));
    tch::manual_seed(p.train.seed as i64);
    let vs = VarStore::new(dev);
    let mut model = Fusion::new(&vs.root(), config.clone());
    model.set_standardisation(&x.to_device(dev));
    let id = node.id.clone();
    let report = train::train(&model, &vs, &x, &y, &p.train, &mut |e, took| progress.message(&id, epoch_line(e, took)))?;
    weights::save(&vs, &node.out_dir.join("fusion.safetensors"))?;
    write(&node.out_dir.join("fusion.json"), &(serde_json::to_string_pretty(&config).unwrap_or_default() + "\n"))?;
    write(&node.out_dir.join("curves.csv"), &train::curves_csv(&report.curves))?;
    let info = json!({ "report": report, "patients": node.samples.iter().map(|s| &s.patient).collect::<Vec<_>>(), "environment": env });
    write(&node.out_dir.join("fit.json"), &(serde_json::to_string_pretty(&info).unwrap_or_default() + "\n"))
}

pub(super) fn fuse_apply<W: Write>(p: &FuseParams, dev: Device, job: &Job, progress: &mut Progress<W>) -> Result<(), Error> {
    let first = job.nodes.first().ok_or_else(|| Error::new("no nodes"))?;
    let config_path = model_file(first, "fusion.json")?;
    let config: FusionConfig = serde_json::from_str(&std::fs::read_to_string(config_path).map_err(|e| Error::new(format!("{}: {e}", config_path.display())))?)
        .map_err(|e| Error::new(format!("{}: {e}", config_path.display())))?;
    let mut vs = VarStore::new(dev);
    let model = Fusion::new(&vs.root(), config);
    weights::load(&mut vs, model_file(first, "fusion.safetensors")?, &[])?;
    for node in &job.nodes {
        let scored = Inputs::read(&node.samples).and_then(|i| i.concat(&node.samples, &p.model.sequences)).and_then(|x| {
            if x.size()[1] != model.config.features {
                return Err(Error::new(format!(
                    "patient {}: {} features, the model was trained on {}",
                    node.samples[0].patient,
                    x.size()[1],
                    model.config.features
                )));
            }
            let dls = train::predict(&model, &x, 1, dev)[0];
            write(&node.out_dir.join("scores.json"), &(serde_json::to_string_pretty(&json!({ "dls": dls })).unwrap_or_default() + "\n"))
        });
        match scored {
            Ok(()) => progress.done(&node.id),
            Err(e) => progress.error(&node.id, e.to_string()),
        }
    }
    Ok(())
}
