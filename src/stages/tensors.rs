//! Per-patient feature tensors as the learning stages exchange them:
//! `features.safetensors` (named 1-D f32 tensors) or `features.csv`.

use std::collections::BTreeMap;
use std::path::Path;

use super::StageError;

fn fail(patient: &str, e: impl std::fmt::Display) -> StageError {
    StageError::new(format!("patient {patient}: {e}"))
}

/// Read named 1-D feature vectors from a patient's input files.
pub fn read_features(files: &[(String, std::path::PathBuf)], patient: &str) -> Result<BTreeMap<String, Vec<f64>>, StageError> {
    if let Some((_, path)) = files.iter().find(|(n, _)| n == "features.safetensors" || n.ends_with("/features.safetensors")) {
        let bytes = std::fs::read(path).map_err(|e| fail(patient, e))?;
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| fail(patient, e))?;
        let mut out = BTreeMap::new();
        for (name, view) in st.tensors() {
            if view.dtype() != safetensors::Dtype::F32 {
                return Err(fail(patient, format!("features tensor `{name}` is {:?}, expected F32", view.dtype())));
            }
            let v = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64).collect();
            out.insert(name, v);
        }
        return Ok(out);
    }
    if let Some((_, path)) = files.iter().find(|(n, _)| n == "features.csv" || n.ends_with("/features.csv")) {
        let text = std::fs::read_to_string(path).map_err(|e| fail(patient, e))?;
        let v: Vec<f64> = text
            .split([',', '\n', ' ', '\t'])
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().parse::<f64>().map_err(|_| fail(patient, format!("features.csv: `{s}` is not a number"))))
            .collect::<Result<_, _>>()?;
        return Ok(BTreeMap::from([("features".to_string(), v)]));
    }
    Err(fail(patient, "no features.safetensors or features.csv among the inputs"))
}

/// Write named f32 tensors (all 1-D or with the given shapes) as safetensors.
pub fn write_tensors(path: &Path, tensors: &BTreeMap<String, (Vec<usize>, Vec<f64>)>) -> Result<(), StageError> {
    let bytes: BTreeMap<&String, Vec<u8>> = tensors.iter().map(|(k, (_, v))| (k, v.iter().flat_map(|x| (*x as f32).to_le_bytes()).collect())).collect();
    let views = tensors
        .iter()
        .map(|(k, (shape, _))| safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), &bytes[k]).map(|v| (k.clone(), v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StageError::new(e.to_string()))?;
    safetensors::serialize_to_file(views, None, path).map_err(|e| StageError::new(format!("{}: {e}", path.display())))
}
