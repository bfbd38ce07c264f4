//! The embed tasks: `embed_fit` trains one backbone per MRI sequence on a
//! node's labelled images and writes `<seq>.safetensors`, `curves.<seq>.csv`
//! and `fit.json`; `embed_apply` loads each sequence's fitted backbone once
//! for the whole batch and writes each node's pooled features
//! (`features.safetensors`), class-1 scores (`scores.json`) and, when asked,
//! Grad-CAM overlays (`gradcam/<seq>_<plane>.png`). A node whose images are
//! missing or mis-shaped gets its own error; the others go on.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use radpipe_protocol::{EmbedParams, Job, JobNode};
use serde_json::{json, Value};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::files::{model_file, write};
use super::inputs::{labels, Inputs};
use super::progress::{class_balance, epoch_line, Progress};
use crate::train;
use crate::{backbone, gradcam, weights, Error};

/// Pooled features `[N, C]` and class-1 probabilities of `x`, in batches.
fn embed_rows(model: &dyn backbone::Backbone, x: &Tensor, dev: Device, amp: bool) -> (Tensor, Vec<f64>) {
    let mut feats = Vec::new();
    let mut probs = Vec::new();
    let n = x.size()[0];
    let mut start = 0;
    while start < n {
        let len = 32.min(n - start);
        let out = tch::no_grad(|| tch::autocast(amp && dev.is_cuda(), || model.parts(&x.narrow(0, start, len).to_device(dev), false)));
        feats.push(out.pooled.to_kind(Kind::Float).to(Device::Cpu));
        let p = out.logits.to_kind(Kind::Float).softmax(-1, Kind::Float).select(1, 1).to(Device::Cpu);
        probs.extend(Vec::<f32>::try_from(&p).unwrap_or_default().into_iter().map(f64::from));
        start += len;
    }
    (Tensor::cat(&feats, 0), probs)
}

pub(super) fn embed_fit<W: Write>(p: &EmbedParams, dev: Device, env: &Value, node: &JobNode, progress: &mut Progress<W>) -> Result<(), Error> {
    let y = labels(&node.samples)?;
    let inputs = Inputs::read(&node.samples)?;
    let mut summary = serde_json::Map::new();
    for seq in &p.model.sequences {
        let x = inputs.stack(&node.samples, seq)?;
        progress.message(&node.id, format!("{seq}: training {} on {}, input {:?}", p.model.backbone, class_balance(&y), &x.size()[1..]));
        tch::manual_seed(p.train.seed as i64);
        let mut vs = VarStore::new(dev);
        let model = backbone::build(&vs.root(), &p.model.backbone, p.weights.as_deref(), 2, p.model.dropout)?;
        if let (Some(w), false) = (&p.weights, p.model.backbone == "torchscript") {
            weights::load(&mut vs, w, &["fc."])?;
        }
        let id = node.id.clone();
        let report = train::train(model.as_ref(), &vs, &x, &y, &p.train, &mut |e, took| progress.message(&id, format!("{seq}: {}", epoch_line(e, took))))
            .map_err(|e| Error::new(format!("{seq}: {e}")))?;
        weights::save(&vs, &node.out_dir.join(format!("{seq}.safetensors")))?;
        write(&node.out_dir.join(format!("curves.{seq}.csv")), &train::curves_csv(&report.curves))?;
        summary.insert(seq.clone(), serde_json::to_value(&report).map_err(|e| Error::new(e.to_string()))?);
    }
    let info = json!({ "backbone": p.model.backbone, "sequences": summary, "patients": node.samples.iter().map(|s| &s.patient).collect::<Vec<_>>(), "environment": env });
    write(&node.out_dir.join("fit.json"), &(serde_json::to_string_pretty(&info).unwrap_or_default() + "\n"))
}

const PLANES: [&str; 3] = ["axial", "sagittal", "coronal"];

/// A node's features and scores, per sequence.
type Embedded = (BTreeMap<String, Tensor>, serde_json::Map<String, Value>);

pub(super) fn embed_apply<W: Write>(p: &EmbedParams, dev: Device, job: &Job, progress: &mut Progress<W>) -> Result<(), Error> {
    let first = job.nodes.first().ok_or_else(|| Error::new("no nodes"))?;
    // Per node: its features and scores, or its error.
    let mut results: Vec<Result<Embedded, Error>> = job.nodes.iter().map(|_| Ok((BTreeMap::new(), serde_json::Map::new()))).collect();
    let inputs: Vec<Result<Inputs, Error>> = job.nodes.iter().map(|n| Inputs::read(&n.samples)).collect();
    for seq in &p.model.sequences {
        let mut vs = VarStore::new(dev);
        let model = backbone::build(&vs.root(), &p.model.backbone, p.weights.as_deref(), 2, p.model.dropout)?;
        weights::load(&mut vs, model_file(first, &format!("{seq}.safetensors"))?, &[])?;
        progress.message(&first.id, format!("{seq}: model loaded; {} patients", job.nodes.len()));
        let rows = sequence_rows(job, &inputs, &mut results, seq);
        if rows.is_empty() {
            continue;
        }
        // Features and scores in batches; Grad-CAM needs gradients, one image at a time.
        let batch = Tensor::stack(&rows.iter().map(|(_, t)| t.shallow_clone()).collect::<Vec<_>>(), 0);
        let (features, probs) = embed_rows(model.as_ref(), &batch, dev, job.amp);
        for (r, (k, image)) in rows.iter().enumerate() {
            let written = if p.gradcam { write_gradcam(model.as_ref(), image, dev, &job.nodes[*k].out_dir, seq) } else { Ok(()) };
            match (written, &mut results[*k]) {
                (Ok(()), Ok((f, sc))) => {
                    f.insert(seq.clone(), features.get(r as i64));
                    sc.insert(seq.clone(), json!(probs[r]));
                }
                (Err(e), slot) => *slot = Err(e),
                (Ok(()), Err(_)) => {}
            }
        }
    }
    for (node, result) in job.nodes.iter().zip(results) {
        match result.and_then(|embedded| write_embedded(node, embedded)) {
            Ok(()) => progress.done(&node.id),
            Err(e) => progress.error(&node.id, e.to_string()),
        }
    }
    Ok(())
}

/// Sequence `seq`'s image of every node still in the running, as (node
/// index, image); a node whose image is missing or has another shape than
/// the first one's gets its error in `results`.
fn sequence_rows(job: &Job, inputs: &[Result<Inputs, Error>], results: &mut [Result<Embedded, Error>], seq: &str) -> Vec<(usize, Tensor)> {
    let mut rows: Vec<(usize, Tensor)> = Vec::new();
    for (k, node) in job.nodes.iter().enumerate() {
        if results[k].is_err() {
            continue;
        }
        match inputs[k].as_ref().map_err(|e| Error::new(e.to_string())).and_then(|i| i.get(&node.samples, 0, seq)) {
            Ok(t) if rows.first().is_none_or(|(_, r)| r.size() == t.size()) => rows.push((k, t)),
            Ok(t) => {
                results[k] =
                    Err(Error::new(format!("patient {}: `{seq}` has shape {:?}, the other patients {:?}", node.samples[0].patient, t.size(), rows[0].1.size())))
            }
            Err(e) => results[k] = Err(e),
        }
    }
    rows
}

/// `gradcam/<seq>_<plane>.png` under `out_dir`: the Grad-CAM map of `image` over each of its planes.
fn write_gradcam(model: &dyn backbone::Backbone, image: &Tensor, dev: Device, out_dir: &Path, seq: &str) -> Result<(), Error> {
    let cam = gradcam::grad_cam(model, &image.to_device(dev), 1).to(Device::Cpu);
    let dir = out_dir.join("gradcam");
    std::fs::create_dir_all(&dir).map_err(|e| Error::new(format!("{}: {e}", dir.display())))?;
    for (c, plane) in PLANES.iter().enumerate() {
        gradcam::write_overlay(&image.get(c as i64), &cam, &dir.join(format!("{seq}_{plane}.png")), 0.4)?;
    }
    Ok(())
}

/// An apply node's `features.safetensors` and `scores.json`.
fn write_embedded(node: &JobNode, (features, scores): Embedded) -> Result<(), Error> {
    let list: Vec<(&str, &Tensor)> = features.iter().map(|(n, t)| (n.as_str(), t)).collect();
    Tensor::write_safetensors(&list, node.out_dir.join("features.safetensors")).map_err(|e| Error::new(e.to_string()))?;
    write(&node.out_dir.join("scores.json"), &(serde_json::to_string_pretty(&Value::Object(scores)).unwrap_or_default() + "\n"))
}
