//! Reading a node's inputs: the named tensors of each sample's safetensors
//! file (read once, as `Inputs`), one tensor of a sample, one tensor stacked
//! over all samples, or several vectors concatenated per sample; and the
//! samples' labels for a fit (0 or 1). Each error names the patient and the
//! file, and a shape that differs from the first sample's is an error.

use std::collections::BTreeMap;

use radpipe_protocol::Sample;
use tch::{Kind, Tensor};

use crate::Error;

/// The named tensors of each sample's file, read once.
pub(super) struct Inputs {
    files: Vec<BTreeMap<String, Tensor>>,
}

impl Inputs {
    pub(super) fn read(samples: &[Sample]) -> Result<Inputs, Error> {
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

    pub(super) fn get(&self, samples: &[Sample], i: usize, name: &str) -> Result<Tensor, Error> {
        self.files[i].get(name).map(|t| t.to_kind(Kind::Float)).ok_or_else(|| {
            let have: Vec<&String> = self.files[i].keys().collect();
            Error::new(format!("patient {}: {} has no tensor `{name}` (it has {have:?})", samples[i].patient, samples[i].file.display()))
        })
    }

    /// `[N, ...]` of one named tensor over all samples.
    pub(super) fn stack(&self, samples: &[Sample], name: &str) -> Result<Tensor, Error> {
        let rows = (0..samples.len()).map(|i| self.get(samples, i, name)).collect::<Result<Vec<_>, _>>()?;
        let shape = rows[0].size();
        if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.size() != shape) {
            return Err(Error::new(format!("patient {}: `{name}` has shape {:?}, patient {} has {shape:?}", samples[i].patient, r.size(), samples[0].patient)));
        }
        Ok(Tensor::stack(&rows, 0))
    }

    /// `[N, F]`: the named vectors of each sample concatenated in order.
    pub(super) fn concat(&self, samples: &[Sample], names: &[String]) -> Result<Tensor, Error> {
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

pub(super) fn labels(samples: &[Sample]) -> Result<Vec<i64>, Error> {
    samples
        .iter()
        .map(|s| match s.label {
            Some(l @ (0 | 1)) => Ok(l),
            Some(other) => Err(Error::new(format!("patient {}: label {other} is not 0 or 1", s.patient))),
            None => Err(Error::new(format!("patient {}: no label to train on", s.patient))),
        })
        .collect()
}
