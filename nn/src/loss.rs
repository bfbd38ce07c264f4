//! Focal loss (Lin et al. 2017) on softmax outputs:
//! `FL = mean_i( -alpha_{y_i} (1 - p_{y_i})^gamma log p_{y_i} )`, with
//! `alpha_1 = alpha` for the positive class and `alpha_0 = 1 - alpha` (two
//! classes). `gamma = 0, alpha = 0.5` is half the cross-entropy.

use tch::{Kind, Tensor};

pub fn focal_loss(logits: &Tensor, targets: &Tensor, alpha: f64, gamma: f64) -> Tensor {
    let log_p = logits.log_softmax(-1, Kind::Float);
    let log_pt = log_p.gather(1, &targets.unsqueeze(1), false).squeeze_dim(1);
    let pt = log_pt.exp();
    let alpha_t = targets.to_kind(Kind::Float) * (2.0 * alpha - 1.0) + (1.0 - alpha);
    let modulating = (-pt + 1.0).clamp_min(0.0).pow_tensor_scalar(gamma);
    (-(alpha_t * modulating * log_pt)).mean(Kind::Float)
}
