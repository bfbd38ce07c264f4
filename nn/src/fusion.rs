//! The fusion transformer: the sequences' feature vectors (PCA scores)
//! concatenated along the channel dimension, standardised with the training
//! mean and deviation, cut into patches of `patch` values (tokens), embedded
//! linearly, given a learned positional embedding (and a learned CLS token when
//! `pool = cls`), passed through a transformer encoder (PyTorch's
//! `nn.TransformerEncoderLayer`, ReLU, `batch_first`; `norm = post`:
//! `norm_first=False`, the original transformer; `norm = pre`:
//! `norm_first=True` and a final `nn.LayerNorm` given to `nn.TransformerEncoder`
//! as `norm`), pooled (`mean` of the tokens, the `cls` token, or `flatten`: the
//! tokens concatenated, so the head sees which patch carried what) and
//! classified by an MLP head; softmax gives the DLS.
//!
//! Why `flatten` and `pre` exist: the study's description (patches, mean
//! pooling) leaves a shared patch embedding whose mean over tokens mixes the
//! same position of every patch; on the `demo` cohorts (84 training rows) a
//! post-norm, mean-pooled encoder did not even fit the training rows' label
//! while a logistic regression on the same PCA scores reached 0.85 internal
//! AUC; pre-norm with flatten pooling keeps each token's magnitude and place
//! (BENCHMARKS.md, "Does the DLS learn?").
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
    /// `mean`, `cls` or `flatten`.
    pub pool: String,
    /// `post` (PyTorch's default) or `pre` (norm first, final LayerNorm).
    #[serde(default = "post")]
    pub norm: String,
}

fn post() -> String {
    "post".into()
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
        if !["mean", "cls", "flatten"].contains(&self.pool.as_str()) {
            return Err(format!("pool `{}`: use `mean`, `cls` or `flatten`", self.pool));
        }
        if self.norm != "post" && self.norm != "pre" {
            return Err(format!("norm `{}`: use `post` or `pre`", self.norm));
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
    norm_first: bool,
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
            norm_first: c.norm == "pre",
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

    fn feed_forward(&self, x: &Tensor, train: bool) -> Tensor {
        x.apply(&self.linear1).relu().dropout(self.dropout, train).apply(&self.linear2).dropout(self.dropout, train)
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        if self.norm_first {
            let x = x + self.attention(&x.apply(&self.norm1), train).dropout(self.dropout, train);
            &x + self.feed_forward(&x.apply(&self.norm2), train)
        } else {
            let x = (x + self.attention(x, train).dropout(self.dropout, train)).apply(&self.norm1);
            (&x + self.feed_forward(&x, train)).apply(&self.norm2)
        }
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
    final_norm: Option<nn::LayerNorm>,
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
            final_norm: (config.norm == "pre").then(|| nn::layer_norm(p / "encoder" / "norm", vec![d], Default::default())),
            head0: nn::linear(p / "head" / "0", if config.pool == "flatten" { d * config.tokens() } else { d }, config.hidden, Default::default()),
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
        if let Some(norm) = &self.final_norm {
            h = h.apply(norm);
        }
        let pooled = match self.config.pool.as_str() {
            "cls" => h.select(1, 0),
            "flatten" => h.flatten(1, -1),
            _ => h.mean_dim(1, false, Kind::Float),
        };
        pooled.apply(&self.head0).relu().dropout(self.config.dropout, train).apply(&self.head3)
    }
}
