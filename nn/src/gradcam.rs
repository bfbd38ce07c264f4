//! Grad-CAM (Selvaraju et al. 2017) on layer4: the gradient of the class-of-
//! interest logit with respect to the layer4 activation `A`, averaged over
//! space, weights the channels; `relu(sum_k w_k A_k)` is upsampled (bilinear,
//! `align_corners = false`) to the input size and scaled to [0, 1] (all zero
//! when the map is flat). Overlays blend the input plane (grey) with the map
//! (a jet-like colour ramp) and are written as PNG.

use std::path::Path;

use tch::{Kind, Tensor};

use crate::backbone::Backbone;
use crate::Error;

/// The Grad-CAM map `[H, W]` of one image `[3, H, W]` for `class`.
pub fn grad_cam(model: &dyn Backbone, image: &Tensor, class: i64) -> Tensor {
    let (_, h, w) = image.size3().expect("[3, H, W]");
    let out = model.parts(&image.unsqueeze(0), false);
    let score = out.logits.select(1, class).sum(Kind::Float);
    let grads = Tensor::run_backward(&[&score], &[&out.layer4], false, false);
    let a = out.layer4.detach();
    let weights = grads[0].mean_dim([2i64, 3].as_slice(), true, Kind::Float);
    let cam = (weights * a).sum_dim_intlist(1, true, Kind::Float).relu();
    let cam = cam.upsample_bilinear2d([h, w], false, None, None).squeeze_dim(0).squeeze_dim(0);
    let (lo, hi) = (cam.min().double_value(&[]), cam.max().double_value(&[]));
    if hi - lo > 1e-12 {
        (cam - lo) / (hi - lo)
    } else {
        cam.zeros_like()
    }
}

fn jet(v: f64) -> [f64; 3] {
    let c = |x: f64| x.clamp(0.0, 1.0);
    [c(1.5 - (4.0 * v - 3.0).abs()), c(1.5 - (4.0 * v - 2.0).abs()), c(1.5 - (4.0 * v - 1.0).abs())]
}

/// Blend one plane (`[H, W]`, any range) with a map in [0, 1] and write an RGB PNG.
pub fn write_overlay(plane: &Tensor, cam: &Tensor, path: &Path, alpha: f64) -> Result<(), Error> {
    let (h, w) = plane.size2().expect("[H, W]");
    let plane: Vec<f32> = Vec::try_from(plane.to_kind(Kind::Float).contiguous().view(-1)).map_err(|e: tch::TchError| Error::new(e.to_string()))?;
    let cam: Vec<f32> = Vec::try_from(cam.to_kind(Kind::Float).contiguous().view(-1)).map_err(|e: tch::TchError| Error::new(e.to_string()))?;
    let (lo, hi) = plane.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let mut rgb = Vec::with_capacity(plane.len() * 3);
    for (p, c) in plane.iter().zip(&cam) {
        let g = f64::from((p - lo) / span);
        let heat = jet(f64::from(*c));
        for h in heat {
            rgb.push((((1.0 - alpha) * g + alpha * h) * 255.0).round().clamp(0.0, 255.0) as u8);
        }
    }
    let file = std::fs::File::create(path).map_err(|e| Error::new(format!("{}: {e}", path.display())))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), w as u32, h as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| Error::new(format!("{}: {e}", path.display())))?;
    writer.write_image_data(&rgb).map_err(|e| Error::new(format!("{}: {e}", path.display())))
}
