//! `kind: pca`: principal components of per-patient feature vectors, fit on the
//! training partition only and applied to every patient (Rust linear algebra,
//! no libtorch).
//!
//! Inputs: each patient's node of the input stage holds `features.safetensors`
//! (one or more named 1-D f32 tensors, e.g. one per sequence) or `features.csv`
//! (one row of numbers, named `features`). One PCA is fit per tensor name.
//!
//! Fit (`pca.fit`): centre on the training mean; eigen-decompose the smaller
//! of the Gram matrix and the covariance; components are unit vectors ordered by
//! explained variance (`eigenvalue / (n - 1)`, as scikit-learn), each signed so
//! that its largest-magnitude loading is positive (scikit-learn's `svd_flip`
//! with `u_based_decision=False`). Outputs `pca.safetensors` (`mean.<name>`,
//! `components.<name>` as `[k, d]`) and `pca.json` (dimensions, explained
//! variance and ratio, the training patients).
//!
//! Apply (`pca[<patient>]`): `features.safetensors` with each tensor projected
//! to its `k` components.

use nalgebra::{DMatrix, SymmetricEigen};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

use super::fit_apply::PartitionList;
use super::tensors::{read_features, write_tensors};
use super::{InputArtifact, Inputs, InputRef, NodeDecl, RunContext, Stage, StageError};
use radpipe_engine::diagnostics::Diagnostics;
use radpipe_engine::plan::PlanContext;

pub const VERSION: u32 = 1;

/// Fit principal components on the training partition; project every patient.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pca {
    /// The stage whose per-patient nodes hold the features.
    pub input: Inputs,
    /// Number of components.
    #[serde(default = "default_components")]
    pub components: usize,
    /// The partition(s) to fit on, e.g. `train`.
    pub fit_on: PartitionList,
    /// The split stage defining the partitions (default: the one that declares them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
}

fn default_components() -> usize {
    128
}

fn fail(patient: &str, e: impl std::fmt::Display) -> StageError {
    StageError::new(format!("patient {patient}: {e}"))
}

/// A fitted PCA of one feature tensor.
#[derive(Debug, Clone)]
pub struct Fitted {
    pub mean: Vec<f64>,
    /// `k` rows of length `d`.
    pub components: Vec<Vec<f64>>,
    pub explained_variance: Vec<f64>,
    pub explained_variance_ratio: Vec<f64>,
}

/// Fit `k` components on the rows of `x` (n x d).
pub fn fit(x: &[Vec<f64>], k: usize) -> Result<Fitted, String> {
    let n = x.len();
    let d = x.first().map(Vec::len).unwrap_or(0);
    if n < 2 || x.iter().any(|r| r.len() != d) {
        return Err(format!("PCA needs at least 2 training rows of equal length (have {n})"));
    }
    if k == 0 || k > n.min(d) {
        return Err(format!("{k} components requested, but at most min(training patients, dimensions) = {} exist", n.min(d)));
    }
    let mean: Vec<f64> = (0..d).map(|j| x.iter().map(|r| r[j]).sum::<f64>() / n as f64).collect();
    let xc = DMatrix::from_fn(n, d, |i, j| x[i][j] - mean[j]);
    let total_var: f64 = xc.iter().map(|v| v * v).sum::<f64>() / (n as f64 - 1.0);
    // Eigen-decompose the smaller Gram matrix; components = Xc^T u / sqrt(lambda).
    let (values, vectors) = if n <= d {
        let eig = SymmetricEigen::new(&xc * xc.transpose());
        let comps = xc.transpose() * &eig.eigenvectors;
        (eig.eigenvalues, comps)
    } else {
        let eig = SymmetricEigen::new(xc.transpose() * &xc);
        (eig.eigenvalues, eig.eigenvectors)
    };
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    let mut components = Vec::with_capacity(k);
    let mut explained = Vec::with_capacity(k);
    for &c in order.iter().take(k) {
        let mut v: Vec<f64> = vectors.column(c).iter().copied().collect();
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        if !(norm > 0.0) {
            return Err("the training features have fewer independent directions than components requested".into());
        }
        let (imax, _) = v.iter().enumerate().fold((0, 0.0f64), |best, (i, a)| if a.abs() > best.1 { (i, a.abs()) } else { best });
        let sign = if v[imax] < 0.0 { -1.0 } else { 1.0 };
        v.iter_mut().for_each(|a| *a *= sign / norm);
        components.push(v);
        explained.push(values[c].max(0.0) / (n as f64 - 1.0));
    }
    let ratio = explained.iter().map(|e| if total_var > 0.0 { e / total_var } else { 0.0 }).collect();
    Ok(Fitted { mean, components, explained_variance: explained, explained_variance_ratio: ratio })
}

impl Fitted {
    pub fn transform(&self, row: &[f64]) -> Vec<f64> {
        self.components.iter().map(|c| c.iter().zip(row).zip(&self.mean).map(|((w, x), m)| w * (x - m)).sum()).collect()
    }
}

fn patient_of(input: &InputArtifact) -> String {
    input.item.as_ref().map(|i| i.id.clone()).unwrap_or_else(|| input.node.clone())
}

impl Pca {
    fn run_fit(&self, ctx: &mut RunContext<'_>) -> Result<(), StageError> {
        let mut rows: BTreeMap<String, Vec<Vec<f64>>> = BTreeMap::new();
        let mut patients = Vec::new();
        for input in ctx.inputs.iter().filter(|i| i.item.is_some()) {
            let patient = patient_of(input);
            for (name, v) in read_features(&input.files, &patient)? {
                rows.entry(name).or_default().push(v);
            }
            patients.push(patient);
        }
        let mut tensors = BTreeMap::new();
        let mut info = serde_json::Map::new();
        for (name, x) in &rows {
            let f = fit(x, self.components).map_err(|e| StageError::new(format!("PCA of `{name}`: {e}")))?;
            let d = f.mean.len();
            let _ = writeln!(ctx.log, "{name}: {} training rows of {d}, first ratios {:?}", x.len(), &f.explained_variance_ratio[..f.explained_variance_ratio.len().min(5)]);
            tensors.insert(format!("mean.{name}"), (vec![d], f.mean.clone()));
            tensors.insert(format!("components.{name}"), (vec![f.components.len(), d], f.components.concat()));
            info.insert(name.clone(), json!({ "dimensions": d, "components": f.components.len(), "explained_variance": f.explained_variance, "explained_variance_ratio": f.explained_variance_ratio }));
        }
        write_tensors(&ctx.out_dir.join("pca.safetensors"), &tensors)?;
        let text = serde_json::to_string_pretty(&json!({ "features": info, "training_patients": patients })).map_err(|e| StageError::new(e.to_string()))?;
        std::fs::write(ctx.out_dir.join("pca.json"), text + "\n").map_err(|e| StageError::new(e.to_string()))
    }

    fn run_apply(&self, ctx: &mut RunContext<'_>) -> Result<(), StageError> {
        let patient = ctx.decl.item.as_ref().map(|i| i.id.clone()).unwrap_or_default();
        let model = ctx
            .inputs
            .iter()
            .flat_map(|i| i.files.iter())
            .find(|(n, _)| n == "pca.safetensors")
            .ok_or_else(|| fail(&patient, "the fitted PCA is missing"))?;
        let bytes = std::fs::read(&model.1).map_err(|e| fail(&patient, e))?;
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| fail(&patient, e))?;
        let read = |name: &str| -> Result<(Vec<usize>, Vec<f64>), StageError> {
            let view = st.tensor(name).map_err(|e| fail(&patient, format!("{name}: {e}")))?;
            Ok((view.shape().to_vec(), view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64).collect()))
        };
        let own = ctx.inputs.iter().find(|i| i.item.is_some()).ok_or_else(|| fail(&patient, "no features input"))?;
        let mut out = BTreeMap::new();
        for (name, row) in read_features(&own.files, &patient)? {
            let (_, mean) = read(&format!("mean.{name}"))?;
            let (shape, flat) = read(&format!("components.{name}"))?;
            if row.len() != mean.len() {
                return Err(fail(&patient, format!("`{name}` has {} values, the PCA was fit on {}", row.len(), mean.len())));
            }
            let fitted = Fitted { mean, components: flat.chunks(shape[1]).map(<[f64]>::to_vec).collect(), explained_variance: vec![], explained_variance_ratio: vec![] };
            let z = fitted.transform(&row);
            out.insert(name, (vec![z.len()], z));
        }
        write_tensors(&ctx.out_dir.join("features.safetensors"), &out)
    }
}

impl Stage for Pca {
    fn kind(&self) -> &'static str {
        "pca"
    }

    fn version(&self) -> u32 {
        VERSION
    }

    fn inputs(&self) -> Vec<InputRef> {
        self.input.refs()
    }

    fn expand(&self, ctx: &PlanContext, stage: &str) -> Result<Vec<NodeDecl>, Diagnostics> {
        let params = json!({ "components": self.components });
        super::fit_apply::fit_apply_nodes(ctx, stage, &self.input, &self.fit_on, self.split.as_deref(), params.clone(), params)
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), StageError> {
        if ctx.decl.fit_on.is_some() {
            self.run_fit(ctx)
        } else {
            self.run_apply(ctx)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_orthonormal_signed_and_ordered() {
        let x: Vec<Vec<f64>> = (0..12).map(|i| { let t = i as f64; vec![t, 2.0 * t + (t * 1.7).sin(), (t * 0.3).cos(), 1.0] }).collect();
        let f = fit(&x, 3).unwrap();
        for (a, ca) in f.components.iter().enumerate() {
            for (b, cb) in f.components.iter().enumerate() {
                let dot: f64 = ca.iter().zip(cb).map(|(p, q)| p * q).sum();
                assert!((dot - if a == b { 1.0 } else { 0.0 }).abs() < 1e-10);
            }
            let max = ca.iter().copied().fold(0.0f64, |m, v| if v.abs() > m.abs() { v } else { m });
            assert!(max > 0.0);
        }
        assert!(f.explained_variance.windows(2).all(|w| w[0] >= w[1]));
        assert!(fit(&x, 5).is_err(), "more components than dimensions");
    }
}

#[cfg(test)]
mod sklearn {
    use super::*;
    use serde_json::Value;

    fn rows(v: &Value) -> Vec<Vec<f64>> {
        v.as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()).collect()
    }

    fn vals(v: &Value) -> Vec<f64> {
        v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
    }

    /// Against scikit-learn's PCA (svd_solver="full"): same algorithm family
    /// (exact decomposition), different route (eigen-decomposition of the Gram
    /// or covariance matrix instead of an SVD of the data), hence 1e-8.
    #[test]
    fn pca_matches_scikit_learn() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pca/pca.json")).unwrap();
        let fixture: Value = serde_json::from_str(&text).unwrap();
        for case in fixture["cases"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let k = case["k"].as_u64().unwrap() as usize;
            let f = fit(&rows(&case["train"]), k).unwrap();
            let close = |a: f64, b: f64, what: &str| assert!((a - b).abs() <= 1e-8 * (1.0 + b.abs()), "{name} {what}: {a} vs {b}");
            for (a, b) in f.mean.iter().zip(vals(&case["mean"])) {
                close(*a, b, "mean");
            }
            for (ours, theirs) in f.components.iter().zip(rows(&case["components"])) {
                for (a, b) in ours.iter().zip(theirs) {
                    close(*a, b, "component");
                }
            }
            for (a, b) in f.explained_variance.iter().zip(vals(&case["explained_variance"])) {
                close(*a, b, "explained variance");
            }
            for (a, b) in f.explained_variance_ratio.iter().zip(vals(&case["explained_variance_ratio"])) {
                close(*a, b, "explained variance ratio");
            }
            for (row, want) in rows(&case["test"]).iter().zip(rows(&case["transform_test"])) {
                for (a, b) in f.transform(row).iter().zip(want) {
                    close(*a, b, "transform");
                }
            }
        }
    }
}
