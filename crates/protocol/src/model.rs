//! The model configurations of `embed` and `fuse`: what the worker builds,
//! and what the stages put under `model` in their nodes' parameters. Their
//! serialised form is therefore part of cache keys: reordering fields changes
//! no key (keys sort object keys), adding, removing or renaming one changes
//! every key of the stage.

use serde::{Deserialize, Serialize};

/// `embed`'s network: one ResNet per sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedModel {
    /// `resnet18`, `resnet34`, `resnet50`, `resnet101` or `torchscript`.
    pub backbone: String,
    /// The sequences (tensors of each patient's input file), one model each.
    pub sequences: Vec<String>,
    /// Dropout before the classification head.
    pub dropout: f64,
}

/// `fuse`'s network: the transformer over the sequences' concatenated features
/// (its layout is documented in `nn/src/fusion.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FuseModel {
    /// The sequences' feature vectors, concatenated in this order.
    pub sequences: Vec<String>,
    /// Values per token.
    pub patch: i64,
    /// Token width.
    pub d_model: i64,
    pub heads: i64,
    pub layers: i64,
    /// Width of each encoder layer's feed-forward block.
    pub ff: i64,
    /// Width of the MLP head's hidden layer.
    pub hidden: i64,
    pub dropout: f64,
    /// `mean`, `cls` or `flatten`.
    pub pool: String,
    /// `post` or `pre`.
    pub norm: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// These shapes are part of the nodes' cache keys: a change here re-runs every embed and fuse node.
    #[test]
    fn the_serialised_models_are_those_of_the_cache_keys() {
        let embed = EmbedModel { backbone: "resnet101".into(), sequences: vec!["t1".into(), "t2".into()], dropout: 0.5 };
        assert_eq!(serde_json::to_string(&embed).unwrap(), r#"{"backbone":"resnet101","sequences":["t1","t2"],"dropout":0.5}"#);
        let fuse = FuseModel {
            sequences: vec!["t1".into()],
            patch: 16,
            d_model: 64,
            heads: 8,
            layers: 3,
            ff: 128,
            hidden: 32,
            dropout: 0.1,
            pool: "mean".into(),
            norm: "post".into(),
        };
        assert_eq!(
            serde_json::to_string(&fuse).unwrap(),
            r#"{"sequences":["t1"],"patch":16,"d_model":64,"heads":8,"layers":3,"ff":128,"hidden":32,"dropout":0.1,"pool":"mean","norm":"post"}"#
        );
    }
}
