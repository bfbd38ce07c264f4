//! The fusion transformer: the sequences' feature vectors (PCA scores)
//! concatenated along the channel dimension, standardised with the training
//! mean and deviation, cut into patches of `patch` values (tokens), embedded
//! linearly, given a learned positional embedding (and a learned CLS token when
//! `pool = cls`), passed through a post-norm transformer encoder (PyTorch's
//! `nn.TransformerEncoderLayer` with `norm_first=False`, ReLU, `batch_first`),
//! pooled (mean of the tokens, or the CLS token) and classified by an MLP head;
//! softmax gives the DLS.
//!
//! Parameter names are those of this PyTorch module, so weights move both ways
//! unchanged (`tests/fixtures/generate/nn.py` builds it):
//! ```text
//! input_mean, input_std                       [F]       (buffers)
//! patch_embed.{weight,bias}                   Linear(patch, d)
//! cls_token                                   [1, 1, d] (pool = cls only)
//! pos_embed                                   [1, T (+1), d]
//! encoder.layers.{i}.self_attn.in_proj_weight [3d, d], in_proj_bias [3d]
//! encoder.layers.{i}.self_attn.out_proj.{weight,bias}
//! encoder.layers.{i}.linear1.{weight,bias}    Linear(d, ff)
//! encoder.layers.{i}.linear2.{weight,bias}    Linear(ff, d)
//! encoder.layers.{i}.norm1.{weight,bias}, norm2.{weight,bias}
//! head.0.{weight,bias}                        Linear(d, hidden), ReLU, Dropout
//! head.3.{weight,bias}                        Linear(hidden, classes)
//! ```

use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT};
use tch::{Kind, Tensor};

/// The shape of the fusion model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FusionConfig {
    /// Input width (all sequences' features together).
    pub features: i64,
    /// Values per token.
    pub patch: i64,
    pub d_model: i64,
    pub heads: i64,
    pub layers: i64,
    pub ff: i64,
    pub hidden: i64,
    pub classes: i64,
    pub dropout: f64,
    /// `mean` or `cls`.
    pub pool: String,
}

impl FusionConfig {
    pub fn tokens(&self) -> i64 {
        self.features / self.patch
    }

    pub fn check(&self) -> Result<(), String> {
        if self.patch <= 0 || self.features % self.patch != 0 {
            return Err(format!("the {} fused features cannot be cut into patches of {}", self.features, self.patch));
        }
        if self.heads <= 0 || self.d_model % self.heads != 0 {
            return Err(format!("d_model {} is not a multiple of {} heads", self.d_model, self.heads));
        }
        if self.pool != "mean" && self.pool != "cls" {
            return Err(format!("pool `{}`: use `mean` or `cls`", self.pool));
        }
        Ok(())
    }
}

#[derive(Debug)]
struct EncoderLayer {
    in_proj_weight: Tensor,
    in_proj_bias: Tensor,
    out_proj: nn::Linear,
    linear1: nn::Linear,
    linear2: nn::Linear,
    norm1: nn::LayerNorm,
    norm2: nn::LayerNorm,
    heads: i64,
    dropout: f64,
}

impl EncoderLayer {
    fn new(p: &nn::Path, c: &FusionConfig) -> EncoderLayer {
        let sa = p / "self_attn";
        let d = c.d_model;
        let in_proj_weight = sa.var("in_proj_weight", &[3 * d, d], nn::Init::Uniform { lo: -(6.0 / (4 * d) as f64).sqrt(), up: (6.0 / (4 * d) as f64).sqrt() });
        let in_proj_bias = sa.zeros("in_proj_bias", &[3 * d]);
        EncoderLayer {
            in_proj_weight,
            in_proj_bias,
            out_proj: nn::linear(&sa / "out_proj", d, d, Default::default()),
            linear1: nn::linear(p / "linear1", d, c.ff, Default::default()),
            linear2: nn::linear(p / "linear2", c.ff, d, Default::default()),
            norm1: nn::layer_norm(p / "norm1", vec![d], Default::default()),
            norm2: nn::layer_norm(p / "norm2", vec![d], Default::default()),
            heads: c.heads,
            dropout: c.dropout,
        }
    }

    /// Multi-head self-attention of `x` (`[B, T, d]`), as `nn.MultiheadAttention`.
    fn attention(&self, x: &Tensor, train: bool) -> Tensor {
        let (b, t, d) = x.size3().expect("[B, T, d]");
        let dh = d / self.heads;
        let qkv = x.linear(&self.in_proj_weight, Some(&self.in_proj_bias));
        let split = |i: i64| qkv.narrow(2, i * d, d).reshape([b, t, self.heads, dh]).transpose(1, 2);
        let (q, k, v) = (split(0), split(1), split(2));
        let weights = (q.matmul(&k.transpose(-2, -1)) / (dh as f64).sqrt()).softmax(-1, Kind::Float).dropout(self.dropout, train);
        weights.matmul(&v).transpose(1, 2).reshape([b, t, d]).apply(&self.out_proj)
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let x = (x + self.attention(x, train).dropout(self.dropout, train)).apply(&self.norm1);
        let ff = x.apply(&self.linear1).relu().dropout(self.dropout, train).apply(&self.linear2);
        (&x + ff.dropout(self.dropout, train)).apply(&self.norm2)
    }
}

#[derive(Debug)]
pub struct Fusion {
    pub config: FusionConfig,
    input_mean: Tensor,
    input_std: Tensor,
    patch_embed: nn::Linear,
    cls_token: Option<Tensor>,
    pos_embed: Tensor,
    layers: Vec<EncoderLayer>,
    head0: nn::Linear,
    head3: nn::Linear,
}

impl Fusion {
    pub fn new(p: &nn::Path, config: FusionConfig) -> Fusion {
        let d = config.d_model;
        let tokens = config.tokens() + i64::from(config.pool == "cls");
        let enc = p / "encoder" / "layers";
        Fusion {
            input_mean: p.zeros_no_train("input_mean", &[config.features]),
            input_std: p.ones_no_train("input_std", &[config.features]),
            patch_embed: nn::linear(p / "patch_embed", config.patch, d, Default::default()),
            cls_token: (config.pool == "cls").then(|| p.var("cls_token", &[1, 1, d], nn::Init::Randn { mean: 0.0, stdev: 0.02 })),
            pos_embed: p.var("pos_embed", &[1, tokens, d], nn::Init::Randn { mean: 0.0, stdev: 0.02 }),
            layers: (0..config.layers).map(|i| EncoderLayer::new(&(&enc / i.to_string()), &config)).collect(),
            head0: nn::linear(p / "head" / "0", d, config.hidden, Default::default()),
            head3: nn::linear(p / "head" / "3", config.hidden, config.classes, Default::default()),
            config,
        }
    }

    /// Set the standardisation from the training rows (`[N, F]`).
    pub fn set_standardisation(&mut self, x: &Tensor) {
        tch::no_grad(|| {
            self.input_mean.copy_(&x.mean_dim(0, false, Kind::Float));
            let std = x.std_dim(0, true, false).clamp_min(1e-6);
            self.input_std.copy_(&std);
        });
    }
}

impl ModuleT for Fusion {
    /// `x`: `[N, F]` fused features -> `[N, classes]` logits.
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let n = x.size()[0];
        let z = (x - &self.input_mean) / &self.input_std;
        let mut h = z.reshape([n, self.config.tokens(), self.config.patch]).apply(&self.patch_embed);
        if let Some(cls) = &self.cls_token {
            h = Tensor::cat(&[cls.expand([n, 1, self.config.d_model], false), h], 1);
        }
        h = (h + &self.pos_embed).dropout(self.config.dropout, train);
        for layer in &self.layers {
            h = layer.forward_t(&h, train);
        }
        let pooled = if self.cls_token.is_some() { h.select(1, 0) } else { h.mean_dim(1, false, Kind::Float) };
        pooled.apply(&self.head0).relu().dropout(self.config.dropout, train).apply(&self.head3)
    }
}
