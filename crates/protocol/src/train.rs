//! The training settings of `embed` and `fuse`: written in the pipeline file
//! (the JSON Schema documents them from the doc comments here), part of the
//! fit nodes' cache keys, and handed as they are to the worker's training loop.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Optimisation settings of `embed` and `fuse` (the study's: SGD, lr 0.01,
/// momentum, weight decay, batch 32, focal loss, early stopping). One type
/// for the pipeline file, the cache key and the worker's training loop (the
/// `radpipe-protocol` crate); unknown fields are refused.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSpec {
    /// Most epochs.
    pub epochs: usize,
    pub batch_size: usize,
    /// SGD learning rate.
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    /// Focal loss weight of the positive class.
    pub focal_alpha: f64,
    /// Focal loss focusing exponent (0: weighted cross-entropy).
    pub focal_gamma: f64,
    /// Share of the training patients held out (stratified) for early stopping.
    pub val_fraction: f64,
    /// Epochs without a better validation score before stopping.
    pub patience: usize,
    /// Early-stopping criterion: `loss` (validation loss) or `auc` (validation AUC, ties by loss); the best epoch's weights are kept.
    pub monitor: Monitor,
    /// Random horizontal flips (images).
    pub flip: bool,
    /// Random rotations by multiples of 90 degrees (images; with `flip`, the eight symmetries of the square).
    pub rotate: bool,
    /// Random crops: pad by this many pixels and crop back (images; 0: off).
    pub crop_pad: i64,
    /// Seed of initialisation, validation split, shuffling, augmentation, dropout.
    pub seed: u64,
}

impl Default for TrainSpec {
    fn default() -> Self {
        TrainSpec {
            epochs: 30,
            batch_size: 32,
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 1e-4,
            focal_alpha: 0.5,
            focal_gamma: 2.0,
            val_fraction: 0.2,
            patience: 5,
            monitor: Monitor::Loss,
            flip: true,
            rotate: false,
            crop_pad: 8,
            seed: 0,
        }
    }
}

/// The early-stopping criterion.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    Loss,
    Auc,
}

/// Settings that cannot train.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrainSpecError {
    #[error("epochs must be at least 1 and batch_size at least 2")]
    Size,
    #[error("lr must be positive and val_fraction in (0, 1)")]
    Rate,
    #[error("focal_alpha must be in [0, 1] and focal_gamma non-negative")]
    Focal,
}

impl TrainSpec {
    /// Whether these settings can train at all.
    pub fn check(&self) -> Result<(), TrainSpecError> {
        if self.epochs == 0 || self.batch_size < 2 {
            return Err(TrainSpecError::Size);
        }
        if self.lr.is_nan() || self.lr <= 0.0 || !(0.0..1.0).contains(&self.val_fraction) || self.val_fraction == 0.0 {
            return Err(TrainSpecError::Rate);
        }
        if !(0.0..=1.0).contains(&self.focal_alpha) || self.focal_gamma < 0.0 {
            return Err(TrainSpecError::Focal);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_fields_take_the_defaults_and_unknown_ones_are_refused() {
        let t: TrainSpec = serde_json::from_str(r#"{"epochs": 2, "monitor": "auc"}"#).unwrap();
        assert_eq!((t.epochs, t.batch_size, t.monitor, t.crop_pad), (2, 32, Monitor::Auc, 8));
        let err = serde_json::from_str::<TrainSpec>(r#"{"epoch": 2}"#).unwrap_err().to_string();
        assert!(err.contains("unknown field `epoch`"), "{err}");
    }

    #[test]
    fn settings_that_cannot_train_are_named() {
        assert_eq!(TrainSpec::default().check(), Ok(()));
        assert_eq!(TrainSpec { batch_size: 1, ..TrainSpec::default() }.check(), Err(TrainSpecError::Size));
        assert_eq!(TrainSpec { val_fraction: 0.0, ..TrainSpec::default() }.check(), Err(TrainSpecError::Rate));
        assert_eq!(TrainSpec { focal_gamma: -1.0, ..TrainSpec::default() }.check(), Err(TrainSpecError::Focal));
    }

    /// The fit nodes' cache keys hold the serialised settings: this is their shape.
    #[test]
    fn the_serialised_settings_are_those_of_the_cache_keys() {
        let v = serde_json::to_value(TrainSpec::default()).unwrap();
        let expected = serde_json::json!({
            "epochs": 30, "batch_size": 32, "lr": 0.01, "momentum": 0.9, "weight_decay": 1e-4, "focal_alpha": 0.5,
            "focal_gamma": 2.0, "val_fraction": 0.2, "patience": 5, "monitor": "loss", "flip": true, "rotate": false,
            "crop_pad": 8, "seed": 0,
        });
        assert_eq!(v.to_string(), expected.to_string());
    }
}
