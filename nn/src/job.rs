//! Running a job (ARCHITECTURE.md §7): the protocol's types, the tasks and
//! what each writes are documented in the `radpipe-protocol` crate
//! (`radpipe_protocol::job`, `radpipe_protocol::progress`). Every node of the
//! job gets exactly one `done` or `error` line; a problem that concerns the
//! whole batch (no CUDA, an unreadable model) is one error line per node.
//! Timings go to the nodes' logs (progress messages), never into their
//! outputs.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use radpipe_protocol::{EmbedParams, FuseParams, Job, JobNode, ProgressLine, Sample, Work};
use serde_json::{json, Value};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::fusion::{Fusion, FusionConfig};
use crate::train;
use crate::{backbone, device, gradcam, weights, Error};

/// Progress lines (JSON, one per line) on `out`, flushed one by one so that
/// the engine sees each as it happens.
pub struct Progress<W: Write> {
    out: W,
}

impl<W: Write> Progress<W> {
    pub fn new(out: W) -> Self {
        Progress { out }
    }

    /// Write one line. A closed stdout means the engine is gone: nothing is
    /// left to tell, so write errors are dropped.
    fn line(&mut self, line: &ProgressLine) {
        if let Ok(text) = serde_json::to_string(line) {
            let _ = writeln!(self.out, "{text}");
            let _ = self.out.flush();
        }
    }

    pub fn message(&mut self, node: &str, text: impl Into<String>) {
        self.line(&ProgressLine::message(node, text));
    }

    pub fn done(&mut self, node: &str) {
        self.line(&ProgressLine::done(node));
    }

    pub fn error(&mut self, node: &str, text: impl Into<String>) {
        self.line(&ProgressLine::error(node, text));
    }
}

/// Run a job; every node gets a `done` or an `error` line.
pub fn run<W: Write>(job: &Job, progress: &mut Progress<W>) {
    if job.threads > 0 {
        tch::set_num_threads(job.threads);
    }
    let outcome = device::parse(&job.device).and_then(|dev| {
        progress
            .message(&job.nodes.first().map(|n| n.id.clone()).unwrap_or_default(), format!("device {dev:?}, libtorch {}", env!("RADPIPE_LIBTORCH_VERSION")));
        match &job.work {
            Work::EmbedFit(p) => {
                p.train.check().map_err(|e| Error::new(format!("train: {e}"))).and_then(|()| each_node(job, progress, |n, pr| embed_fit(p, dev, n, pr)))
            }
            Work::FuseFit(p) => {
                p.train.check().map_err(|e| Error::new(format!("train: {e}"))).and_then(|()| each_node(job, progress, |n, pr| fuse_fit(p, dev, n, pr)))
            }
            Work::EmbedApply(p) => embed_apply(p, dev, job, progress),
            Work::FuseApply(p) => fuse_apply(p, dev, job, progress),
        }
    });
    if let Err(e) = outcome {
        for n in &job.nodes {
            progress.error(&n.id, e.to_string());
        }
    }
}

fn each_node<W: Write>(job: &Job, progress: &mut Progress<W>, mut f: impl FnMut(&JobNode, &mut Progress<W>) -> Result<(), Error>) -> Result<(), Error> {
    for n in &job.nodes {
        match f(n, progress) {
            Ok(()) => progress.done(&n.id),
            Err(e) => progress.error(&n.id, e.to_string()),
        }
    }
    Ok(())
}

/// The named tensors of each sample's file, read once.
struct Inputs {
    files: Vec<BTreeMap<String, Tensor>>,
}

impl Inputs {
    fn read(samples: &[Sample]) -> Result<Inputs, Error> {
        let files = samples
            .iter()
            .map(|s| {
                Tensor::read_safetensors(&s.file)
                    .map(|v| v.into_iter().collect())
                    .map_err(|e| Error::new(format!("patient {}: {}: {e}", s.patient, s.file.display())))
            })
            .collect::<Result<_, _>>()?;
        Ok(Inputs { files })
    }

    fn get(&self, samples: &[Sample], i: usize, name: &str) -> Result<Tensor, Error> {
        self.files[i].get(name).map(|t| t.to_kind(Kind::Float)).ok_or_else(|| {
            let have: Vec<&String> = self.files[i].keys().collect();
            Error::new(format!("patient {}: {} has no tensor `{name}` (it has {have:?})", samples[i].patient, samples[i].file.display()))
        })
    }

    /// `[N, ...]` of one named tensor over all samples.
    fn stack(&self, samples: &[Sample], name: &str) -> Result<Tensor, Error> {
        let rows = (0..samples.len()).map(|i| self.get(samples, i, name)).collect::<Result<Vec<_>, _>>()?;
        let shape = rows[0].size();
        if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.size() != shape) {
            return Err(Error::new(format!("patient {}: `{name}` has shape {:?}, patient {} has {shape:?}", samples[i].patient, r.size(), samples[0].patient)));
        }
        Ok(Tensor::stack(&rows, 0))
    }

    /// `[N, F]`: the named vectors of each sample concatenated in order.
    fn concat(&self, samples: &[Sample], names: &[String]) -> Result<Tensor, Error> {
        let rows = (0..samples.len())
            .map(|i| names.iter().map(|n| self.get(samples, i, n).map(|t| t.flatten(0, -1))).collect::<Result<Vec<_>, _>>().map(|v| Tensor::cat(&v, 0)))
            .collect::<Result<Vec<_>, _>>()?;
        let width = rows[0].size()[0];
        if let Some(i) = rows.iter().position(|r| r.size()[0] != width) {
            return Err(Error::new(format!("patient {}: {} features, patient {} has {width}", samples[i].patient, rows[i].size()[0], samples[0].patient)));
        }
        Ok(Tensor::stack(&rows, 0))
    }
}

fn labels(samples: &[Sample]) -> Result<Vec<i64>, Error> {
    samples
        .iter()
        .map(|s| match s.label {
            Some(l @ (0 | 1)) => Ok(l),
            Some(other) => Err(Error::new(format!("patient {}: label {other} is not 0 or 1", s.patient))),
            None => Err(Error::new(format!("patient {}: no label to train on", s.patient))),
        })
        .collect()
}

/// What trained a model: the worker's version, libtorch's, the device (in `fit.json`, for the report).
fn environment(dev: Device) -> Value {
    json!({ "radpipe_nn": env!("CARGO_PKG_VERSION"), "libtorch": env!("RADPIPE_LIBTORCH_VERSION"), "device": format!("{dev:?}") })
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|e| Error::new(format!("{}: {e}", path.display())))
}

fn model_file<'a>(node: &'a JobNode, name: &str) -> Result<&'a Path, Error> {
    node.model
        .iter()
        .find(|p| p.file_name().is_some_and(|f| f == name))
        .map(PathBuf::as_path)
        .ok_or_else(|| Error::new(format!("the fitted model has no `{name}`")))
}

/// An epoch's line in the node's log, with the time it took (which stays out of the outputs).
fn epoch_line(e: &train::Epoch, took: Duration) -> String {
    format!("epoch {} train loss {:.4} val loss {:.4} val AUC {:.3} ({:.1} s)", e.epoch, e.train_loss, e.val_loss, e.val_auc, took.as_secs_f64())
}

fn class_balance(y: &[i64]) -> String {
    let pos = y.iter().filter(|&&v| v == 1).count();
    format!("{} rows, {pos} positive", y.len())
}

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

fn embed_fit<W: Write>(p: &EmbedParams, dev: Device, node: &JobNode, progress: &mut Progress<W>) -> Result<(), Error> {
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
    let info = json!({ "backbone": p.model.backbone, "sequences": summary, "patients": node.samples.iter().map(|s| &s.patient).collect::<Vec<_>>(), "environment": environment(dev) });
    write(&node.out_dir.join("fit.json"), &(serde_json::to_string_pretty(&info).unwrap_or_default() + "\n"))
}

const PLANES: [&str; 3] = ["axial", "sagittal", "coronal"];

/// A node's features and scores, per sequence.
type Embedded = (BTreeMap<String, Tensor>, serde_json::Map<String, Value>);

fn embed_apply<W: Write>(p: &EmbedParams, dev: Device, job: &Job, progress: &mut Progress<W>) -> Result<(), Error> {
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

fn fuse_fit<W: Write>(p: &FuseParams, dev: Device, node: &JobNode, progress: &mut Progress<W>) -> Result<(), Error> {
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
    let info = json!({ "report": report, "patients": node.samples.iter().map(|s| &s.patient).collect::<Vec<_>>(), "environment": environment(dev) });
    write(&node.out_dir.join("fit.json"), &(serde_json::to_string_pretty(&info).unwrap_or_default() + "\n"))
}

fn fuse_apply<W: Write>(p: &FuseParams, dev: Device, job: &Job, progress: &mut Progress<W>) -> Result<(), Error> {
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
